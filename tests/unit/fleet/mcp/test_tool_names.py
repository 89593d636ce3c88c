"""What the config check says of a ``tools:`` entry the server does not list: the names
the server lists are its own text, shown quoted with their control characters escaped."""

from __future__ import annotations

from fleet.mcp.config.tool_names import unlisted


def test_a_servers_listed_names_reach_the_terminal_escaped() -> None:
    """A listed name carrying a terminal title escape, a colour and a forged line is shown
    quoted, its escapes and its newline written out, never raw."""
    hostile = "ech\x1b]0;PWNED\x07\x1b[31mRED\nforged line: all good"
    [(index, said)] = unlisted("evil", ["zzzz"], [hostile])
    assert index == 0
    assert "\x1b" not in said and "\x07" not in said and "\n" not in said
    assert "'ech\\x1b]0;PWNED\\x07\\x1b[31mRED\\nforged line: all good'" in said


def test_a_close_name_is_named_as_meant() -> None:
    """`get_env` beside a listed `get-env` names `get-env`."""
    [(_, said)] = unlisted("everything", ["get_env"], ["get-env", "echo"])
    assert "did you mean 'get-env'?" in said
