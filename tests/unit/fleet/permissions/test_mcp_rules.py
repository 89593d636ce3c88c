"""Rules naming MCP tools (``mcp__<server>__<tool>``), in the forms Claude Code takes
(docs/mcp-clis.md): one tool, or every tool of a server as ``mcp__srv`` or ``mcp__srv__*``;
whole names only, never a prefix."""

from __future__ import annotations

import pytest

from fleet.permissions.rules import (
    BadRule,
    first_match,
    first_refusal,
    mcp_server_of,
    parse_rule,
)

ECHO = "mcp__srv__echo"


@pytest.mark.parametrize("rule", ["mcp__srv__echo", "mcp__srv", "mcp__srv__*", " mcp__srv "])
def test_each_form_allows_and_refuses_the_tool(rule: str) -> None:
    """The tool's exact name, its server alone and the server with ``__*`` each cover it,
    as an allow rule and as a deny rule."""
    assert first_match([rule], ECHO, "") == rule
    assert first_refusal([rule], ECHO, '{"text": "x"}') == rule


@pytest.mark.parametrize(
    ("rule", "tool"),
    [
        ("mcp__srv", "mcp__srv2__echo"),  # another server whose name starts alike
        ("mcp__srv__*", "mcp__srvx__echo"),
        ("mcp__srv__echo", "mcp__srv__echo_all"),  # a tool whose name starts alike
        ("mcp__srv__echo", "mcp__srv__ech"),
        ("mcp__srv__echo", "mcp__other__echo"),
        ("mcp__srv", "mcp__srv"),  # a server is not a tool
        ("mcp__srv", "Bash"),
    ],
)
def test_a_name_that_only_starts_alike_is_not_covered(rule: str, tool: str) -> None:
    """Server and tool are whole names: a rule covers no tool whose name merely begins with
    its text."""
    assert first_match([rule], tool, "") is None
    assert first_refusal([rule], tool, "") is None


def test_an_mcp_rule_reads_back_in_its_plain_form() -> None:
    """``mcp__srv__*`` is the server's rule, written back as ``mcp__srv`` (which Claude Code
    takes too); a tool's rule is itself."""
    assert str(parse_rule("mcp__srv__*")) == "mcp__srv"
    assert str(parse_rule("mcp__srv")) == "mcp__srv"
    assert str(parse_rule("mcp__my-srv__search.v2")) == "mcp__my-srv__search.v2"


@pytest.mark.parametrize(
    "text",
    ["mcp__srv__echo(*)", "mcp__Srv__echo", "mcp__srv__", "mcp__srv__ech*", "mcp__", "mcp__a_b"],
)
def test_a_malformed_mcp_rule_says_how_to_write_one(text: str) -> None:
    """A pattern in parentheses, a server name the config could not have, or a partial ``*``
    is refused, naming the forms that work."""
    with pytest.raises(BadRule, match="mcp__SERVER__TOOL"):
        parse_rule(text)


def test_other_rules_never_cover_an_mcp_tool() -> None:
    """``Bash``, ``Edit`` and a rule with a pattern cover no MCP tool, and an MCP rule no
    other tool."""
    assert first_match(["Bash", "Edit", "Bash(*)"], ECHO, "") is None
    assert first_match(["mcp__srv"], "Bash", "mcp__srv__echo") is None


def test_the_server_of_a_tool_name() -> None:
    """The server is read from a whole ``mcp__<server>__<tool>`` name only."""
    assert mcp_server_of(ECHO) == "srv"
    assert mcp_server_of("mcp__my-srv__a.b") == "my-srv"
    assert mcp_server_of("mcp__srv") is None
    assert mcp_server_of("Bash") is None
