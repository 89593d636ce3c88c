"""One way to say an amount of tokens or dollars (fleet.metering.units), and every surface saying it
so: chat's tables and lines, the CLI, the dashboard, a forge's comments, the task register."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.render import fleet as render_fleet
from bot.render.spend.budgets import amount
from bot.render.work.task_documents import tokens_words as document_tokens
from fleet.budgets.quoting.words import usd as quote_usd
from fleet.forge.posts.footer import money as forge_money
from fleet.metering.units import tokens, tokens_short, tokens_words, usd

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    ("amount_usd", "said"),
    [
        (0.0, "$0.00"),
        (0.0059, "$0.0059"),
        (0.00012, "$0.00012"),
        (0.0099, "$0.0099"),
        (0.0002, "$0.0002"),
        (0.005, "$0.005"),
        (0.135, "$0.14"),
        (0.14, "$0.14"),
        (0.5, "$0.50"),
        (12.345, "$12.35"),
        (1234.5, "$1,234.50"),
        (-0.5, "-$0.50"),
    ],
)
def test_dollars_are_cents_and_a_sub_cent_spend_stays_visible(amount_usd: float, said: str) -> None:
    """Cents from a cent up; two significant digits below one; never `$0.5000`."""
    assert usd(amount_usd) == said


@pytest.mark.parametrize(
    ("count", "said"), [(3115.0, "3,115"), (42000, "42,000"), (999.6, "1,000"), (0, "0")]
)
def test_tokens_are_whole_with_separators(count: float, said: str) -> None:
    """A token count is never a float (`3115.0`) nor bare (`42000`)."""
    assert tokens(count) == said
    assert tokens_words(count) == f"{said} tokens"
    assert tokens_words(1) == "1 token"


@pytest.mark.parametrize("value", [0.0059, 0.135, 0.5, 2.7, 1234.5])
def test_every_surface_says_dollars_alike(value: float) -> None:
    """Chat's tables, a forge's comment, a quote and a budget's amount say one thing."""
    said = {render_fleet.money(value), forge_money(value), quote_usd(value), amount(value, "usd")}
    assert said == {usd(value)}


@pytest.mark.parametrize("value", [3115.0, 42000, 9400.4])
def test_every_surface_says_tokens_alike(value: float) -> None:
    """The task register's documents and a budget's amount in tokens say one thing; a
    narrow column's short form is the same everywhere too."""
    assert document_tokens(value) == tokens_words(value)
    assert amount(value, "tokens") == tokens(value)
    assert render_fleet.compact(round(value)) == tokens_short(value)


@pytest.mark.parametrize(
    ("count", "said"), [(0, "0"), (999, "999"), (3115.0, "3.1k"), (12_345, "12.3k"), (2e6, "2M")]
)
def test_a_narrow_column_shortens_a_count(count: float, said: str) -> None:
    """`ps` and the task list's columns say `12.3k`, never `3115.0`."""
    assert tokens_short(count) == said


RENDERERS = [
    "bot/render",
    "bot/cli",
    "bot/dashboard",
    "fleet/forge/posts",
    "fleet/markdown",
    "fleet/tasks",
    "scheduler",
]
"""Where words for people are made (machine outputs, JSON and /metrics, keep raw numbers)."""

BY_HAND = re.compile(
    r"\$\{[^}]*:[^}]*\}"  # "${x:.2f}": dollars formatted by hand
    r"|\{[^}:]*:,?\.?\d*f?\} tokens"  # "{n:,} tokens", "{n:.0f} tokens"
    r"|\{[\w.\[\]'\"]+\} tokens\b"  # "{n} tokens": a count shown bare
)
AXIS_TICKS = {"bot/render/spend/report_chart.py"}
"""A chart's axis labels (`$10`, `1.5k`) are ticks on a scale, not amounts read."""


def test_no_renderer_formats_money_or_tokens_by_hand() -> None:
    """Every amount shown to a person goes through fleet.metering.units."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in RENDERERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in AXIS_TICKS
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BY_HAND.search(line) and "log." not in line
    ]
    assert found == []
