"""Tests for bot.commands.specs: the command table and the markdown help rendered from it."""

from __future__ import annotations

import pytest

from bot.commands.errors import ParseError
from bot.commands.help import LISTED_USAGE, help_text
from bot.commands.parsing.grammar import ArgSpec, CommandSpec, Grammar
from bot.commands.specs import COMMANDS

USAGES = {
    "help": "help [COMMAND]",
    "ps": "ps",
    "spawn": (
        "spawn NAME [--runtime R] [--model M] [--prompt TEXT] [--workdir DIR] [--host H]"
        " [--account A] [--permissions MODE] [--urgent] [--max-tokens N] [--max-usd X]"
        " [--quote-under X] [--new] [--if-absent] [--repo REPO] [--base REF] [--fresh]"
    ),
    "stop": "stop NAME [--force]",
    "restart": "restart NAME [--force] [--only idle]",
    "freeze": "freeze NAME [--reason TEXT]",
    "resume": "resume NAME",
    "raise": "raise NAME [AMOUNT] [MORE]",
    "send": "send NAME TEXT",
    "interrupt": "interrupt NAME",
    "permissions": "permissions NAME MODE [RULE]",
    "approve": "approve ID [MODE]",
    "deny": "deny ID [REASON]",
    "answer": "answer ID TEXT",
    "pending": "pending",
    "logs": "logs NAME [--lines N] [--raw]",
    "runs": "runs NAME [--last N]",
    "watch": "watch NAME [--follow]",
    "msgs": "msgs [NAME] [--limit N]",
    "diff": "diff NAME [FILE] [--stat]",
    "branches": "branches [REPO]",
    "merge": "merge NAME [--squash] [--rebase] [--merge] [--unreviewed]",
    "push": "push NAME [--unreviewed]",
    "discard": "discard NAME",
    "pr": "pr NAME [--draft]",
    "forge": "forge [WHAT]",
    "usage": "usage [NAME] [--window WINDOW] [--host H]",
    "pace": "pace",
    "report": "report [changes]",
    "budget": "budget [set|unset|remove|allow-burst|end-burst]",
    "roster": "roster [reload|add|set|remove]",
    "forget": "forget NAME",
    "schedule": "schedule [add|list|remove]",
    "task": "task [new|start|done|cancel] TASK",
    "tasks": "tasks [--mission M] [--state S]",
    "mission": "mission [new|add|approve|deny] NAME",
    "missions": "missions",
    "accounts": "accounts",
    "queue": "queue",
    "cancel": "cancel ID",
    "egress": "egress [block|unblock] [NAME]",
    "hosts": "hosts",
    "dashboard": "dashboard [revoke]",
    "verify": "verify ID ANSWER",
    "whoami": "whoami",
}
CONTROL = {
    "spawn",
    "stop",
    "restart",
    "freeze",
    "resume",
    "raise",
    "send",
    "cancel",
    "forget",
    "verify",
    "interrupt",
    "permissions",
    "merge",
    "push",
    "discard",
    "pr",
}


def test_the_table_has_exactly_the_documented_commands() -> None:
    """COMMANDS holds the documented commands, in help order."""
    assert [spec.name for spec in COMMANDS] == list(USAGES)


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: spec.name)
def test_usage_strings(spec: CommandSpec) -> None:
    """Every command's usage line is exactly as documented."""
    assert spec.usage == USAGES[spec.name]


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: spec.name)
def test_every_spec_is_fully_documented(spec: CommandSpec) -> None:
    """Every command has a summary, a description and one or two examples that parse."""
    assert spec.summary and spec.description
    assert 1 <= len(spec.examples) <= 2
    names = {spec.name, *(f"{spec.name} {sub.name}" for sub in spec.subcommands)}
    grammar = Grammar(COMMANDS)
    for example in spec.examples:
        command = grammar.parse(example, addressed=True)
        assert command is not None and command.name in names


def test_control_commands_are_marked() -> None:
    """Exactly the commands that change the fleet need the operator role."""
    assert {spec.name for spec in COMMANDS if spec.control} == CONTROL


def test_logs_lines_is_bounded() -> None:
    """logs --lines accepts 1..10000 and documents its default of 40."""
    grammar = Grammar(COMMANDS)
    command = grammar.parse("!logs demo --lines 10000")
    assert command is not None and command.int_flag("lines", 40) == 10000
    with pytest.raises(ParseError, match="between 1 and 10000"):
        grammar.parse("!logs demo --lines 10001")
    assert "default 40" in help_text(COMMANDS, "logs")


def test_usage_takes_an_optional_name_and_a_window() -> None:
    """usage parses with or without NAME; --window takes 5h, today, 7d or 30d in any case."""
    grammar = Grammar(COMMANDS)
    bare = grammar.parse("!usage")
    assert bare is not None and dict(bare.args) == {} and bare.str_flag("window") is None
    named = grammar.parse("!usage coder-1 --window 7D")
    assert named is not None
    assert (named.args["NAME"], named.str_flag("window")) == ("coder-1", "7d")
    for window in ("5h", "today", "30d"):
        command = grammar.parse(f"!usage --window {window}")
        assert command is not None and command.str_flag("window") == window


def test_usage_rejects_a_bad_window_naming_the_allowed_ones() -> None:
    """An unknown window is a ParseError that lists every allowed window and the usage."""
    with pytest.raises(ParseError) as caught:
        Grammar(COMMANDS).parse("!usage coder-1 --window 1y")
    assert str(caught.value) == (
        "usage: --window must be one of 5h, today, 7d, 30d, got '1y' "
        "— usage: usage [NAME] [--window WINDOW] [--host H]"
    )


def test_usage_help_lists_the_windows_and_the_default() -> None:
    """usage's help names each window and says today is the default."""
    text = help_text(COMMANDS, "usage")
    assert "- `--window WINDOW` — How far back to count (default today)" in text
    assert "One of: 5h, today, 7d, 30d." in text
    assert "Needs the operator role." not in text


def test_send_takes_natural_text() -> None:
    """send's TEXT is the raw rest of the line, apostrophes included."""
    command = Grammar(COMMANDS).parse("!send demo it's done, isn't it?")
    assert command is not None and command.args["TEXT"] == "it's done, isn't it?"


def test_help_overview_lists_every_command() -> None:
    """The overview is a markdown table with every usage and summary, and the prefix note;
    a long usage shows its flags as `[flags]`, and many subcommands as `[SUBCOMMAND]`."""
    text = help_text(COMMANDS, None)
    lines = text.splitlines()
    assert lines[:2] == ["| command | what it does |", "|---|---|"]
    for spec in COMMANDS:
        usage = spec.usage.replace("|", "\\|")  # a pipe would end the table cell
        if len(spec.usage) > LISTED_USAGE and spec.flags:
            usage = usage[: usage.index(" [--")] + " [flags]"
        if len(spec.usage) > LISTED_USAGE + len(" [flags]") and spec.subcommands:
            usage = f"{spec.name} [SUBCOMMAND]"  # each subcommand has a row of its own
        assert f"| `{usage}` | {spec.summary} |" in lines
    assert "| `spawn NAME [flags]` | Start an agent. |" in lines
    assert "| `stop NAME [--force]` | Stop an agent, or every agent (`stop all`, admin). |" in lines
    assert lines[-1] == (
        "Type `help COMMAND` for details. Commands start with `!` in chat rooms; "
        "on the console the prefix is optional."
    )


def test_help_overview_uses_the_given_prefix() -> None:
    """The overview names the configured prefix; a blank topic means the overview."""
    assert "Commands start with `?` in chat rooms" in help_text(COMMANDS, None, prefix="?")
    assert help_text(COMMANDS, "  ") == help_text(COMMANDS, None)


def test_help_for_one_command() -> None:
    """Per-command help shows usage, description, role, flags and prefixed examples."""
    text = help_text(COMMANDS, "stop")
    assert text.startswith("`stop NAME [--force]`\n\nStop an agent, or every agent")
    assert "SIGTERM" in text and "SIGKILL" in text
    assert "Needs the operator role." in text
    assert "**Flags**\n- `--force` — " in text
    assert "**Arguments**\n- `NAME` — " in text
    assert "```text\n!stop coder-1 --force\n!stop all\n```" in text


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: spec.name)
def test_help_exists_for_every_command(spec: CommandSpec) -> None:
    """Every command has per-command help headed by its usage and listing each flag."""
    text = help_text(COMMANDS, spec.name)
    assert text.startswith(f"`{spec.usage}`")
    assert spec.description in text
    for flag in spec.flags:
        assert f"`--{flag.name}" in text
    assert ("Needs the operator role." in text) == (spec.control and not spec.admin_only)
    assert ("Needs the admin role." in text) == spec.admin_only


def test_help_topic_is_forgiving() -> None:
    """A topic may carry the prefix, other case and extra spaces."""
    assert help_text(COMMANDS, " !SPAWN ") == help_text(COMMANDS, "spawn")


def test_read_only_command_help_does_not_mention_the_role() -> None:
    """A command anyone may run does not claim to need the operator role."""
    assert "operator role" not in help_text(COMMANDS, "ps")


def test_unknown_help_topic_suggests() -> None:
    """An unknown topic raises ParseError naming it and suggesting a close command."""
    with pytest.raises(ParseError) as caught:
        help_text(COMMANDS, "spwan")
    assert str(caught.value) == "help: unknown command 'spwan' — did you mean 'spawn'? Try !help"


def test_unknown_help_topic_without_close_match() -> None:
    """With no close match the error points at help, using the given prefix."""
    with pytest.raises(ParseError, match=r"^help: unknown command 'xyzzy' — try \?help$"):
        help_text(COMMANDS, "xyzzy", prefix="?")


def test_help_for_subcommands() -> None:
    """Subcommands appear in the overview, escaped for the table, and have their own help."""
    specs = (
        CommandSpec(
            "roster",
            "Show the roster.",
            subcommands=(
                CommandSpec("reload", "Reload it.", control=True),
                CommandSpec("show", "Show one.", args=(ArgSpec("NAME", "n", choices=("a", "b")),)),
            ),
        ),
    )
    overview = help_text(specs, None)
    assert "| `roster [reload\\|show]` | Show the roster. |" in overview
    assert "| `roster reload` | Reload it. |" in overview
    parent = help_text(specs, "roster")
    assert (
        "**Subcommands**\n- `roster reload` — Reload it.\n- `roster show NAME` — Show one."
        in parent
    )
    assert "One of: a, b." in help_text(specs, "roster  show")
    assert help_text(specs, "roster reload").startswith("`roster reload`")
