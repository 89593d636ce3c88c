"""Every connector the app builds reads its link's times on the app's clock, so what
``status`` shows and when the others are told of an outage agree."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.acl import Acl
from bot.app.assembly import make_connectors
from bot.config import parse_config
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock

CONNECTORS = """
connectors:
  console: {}
  matrix:
    homeserver: http://127.0.0.1:6167
    user_id: "@fw:example.org"
    access_token_env: MX_TOKEN
  discord:
    token_env: DC_TOKEN
    guild_id: "1234567890123456789"
    channel_id: "1234567890123456790"
"""


async def test_each_connectors_link_is_on_the_app_clock(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Console, Matrix and Discord: `since` is the app clock's time, at start and at a change."""
    config = parse_config(CONNECTORS, "fleetwarden.yaml", base_dir=tmp_path)
    made = make_connectors(config, ledger=ledger, acl=Acl([]), clock=clock, environ={})
    assert sorted(c.name for c in made) == ["console", "discord", "matrix"]
    start = clock.now()
    clock.advance(5)
    for connector in made:
        assert connector.link.report().since == start, connector.name
        connector.link.connected()
        assert connector.link.report().since == start + timedelta(seconds=5), connector.name
