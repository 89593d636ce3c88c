"""What ``check-config`` says a forge's webhook must point at: the whole address, from
the config's ``dashboard:`` section (its ``public_url``, else its ``listen``), the default
one without the section, and never the dashboard's own name on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.check.offline import webhook_base
from bot.config.checks.forges import summary_lines
from bot.config.reading.load import parse_config

FORGE = """\
state_dir: ./state
forges:
  gh:
    kind: github
    token_env: FLEETWARDEN_GITHUB_TOKEN
    webhook_secret_env: GH_HOOK
    login: acme-bot
"""


@pytest.mark.parametrize(
    ("dashboard", "base"),
    [
        ("", "http://127.0.0.1:8750"),
        ("dashboard: {}\n", "http://127.0.0.1:8750"),
        ("dashboard: {listen: 127.0.0.1:9100}\n", "http://127.0.0.1:9100"),
        ("dashboard: {listen: '[::1]:9100'}\n", "http://[::1]:9100"),
        (
            "dashboard: {listen: 127.0.0.1:8750, public_url: https://fleet.example.org/}\n",
            "https://fleet.example.org",
        ),
        (
            "dashboard: {listen: 0.0.0.0:8750, allow_plain_http: true}\n",
            "http://<this machine's address>:8750",
        ),
    ],
)
def test_the_webhook_address_follows_the_dashboards_section(
    tmp_path: Path, dashboard: str, base: str
) -> None:
    """Each forge's line names the address its webhook is pointed at, whole."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "dashboard-name").write_text("fleetwarden-" + "a" * 26 + ".localhost")
    config = parse_config(FORGE + dashboard, "f.yaml", base_dir=tmp_path)
    assert webhook_base(config) == base
    [line] = summary_lines(config.forges, webhook_base(config))
    assert f"webhooks at {base}/webhooks/gh;" in line
    assert "localhost" not in line  # the dashboard's own name stays unsaid
