"""The connectors' link health on the fleet page's data and in ``/metrics``: each one up or
down since when, its last error redacted as chat would, and ``fleetwarden_connector_up``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.dashboard.pages.metrics import Metrics, Snapshot
from bot.dashboard.pages.pages import Pages
from connectors.health import LinkHealth
from fleet.ledger import Ledger
from fleet.ledger.stores.operators.dashboard import UsageSum
from fleet.timing.clock import ManualClock
from tests.unit.bot.dashboard.views_rig import views_over

SECRET = "syt_" + "bm90LWEtcmVhbC10b2tlbg_Zx9Lq2Vw8Ks4Hd"


async def test_the_fleet_data_and_metrics_show_each_connector_up_or_down(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """matrix lost with its token and markup in the error: down, the error redacted, on
    the page as text; the console up; /metrics says 0 and 1."""
    console, matrix = LinkHealth("console", clock), LinkHealth("matrix", clock)
    console.connected()
    matrix.connected()
    clock.advance(30)
    matrix.event()
    clock.advance(5)
    matrix.lost(f"401 <script>x</script> https://hs/_matrix?access_token={SECRET}\nsecond line")
    views = views_over(
        ledger,
        clock,
        tmp_path,
        redact=lambda text: text.replace(SECRET, "[redacted]"),
        links=lambda: [console.report(), matrix.report()],
    )
    fleet = await views.fleet()
    shown = {link["name"]: link for link in fleet["connectors"]}
    assert shown["console"]["up"] is True and shown["console"]["last_error"] is None
    down = shown["matrix"]
    assert (down["up"], down["connected"], down["logged_in"]) == (False, False, True)
    assert down["since"] == down["last_error_at"] == clock.now().isoformat()
    assert down["last_event_at"] == (clock.now() - timedelta(seconds=5)).isoformat()
    said = "401 <script>x</script> https://hs/_matrix?access_token=[redacted] second line"
    assert down["last_error"] == said
    html = Pages().fragment("fleet", fleet)
    assert '<div class="" data-connector="console"' in html
    assert '<div class="bad" data-connector="matrix"' in html and "<b>matrix</b> down since" in html
    assert "<script>" not in html and SECRET not in html and "&lt;script&gt;" in html

    async def no_usage(after: int) -> tuple[list[UsageSum], int]:
        return [], after

    text = (await Metrics().render(Snapshot(fleet=fleet), no_usage)).decode()
    assert 'fleetwarden_connector_up{connector="console"} 1.0' in text
    assert 'fleetwarden_connector_up{connector="matrix"} 0.0' in text
    assert SECRET not in text
