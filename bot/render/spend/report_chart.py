"""Drawing the pacing chart with matplotlib: one panel per budget window.

Uses ``Figure`` with the Agg canvas directly, never ``pyplot``: no global figure manager, no
GUI backend chosen behind our back, and no state shared between charts drawn in worker
threads. :func:`bot.render.spend.report.render_chart` is the entry point; it imports this module
only when a chart is drawn, because importing matplotlib takes a noticeable time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Final

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bot.render.spend.budgets import ratio, reset, share, status_words
from fleet.budgets.model import BudgetStatus

PANEL_WIDTH_PX: Final = 1000
PANEL_HEIGHT_PX: Final = 380
DPI: Final = 100

_COLOURS: Final = {
    "use": "#1f6fb4",
    "even": "#7f7f7f",
    "limit": "#c0392b",
    "reset": "#8e44ad",
    "now": "#2c3e50",
    "projected": "#e67e22",
}


def draw(panels: Sequence[BudgetStatus], path: Path, tz: tzinfo) -> Path:
    """Draw ``panels`` one under the other into a PNG at ``path``; times shown in ``tz``."""
    figure = Figure(
        figsize=(PANEL_WIDTH_PX / DPI, PANEL_HEIGHT_PX * len(panels) / DPI),
        dpi=DPI,
        layout="constrained",
    )
    FigureCanvasAgg(figure)
    for index, status in enumerate(panels, start=1):
        panel(figure.add_subplot(len(panels), 1, index), status, tz)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def panel(axes: Axes, status: BudgetStatus, tz: tzinfo) -> None:
    """Draw ``status``'s window on ``axes``: use so far, the even spread, the projection,
    the limit, now and the reset, the reset's confidence in the legend."""
    start, end, now = _x(status.start), _x(status.end), _x(status.now)
    points = [(_x(when), used) for when, used in status.series] or [(start, 0.0)]
    if points[-1][0] < now:
        points.append((now, status.used))
    times, values = zip(*points, strict=True)
    unit = status.unit
    used = f"used {_tick(status.used, unit)}{share(status.used, status.limit)}"
    axes.plot(times, values, color=_COLOURS["use"], linewidth=2.2, label=used)
    axes.plot(
        [start, end],
        [0, status.limit],
        color=_COLOURS["even"],
        linestyle=":",
        linewidth=1.6,
        label="even spread",
    )
    axes.plot(
        [now, end],
        [status.used, status.projected_end_use],
        color=_COLOURS["projected"],
        linestyle="--",
        linewidth=1.8,
        label=f"projected at current rate: {_tick(status.projected_end_use, unit)}",
    )
    limit = f"limit {_tick(status.limit, unit)}"
    axes.axhline(status.limit, color=_COLOURS["limit"], linewidth=1.4, label=limit)
    axes.axvline(now, color=_COLOURS["now"], linewidth=1, alpha=0.6)
    when = f"{status.end.astimezone(tz):%a %H:%M}"
    axes.axvline(end, color=_COLOURS["reset"], linewidth=1.4, label=reset(status, when))
    top = max(status.limit, status.projected_end_use, status.used, *values) * 1.12
    top = top if math.isfinite(top) and top > 0 else 1.0
    axes.set_ylim(0, top)
    span = end - start
    axes.set_xlim(start - span * 0.01, end + span * 0.06)
    axes.annotate(
        f"reset {when}",
        xy=(end, top),
        xytext=(-4, -4),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=9,
        color=_COLOURS["reset"],
    )
    axes.annotate(
        "now",
        xy=(now, top),
        xytext=(3, -4),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=9,
        color=_COLOURS["now"],
    )
    # matplotlib's dates module has no annotations: the two constructors are untyped.
    locator = mdates.AutoDateLocator(tz=tz, minticks=4, maxticks=9)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=tz)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: _tick(y, unit)))
    axes.grid(True, alpha=0.25)
    axes.legend(loc="upper left", fontsize=8, framealpha=0.85)
    state = status_words(status)
    axes.set_title(
        f"{status.budget.scope} · {status.budget.window.label} · {state} "
        f"({ratio(status.pace_ratio)}) · {status.source}",
        fontsize=11,
        loc="left",
    )


def _x(moment: datetime) -> float:
    """``moment`` as matplotlib's date number (days since its epoch, from UTC)."""
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def _tick(value: float, unit: str) -> str:
    if unit == "usd":
        return f"${value:,.0f}" if abs(value) >= 10 else f"${value:.2f}"
    for suffix, size in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}"
