"""The list of commands as each surface shows it: two narrow columns in a Matrix table, a
list on Discord, columns fitted to the terminal on the console — never a word cut."""

from __future__ import annotations

import re

import pytest

from bot.commands.help import LISTED_USAGE, help_text
from bot.commands.specs import COMMANDS
from connectors.markdown import to_html, to_plain
from connectors.markdown_discord import to_discord

HELP = help_text(COMMANDS, None)


def test_the_usage_column_stays_narrow_with_long_flags_named_in_help_command() -> None:
    """No usage in the list is longer than a short line plus `[flags]`; the flags a long
    usage drops are in `help COMMAND`."""
    usages = re.findall(r"^\| `([^`]*)` \|", HELP, re.MULTILINE)
    assert len(usages) > 40
    assert max(map(len, usages)) <= LISTED_USAGE + len(" [flags]")
    assert "spawn NAME [flags]" in usages
    assert "[--max-usd X]" in help_text(COMMANDS, "spawn")


def test_on_matrix_the_list_is_a_two_column_table_with_short_code_cells() -> None:
    """Element shows an HTML table: every row has its usage as short code and its summary."""
    html = to_html(HELP)
    assert html.count("<tr>") == HELP.count("\n| ") + 1  # a row for each command, and the head
    cells = re.findall(r"<td><code>([^<]*)</code></td>", html)
    assert max(map(len, cells)) <= LISTED_USAGE + len(" [flags]")


def test_on_discord_the_list_is_one_item_per_command() -> None:
    """Too wide for a code block, the table is a list: each command on one line, its usage
    bold, then what it does."""
    text = to_discord(HELP)
    items = [line for line in text.splitlines() if line.startswith("- **")]
    assert len(items) == HELP.count("\n| ")
    assert "- **spawn NAME [flags]** — Start an agent." in items
    assert "|---|" not in text


@pytest.mark.parametrize("width", [60, 80, 120])
def test_on_the_console_the_list_fits_the_terminal_without_cutting_a_word(width: int) -> None:
    """At 60, 80 or 120 columns no line is wider, and every word is a whole word of the
    help (its rules aside)."""
    text = to_plain(HELP, width=width)
    assert max(map(len, text.splitlines())) <= width
    words = set(to_plain(HELP).split())
    assert [w for w in text.split() if w not in words and w.strip("-")] == []
