"""Tests for bot.render.spend.report: the pacing table's numbers and wording, and the PNG chart."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from bot.dashboard.pages.shapes import budget_json
from bot.render.spend.budgets import budgets
from bot.render.spend.report import (
    NO_BUDGETS,
    active_windows,
    chart_path,
    prune_charts,
    render_chart,
    render_text,
    write_chart,
)
from connectors.matrix.messages.render import png_size
from fleet.budgets.model import BudgetStatus, Source
from fleet.ledger.records.budgets import Burst, Confidence, Scope, Step, WindowKind, WindowSpec
from tests.fakes.doubles.budget_book import budget, paced

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)  # 11:00 in Berlin (CET, UTC+1)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DAY = timedelta(days=1)
HEADERS = [
    "scope",
    "window",
    "used",
    "limit",
    "pace",
    "projected at reset",
    "runs out",
    "status",
    "step",
    "source",
]


def coder(**changes: Any) -> BudgetStatus:
    """agent:coder-1, a 10 h window from 06:00 UTC: half the limit used at 40 % of it."""
    spec = budget("agent:coder-1", timedelta(hours=10), 1_000_000)
    start = NOW - timedelta(hours=4)
    changes.setdefault("series", [(start + timedelta(hours=h), 125_000.0 * h) for h in range(5)])
    return paced(spec, start, NOW, 500_000, **changes)


def backend(**changes: Any) -> BudgetStatus:
    """group:backend, a 7-day window started 2 days 1 hour ago, well under pace."""
    spec = budget("group:backend", timedelta(days=7), 50_000_000)
    return paced(spec, NOW - timedelta(days=2, hours=1), NOW, 1_234_567, **changes)


def rows(markdown: str) -> dict[str, dict[str, str]]:
    """The table's rows by scope, each as {header: cell}."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split(" | ")]
    assert header == HEADERS
    table: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        table[cells[0].strip("`")] = dict(zip(header, cells, strict=True))
    return table


def drawn(wanted: tuple[int, int, int], colours: set[Any]) -> bool:
    """Whether some RGB pixel has (nearly: lines are antialiased) the ``wanted`` colour."""
    return any(sum(abs(a - b) for a, b in zip(wanted, c, strict=True)) <= 24 for c in colours)


# --- text ----------------------------------------------------------------------------------


def test_a_row_shows_the_budgets_numbers() -> None:
    """used, limit, pace ratio, projection and exhaustion are shown as computed, in the zone."""
    row = rows(render_text([coder()], NOW, BERLIN))["agent:coder-1"]
    assert row == {
        "scope": "`agent:coder-1`",
        "window": "10h, resets 17:00 (set by you)",
        "used": "500,000 (50%)",
        "limit": "1,000,000",
        "pace": "1.25×",
        "projected at reset": "1,250,000 (125%)",
        "runs out": "15:00",
        "status": "over pace",
        "step": "—",
        "source": "metering",
    }


def test_a_budget_that_will_not_run_out_shows_a_dash_and_dates_beyond_today() -> None:
    """No exhaustion is a dash; a reset on another day carries its date."""
    row = rows(render_text([backend(source=Source.PROVIDER)], NOW, BERLIN))["group:backend"]
    assert row["window"] == "1w, resets Nov 27 10:00 (provider)"
    assert row["used"] == "1,234,567 (2%)"
    assert row["pace"] == "0.08×"
    assert row["projected at reset"] == "4,232,801 (8%)"
    assert row["runs out"] == "—"
    assert row["status"] == "under pace"
    assert row["source"] == "provider"


def test_one_row_per_budget_in_the_given_order_with_the_time_and_zone() -> None:
    """The table has a row per status, in order, under a heading with the local time."""
    text = render_text([coder(), backend(source=Source.ESTIMATED)], NOW, BERLIN)
    assert text.startswith("Pacing at 2026-11-22 11:00 CET:\n")
    assert list(rows(text)) == ["agent:coder-1", "group:backend"]
    assert rows(text)["group:backend"]["source"] == "estimated"


def test_times_follow_the_time_zone() -> None:
    """The same instants read differently in another zone."""
    row = rows(render_text([coder()], NOW, ZoneInfo("America/New_York")))["agent:coder-1"]
    assert row["window"] == "10h, resets 11:00 (set by you)"
    assert row["runs out"] == "09:00"


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"step": Step.DOWNGRADE, "level": 1}, "downgrade (1 rung)"),
        ({"step": Step.DOWNGRADE, "level": 2}, "downgrade (2 rungs)"),
        ({"step": Step.QUEUE, "queued_until": NOW + timedelta(minutes=30)}, "queued until 11:30"),
        ({"step": Step.QUEUE}, "queue"),
        ({"step": Step.REFUSE}, "refuse until 17:00"),
    ],
)
def test_the_enforcement_step(changes: dict[str, object], shown: str) -> None:
    """Each step reads as the operator needs it: rungs, the queue's end, the refusal's end."""
    assert rows(render_text([coder(**changes)], NOW, BERLIN))["agent:coder-1"]["step"] == shown


def test_active_bursts_are_listed_with_who_until_and_why() -> None:
    """An active burst marks the status and is listed: scope, until, who granted it, why."""
    grant = Burst(
        Scope.parse("agent:coder-1"),
        NOW + timedelta(hours=22),
        "@ann:example.org",
        "release crunch",
    )
    text = render_text([coder(burst=grant), backend()], NOW, BERLIN)
    assert rows(text)["agent:coder-1"]["status"] == "over pace (burst)"
    assert (
        "- `agent:coder-1` may spend past its pace until Nov 23 09:00, granted by "
        "@ann:example.org — release crunch"
    ) in text.splitlines()


def test_an_expired_burst_is_not_shown() -> None:
    """A burst whose time is over is neither listed nor marked."""
    grant = Burst(Scope.parse("agent:coder-1"), NOW - timedelta(minutes=1), "@ann:example.org")
    text = render_text([coder(burst=grant)], NOW, BERLIN)
    assert "Bursts" not in text and "(burst)" not in text


def test_cost_budgets_are_shown_in_dollars() -> None:
    """A usd budget shows dollars with cents."""
    status = replace(coder(), unit="usd", used=12.5, limit=50.0, projected_end_use=31.25)
    row = rows(render_text([status], NOW, BERLIN))["agent:coder-1"]
    assert (row["used"], row["limit"], row["projected at reset"]) == (
        "$12.50 (25%)",
        "$50.00",
        "$31.25 (62%)",
    )


def test_what_live_runs_hold_is_shown_beside_what_was_spent() -> None:
    """Live runs' quotes held against a budget are shown after its use, in its unit, in
    the pacing report and in `budget`; nothing held, nothing said."""
    status = replace(coder(), unit="usd", used=0.4, limit=3.5, held=2.7, holding=3)
    row = rows(render_text([status], NOW, BERLIN))["agent:coder-1"]
    assert row["used"] == "$0.40 (11%) + $2.70 held by 3 runs"
    assert "$0.40 + $2.70 held by 3 runs / $3.50 (11%)" in budgets([status], NOW, BERLIN)
    one = replace(coder(), held=30_000.0, holding=1)
    assert rows(render_text([one], NOW, BERLIN))["agent:coder-1"]["used"] == (
        "500,000 (50%) + 30,000 held by 1 run"
    )
    assert " held by" not in render_text([coder()], NOW, BERLIN)
    shown = budget_json(status)  # the dashboard's budget JSON
    assert (shown["held"], shown["holding_runs"]) == (2.7, 3)


def test_an_undefined_pace_is_a_dash() -> None:
    """At the very start of a window the pace ratio is undefined: a dash, not 'nan×'."""
    row = rows(render_text([coder(pace_ratio=float("nan"))], NOW, BERLIN))["agent:coder-1"]
    assert row["pace"] == "—"


def test_no_budgets() -> None:
    """Without budgets the report says so."""
    assert render_text([], NOW, BERLIN) == NO_BUDGETS


@pytest.mark.parametrize(
    ("window", "source", "shown"),
    [
        (WindowSpec(WindowKind.ROLLING, DAY), Source.PROVIDER, "1d, resets 18:00 (provider)"),
        (WindowSpec(WindowKind.DAILY), Source.METERING, "daily, resets 18:00 (set by you)"),
        (
            WindowSpec(WindowKind.ROLLING, DAY, NOW, Confidence.PROVIDER),
            Source.METERING,
            "1d, resets 18:00 (provider)",
        ),
        (WindowSpec(WindowKind.ROLLING, DAY), Source.ESTIMATED, "1d, resets 18:00 (estimated)"),
        (
            WindowSpec(WindowKind.FIXED, DAY, NOW + timedelta(hours=7), Confidence.UNKNOWN),
            Source.METERING,
            "until 2026-11-22 17:00 UTC, resets 18:00 (unknown)",
        ),
    ],
)
def test_each_reset_says_how_sure_it_is(window: WindowSpec, source: Source, shown: str) -> None:
    """The provider's reset, a calendar window or a reset_at the user gave (in the words
    they chose for it), a window of our own, one declared unknown."""
    spec = replace(budget("agent:coder-1", DAY, 1_000_000), window=window)
    status = paced(spec, NOW - timedelta(hours=17), NOW, 1000.0, source=source)
    assert rows(render_text([status], NOW, BERLIN))["agent:coder-1"]["window"] == shown


def test_a_reset_that_has_passed_says_the_next_is_unknown() -> None:
    """A fixed window whose reset_at has gone by: no reset is promised."""
    spec = budget("agent:coder-1", DAY, 1_000_000)
    spec = replace(spec, window=WindowSpec(WindowKind.FIXED, DAY, NOW - timedelta(hours=1)))
    status = paced(spec, NOW - timedelta(days=1, hours=1), NOW, 1000.0)
    row = rows(render_text([status], NOW, BERLIN))["agent:coder-1"]
    assert row["window"] == "until 2026-11-22 09:00 UTC, reset 10:00 passed, next unknown"


# --- chart ---------------------------------------------------------------------------------


def test_the_chart_is_a_png_of_one_panel_per_active_window(tmp_path: Path) -> None:
    """A real PNG is written: the signature, chat-readable pixels per panel, a modest size."""
    from bot.render.spend.report_chart import PANEL_HEIGHT_PX, PANEL_WIDTH_PX  # matplotlib

    path = render_chart([coder(), backend()], tmp_path / "chart.png", BERLIN)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert png_size(data) == (PANEL_WIDTH_PX, 2 * PANEL_HEIGHT_PX)
    assert 10_000 < len(data) < 400_000
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (PANEL_WIDTH_PX, 2 * PANEL_HEIGHT_PX)
        colours = {colour for _count, colour in image.convert("RGB").getcolors(1 << 20) or []}
    assert drawn((0x1F, 0x6F, 0xB4), colours)  # the cumulative-use line
    assert drawn((0xC0, 0x39, 0x2B), colours)  # the limit


def test_ended_windows_get_no_panel(tmp_path: Path) -> None:
    """A status whose window is over is left out; with none active, there is no chart."""
    from bot.render.spend.report_chart import PANEL_HEIGHT_PX, PANEL_WIDTH_PX  # matplotlib

    ended = replace(backend(), now=backend().end + timedelta(minutes=1))
    assert active_windows([coder(), ended]) == [coder()]
    path = render_chart([coder(), ended], tmp_path / "one.png", BERLIN)
    assert png_size(path.read_bytes()) == (PANEL_WIDTH_PX, PANEL_HEIGHT_PX)
    with pytest.raises(ValueError, match="no budget has an active window"):
        render_chart([ended], tmp_path / "none.png", BERLIN)
    assert not (tmp_path / "none.png").exists()


@pytest.mark.parametrize(
    ("source", "tag"), [(Source.PROVIDER, "provider"), (Source.METERING, "set by you")]
)
def test_the_charts_legend_names_the_reset_and_how_sure_it_is(source: Source, tag: str) -> None:
    """The reset line is in the legend with its day, time and confidence."""
    from matplotlib.figure import Figure

    from bot.render.spend.report_chart import panel

    axes = Figure().add_subplot()
    panel(axes, backend(source=source), BERLIN)
    legend = axes.get_legend()
    assert legend is not None
    assert f"resets Fri 10:00 ({tag})" in [text.get_text() for text in legend.get_texts()]


def test_a_window_without_series_or_use_still_draws(tmp_path: Path) -> None:
    """No recorded series and nothing used yet is a valid, drawable window."""
    spec = budget("agent:idle", timedelta(hours=5), 1_000_000)
    empty = paced(spec, NOW - timedelta(hours=1), NOW, 0.0)
    assert render_chart([empty], tmp_path / "empty.png", BERLIN).read_bytes()[:8] == PNG_SIGNATURE


def test_drawing_never_touches_pyplot() -> None:
    """The chart is drawn with Figure and the Agg canvas: pyplot is never imported."""
    code = (
        "import sys, tempfile, pathlib, zoneinfo\n"
        "from tests.unit.bot.render.test_report import coder\n"
        "from bot.render.spend.report import render_chart\n"
        "render_chart([coder()], pathlib.Path(tempfile.mkdtemp()) / 'c.png', "
        "zoneinfo.ZoneInfo('UTC'))\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_importing_the_report_does_not_import_matplotlib() -> None:
    """matplotlib loads only when a chart is drawn, not when the bot imports the report."""
    code = (
        "import sys, bot.commands.handlers.agents.control, bot.render.spend.report\n"
        "import scheduler.report_job\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- keeping charts ------------------------------------------------------------------------


def test_charts_are_named_by_utc_time_and_never_overwritten(tmp_path: Path) -> None:
    """pacing-YYYYmmdd-HHMMSS.png in UTC; a second chart in the same second gets -2."""
    local = NOW.astimezone(BERLIN)
    first = write_chart([coder()], tmp_path / "reports", local, BERLIN)
    second = write_chart([coder()], tmp_path / "reports", local, BERLIN)
    assert first.name == "pacing-20261122-100000.png"
    assert second.name == "pacing-20261122-100000-2.png"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "pacing-20261122-100000-2.png",
        "pacing-20261122-100000.png",
    ]  # no partial files left behind


def test_only_the_newest_twenty_charts_are_kept(tmp_path: Path) -> None:
    """Older report charts are deleted; files that are not report charts are left alone."""
    reports = tmp_path / "reports"
    reports.mkdir()
    for minute in range(25):
        chart_path(reports, NOW + timedelta(minutes=minute)).write_bytes(PNG_SIGNATURE)
    (reports / "notes.txt").write_text("keep me")
    newest = write_chart([coder()], reports, NOW + timedelta(hours=1), BERLIN)
    kept = sorted(p.name for p in reports.glob("pacing-*.png"))
    assert len(kept) == 20
    assert kept[0] == "pacing-20261122-100600.png"  # minutes 0-5 went
    assert newest.name == kept[-1] == "pacing-20261122-110000.png"
    assert (reports / "notes.txt").exists()


def test_pruning_orders_serials_after_their_second(tmp_path: Path) -> None:
    """Within one second the plain name is older than -2, which is older than -10."""
    for name in ("pacing-20261122-100000-10.png", "pacing-20261122-100000-2.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "pacing-20261122-100000.png").write_bytes(b"")
    deleted = prune_charts(tmp_path, keep=1)
    assert [p.name for p in deleted] == [
        "pacing-20261122-100000.png",
        "pacing-20261122-100000-2.png",
    ]
