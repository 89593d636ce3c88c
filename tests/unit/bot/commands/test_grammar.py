"""Tests for bot.commands.parsing.grammar: text → Command, None, or a one-line ParseError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands.errors import CommandError, ParseError
from bot.commands.parsing.grammar import (
    ArgSpec,
    Command,
    CommandSpec,
    FlagSpec,
    Grammar,
    qualify,
    walk,
)
from bot.commands.specs import COMMANDS

NAME = ArgSpec("NAME", "the agent")
SPECS = (
    CommandSpec("ps", "list agents"),
    CommandSpec(
        "spawn",
        "start an agent",
        args=(NAME,),
        flags=(
            FlagSpec("runtime", "str", "runtime", "R"),
            FlagSpec("model", "str", "model", "M"),
            FlagSpec("prompt", "str", "first prompt", "TEXT"),
            FlagSpec("force", "bool", "force"),
        ),
        control=True,
    ),
    CommandSpec("send", "send text", args=(NAME, ArgSpec("TEXT", "text", rest=True))),
    CommandSpec(
        "logs",
        "show output",
        args=(NAME,),
        flags=(FlagSpec("lines", "int", "how many", "N", minimum=1, maximum=10000),),
    ),
    CommandSpec("tail", "tail", flags=(FlagSpec("from", "int", "offset", "N", minimum=0),)),
    CommandSpec(
        "mode",
        "set a mode",
        args=(ArgSpec("MODE", "the mode", choices=("fast", "careful")),),
    ),
    CommandSpec(
        "report",
        "show a report",
        flags=(FlagSpec("window", "str", "how far back", "W", choices=("5h", "today")),),
    ),
    CommandSpec("note", "take a note", args=(ArgSpec("TEXT", "text", required=False, rest=True),)),
    CommandSpec(
        "roster",
        "show the roster",
        subcommands=(
            CommandSpec("reload", "reload the roster", control=True),
            CommandSpec("show", "show one entry", args=(ArgSpec("NAME", "n", required=False),)),
        ),
    ),
)
GRAMMAR = Grammar(SPECS)


def parse(text: str, *, addressed: bool = False) -> Command:
    """Parse text that must be a command."""
    command = GRAMMAR.parse(text, addressed=addressed)
    if command is None:
        raise AssertionError(f"{text!r} parsed as ordinary chat")
    return command


def error(text: str, *, addressed: bool = False) -> str:
    """The ParseError message for text that must not parse."""
    with pytest.raises(ParseError) as caught:
        GRAMMAR.parse(text, addressed=addressed)
    return str(caught.value)


# --- prefix and addressing ---------------------------------------------------------------


def test_prefixed_text_is_a_command() -> None:
    """'!ps' parses to the ps command with no arguments or flags."""
    command = parse("!ps")
    assert (command.name, dict(command.args), dict(command.flags)) == ("ps", {}, {})
    assert command.spec.name == "ps"


def test_whitespace_around_and_after_prefix_is_ignored() -> None:
    """Leading/trailing whitespace and spaces after the prefix do not matter."""
    assert parse("  !   ps \n").name == "ps"


def test_unprefixed_text_is_ordinary_chat() -> None:
    """Text without the prefix is not a command unless addressed."""
    assert GRAMMAR.parse("ps") is None
    assert GRAMMAR.parse("hello there, it's me") is None


def test_addressed_text_needs_no_prefix() -> None:
    """Addressed text (console, DM, mention) parses with or without the prefix."""
    assert parse("ps", addressed=True).name == "ps"
    assert parse("!ps", addressed=True).name == "ps"


def test_empty_prefixed_command_is_an_error() -> None:
    """A bare prefix is an 'empty command' error pointing at help."""
    assert error("!") == "empty command — try !help"
    assert error("  !   ") == "empty command — try !help"


def test_empty_addressed_text_is_not_a_command() -> None:
    """Empty or blank addressed text is simply not a command."""
    assert GRAMMAR.parse("", addressed=True) is None
    assert GRAMMAR.parse("  \n ", addressed=True) is None


def test_custom_multi_character_prefix() -> None:
    """A configured prefix replaces '!' and may be longer than one character."""
    grammar = Grammar(SPECS, prefix="fw:")
    command = grammar.parse("fw: ps")
    assert command is not None and command.name == "ps"
    assert grammar.parse("!ps") is None


def test_command_keeps_the_original_text() -> None:
    """Command.text is the text exactly as given."""
    assert parse("  !ps  ").text == "  !ps  "


def test_command_names_are_case_insensitive() -> None:
    """'!PS' and '!Spawn' find their commands (phones capitalise the first word)."""
    assert parse("!PS").name == "ps"
    assert parse("!Spawn demo").name == "spawn"


# --- unknown commands --------------------------------------------------------------------


def test_unknown_command_suggests_the_closest() -> None:
    """An unknown command names itself and suggests a close command name."""
    assert error("!spwan demo") == "unknown command 'spwan' — did you mean 'spawn'? Try !help"


def test_unknown_command_without_close_match() -> None:
    """With no close match the error just points at help (without '!' when addressed)."""
    assert error("xyzzy", addressed=True) == "unknown command 'xyzzy' — try help"


@pytest.mark.parametrize(
    ("word", "meant"),
    [("list", "ps"), ("ls", "ps"), ("kill", "stop"), ("start", "spawn"), ("tail", "logs")],
)
def test_another_tools_word_for_a_command_points_to_ours(word: str, meant: str) -> None:
    """`list`, `ls`, `kill`… — what other tools call a command — name the command meant
    here, never one merely spelt alike (`ls` is not `logs`)."""
    with pytest.raises(ParseError) as caught:
        Grammar(COMMANDS).parse(f"!{word} demo")
    assert str(caught.value) == f"unknown command '{word}' — did you mean '{meant}'? Try !help"


def test_subcommand_name_alone_is_not_a_command() -> None:
    """A subcommand is reachable only through its parent."""
    assert error("!reload").startswith("unknown command 'reload'")


# --- quoting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("!spawn 'a b'", "a b"),
        ('!spawn "a b"', "a b"),
        ("!spawn 'a \\ \"b\"'", 'a \\ "b"'),
        ('!spawn "say \\"hi\\" \\\\ bye"', 'say "hi" \\ bye'),
        ('!spawn "it\'s"', "it's"),
        ('!spawn a"b c"d', "ab cd"),
        ("!spawn x'y z'", "xy z"),
        ("!spawn it\\'s", "it's"),
        ("!spawn C:\\work", "C:\\work"),
        ('!spawn ""', ""),
    ],
)
def test_quoting(text: str, value: str) -> None:
    """Single quotes are literal, double quotes take \\" and \\\\, quotes join adjacent text."""
    assert parse(text).args["NAME"] == value


def test_unterminated_double_quote_names_it_with_usage() -> None:
    """An unclosed " is reported with how to fix it and the recognised command's usage."""
    message = error('!spawn demo --prompt "fix it')
    assert message == (
        'spawn: unterminated " quote — close it or escape it with \\" — '
        "usage: spawn NAME [--runtime R] [--model M] [--prompt TEXT] [--force]"
    )


def test_unterminated_single_quote_in_command_name() -> None:
    """An unclosed quote before the command is known gives no usage."""
    assert error("!'ps") == "unterminated ' quote — close it or escape it with \\'"


def test_unicode_in_names_and_values() -> None:
    """Non-ASCII text survives tokenizing, quoting and the rest argument."""
    command = parse("!spawn naïve --prompt 'résumé 日本語 🚀'")
    assert command.args["NAME"] == "naïve"
    assert command.flags["prompt"] == "résumé 日本語 🚀"
    assert parse("!send ünï ça va? 👍").args["TEXT"] == "ça va? 👍"


def test_unicode_whitespace_separates_tokens() -> None:
    """Non-breaking and other Unicode spaces separate tokens like ASCII spaces."""
    assert dict(parse("!spawn\u00a0demo\u3000--force").flags) == {"force": True}


# --- flags -------------------------------------------------------------------------------


def test_flag_with_separate_value_and_with_equals() -> None:
    """'--flag value' and '--flag=value' (with quotes joined) both work."""
    command = parse('!spawn demo --runtime stub --prompt="a b=c"')
    assert dict(command.flags) == {"runtime": "stub", "prompt": "a b=c"}


def test_flags_may_come_before_positionals() -> None:
    """Flags and positionals may be interleaved."""
    command = parse("!spawn --model m1 demo --force")
    assert dict(command.args) == {"NAME": "demo"}
    assert dict(command.flags) == {"model": "m1", "force": True}


def test_bool_flag_takes_no_value() -> None:
    """A switch is True when given, and the next token stays a positional."""
    command = parse("!spawn --force demo")
    assert command.flags["force"] is True
    assert command.args["NAME"] == "demo"


def test_bool_flag_explicit_value() -> None:
    """'--force=false' and '--force=yes' are accepted; other values are an error."""
    assert parse("!spawn demo --force=false").flags["force"] is False
    assert parse("!spawn demo --force=YES").flags["force"] is True
    assert "--force is a switch" in error("!spawn demo --force=maybe")


def test_flag_names_are_case_insensitive() -> None:
    """'--Force' is the same flag as '--force'."""
    assert parse("!spawn demo --Force").flags == {"force": True}


def test_int_flag_is_converted() -> None:
    """An int flag's value becomes an int."""
    assert parse("!logs demo --lines 200").flags["lines"] == 200
    assert parse("!logs demo --lines=+7").flags["lines"] == 7


def test_int_flag_rejects_non_numbers() -> None:
    """A non-number for an int flag says what was expected and what was got."""
    assert error("!logs demo --lines abc").startswith(
        "logs: --lines expects a whole number, got 'abc' — usage: logs NAME [--lines N]"
    )
    assert "expects a whole number" in error("!logs demo --lines 1.5")
    assert "expects a whole number" in error("!logs demo --lines ５")


def test_int_flag_bounds() -> None:
    """Minimum and maximum are enforced, including for absurdly long numbers."""
    assert "--lines must be between 1 and 10000, got '0'" in error("!logs demo --lines 0")
    assert "must be between 1 and 10000" in error("!logs demo --lines -5")
    assert "must be between 1 and 10000" in error("!logs demo --lines " + "9" * 5000)
    assert "--from must be at least 0, got '-1'" in error("!tail --from=-1")
    assert parse("!tail --from " + "9" * 18).flags["from"] == int("9" * 18)
    assert "--from has too many digits" in error("!tail --from " + "9" * 19)
    assert "--lines must be between 1 and 10000" in error("!logs demo --lines -" + "9" * 19)


def test_unknown_flag_suggests_and_shows_usage() -> None:
    """An unknown flag is named, a close flag suggested, and the usage shown."""
    assert error("!spawn demo --modle x") == (
        "spawn: unknown flag '--modle' (did you mean '--model'?) — "
        "usage: spawn NAME [--runtime R] [--model M] [--prompt TEXT] [--force]"
    )


def test_single_dash_flag_suggests_double_dash() -> None:
    """'-force' is unknown but suggests '--force'."""
    assert "unknown flag '-force' (did you mean '--force'?)" in error("!spawn demo -force")


def test_flag_given_twice() -> None:
    """Repeating a flag is an error, even in both spellings."""
    assert "--model given twice" in error("!spawn demo --model a --model=b")


def test_missing_flag_value() -> None:
    """A value flag at the end, or followed by another flag, has no value."""
    assert "--prompt needs a value" in error("!spawn demo --prompt")
    assert "--prompt needs a value" in error("!spawn demo --prompt --force")


def test_flag_value_may_start_with_a_single_dash() -> None:
    """The token after a value flag is its value even when it looks like '-x'."""
    assert parse("!spawn demo --prompt -v").flags["prompt"] == "-v"


def test_double_dash_ends_flags() -> None:
    """After '--' every token is a positional, even '-5' or '--force'."""
    assert parse("!spawn -- -5").args["NAME"] == "-5"
    assert parse("!spawn --force -- --force").args["NAME"] == "--force"


def test_dash_positional_without_double_dash_is_unknown_flag() -> None:
    """'-5' where a positional is expected is an unknown flag with a hint about '--'."""
    assert error("!spawn -5") == (
        "spawn: unknown flag '-5' (put -- before an argument that starts with '-') — "
        "usage: spawn NAME [--runtime R] [--model M] [--prompt TEXT] [--force]"
    )


def test_quoted_dash_token_is_a_positional() -> None:
    """A token that starts with a quote is never a flag."""
    assert parse('!spawn "-5"').args["NAME"] == "-5"


def test_lone_dash_is_a_positional() -> None:
    """A single '-' is an ordinary value."""
    assert parse("!spawn -").args["NAME"] == "-"


# --- positionals -------------------------------------------------------------------------


def test_missing_required_argument() -> None:
    """A missing positional is named along with the usage."""
    assert error("!spawn") == (
        "spawn: missing NAME — "
        "usage: spawn NAME [--runtime R] [--model M] [--prompt TEXT] [--force]"
    )
    assert error("!send") == "send: missing NAME and TEXT — usage: send NAME TEXT"


def test_extra_argument_is_named() -> None:
    """An extra positional is named in the error."""
    assert error("!ps now") == "ps: unexpected argument 'now' — usage: ps"
    assert "unexpected argument 'b'" in error("!spawn a b")


def test_extra_argument_with_apostrophe_is_unexpected_not_unterminated() -> None:
    """Extra natural text is reported as unexpected, not as a quoting problem."""
    assert error("!ps it's fine") == "ps: unexpected argument 'it's' — usage: ps"


def test_choices_are_enforced_case_insensitively() -> None:
    """An argument with choices accepts them in any case and rejects others with a hint."""
    assert parse("!mode FAST").args["MODE"] == "fast"
    assert error("!mode carefull") == (
        "mode: MODE must be one of fast, careful, got 'carefull' — did you mean 'careful'? "
        "— usage: mode MODE"
    )


def test_flag_choices_are_enforced_case_insensitively() -> None:
    """A string flag with choices accepts them in any case, as spelled in the spec, and
    rejects others naming every allowed value."""
    assert parse("!report --window TODAY").str_flag("window") == "today"
    assert parse("!report --window=5h").str_flag("window") == "5h"
    assert parse("!report").str_flag("window") is None
    assert error("!report --window todya") == (
        "report: --window must be one of 5h, today, got 'todya' — did you mean 'today'? "
        "— usage: report [--window W]"
    )
    assert error("!report --window yesterday") == (
        "report: --window must be one of 5h, today, got 'yesterday' — usage: report [--window W]"
    )


def test_shown_input_is_escaped_and_shortened() -> None:
    """Input quoted in an error is kept to one short line."""
    message = error('!"a\nb"')
    assert message == "unknown command 'a\\nb' — try !help"
    assert "got '1\\t2'" in error('!logs demo --lines "1\t2"')
    assert "'" + "y" * 39 + "…'" in error("!ps " + "y" * 100)


def test_extra_quoted_argument_is_shown_unquoted() -> None:
    """An extra quoted argument is shown as its value."""
    assert "unexpected argument 'a b'" in error('!ps "a b"')


# --- the rest argument -------------------------------------------------------------------


def test_rest_takes_the_raw_remainder() -> None:
    """The rest argument is the line as typed: apostrophes, spacing and quotes inside kept."""
    command = parse('!send demo it\'s   fine, "really"')
    assert command.args == {"NAME": "demo", "TEXT": 'it\'s   fine, "really"'}


def test_rest_keeps_newlines() -> None:
    """A multi-line message is sent with its lines."""
    assert parse("!send demo line one\nline two").args["TEXT"] == "line one\nline two"


def test_rest_wrapped_in_one_pair_of_quotes_is_unwrapped() -> None:
    """A remainder wholly inside one pair of quotes loses them."""
    assert parse('!send demo "hello world"').args["TEXT"] == "hello world"
    assert parse("!send demo 'hello world'").args["TEXT"] == "hello world"
    assert parse('!send demo "say \\"hi\\""').args["TEXT"] == 'say "hi"'


def test_rest_not_wholly_quoted_is_kept_as_typed() -> None:
    """Quotes that do not wrap the whole remainder stay."""
    assert parse('!send demo "a" and "b"').args["TEXT"] == '"a" and "b"'
    assert parse("!send demo 'it's'").args["TEXT"] == "'it's'"
    assert parse('!send demo "unclosed').args["TEXT"] == '"unclosed'


def test_rest_after_double_dash_may_start_with_a_dash() -> None:
    """'--' lets the rest text start with a dash."""
    assert parse("!send demo -- --verbose please").args["TEXT"] == "--verbose please"


def test_rest_flag_like_start_is_unknown_flag() -> None:
    """Without '--', rest text starting with '-x' is an unknown flag, with the hint."""
    assert "put -- before an argument" in error("!send demo -x marks the spot")


def test_optional_rest_may_be_absent() -> None:
    """An optional rest argument is simply missing from args."""
    assert dict(parse("!note").args) == {}
    assert parse("!note buy milk").args["TEXT"] == "buy milk"


def test_rest_text_is_never_tokenized() -> None:
    """An unbalanced quote in rest text is not an unterminated-quote error."""
    assert parse('!note she said "hi').args["TEXT"] == 'she said "hi'


# --- subcommands -------------------------------------------------------------------------


def test_subcommand_descends() -> None:
    """A parent followed by a subcommand word yields the full name and the child's spec."""
    command = parse("!roster reload")
    assert command.name == "roster reload"
    assert command.spec.name == "roster reload"
    assert command.spec.control is True


def test_subcommand_is_case_insensitive_and_takes_its_own_args() -> None:
    """'ROSTER Show x' parses as 'roster show' with NAME=x."""
    command = parse("!ROSTER Show x")
    assert (command.name, dict(command.args)) == ("roster show", {"NAME": "x"})


def test_parent_alone_is_its_own_command() -> None:
    """The parent runs by itself when no subcommand follows."""
    assert parse("!roster").name == "roster"


def test_unknown_subcommand_is_an_extra_argument_of_the_parent() -> None:
    """A word that is not a subcommand is reported against the parent's usage."""
    assert error("!roster bogus") == (
        "roster: unexpected argument 'bogus' — usage: roster [reload|show]"
    )


def test_subcommand_usage_is_full() -> None:
    """A subcommand's usage starts with its full name."""
    assert parse("!roster show").spec.usage == "roster show [NAME]"


# --- the Command value -------------------------------------------------------------------


def test_command_mappings_are_read_only() -> None:
    """A parsed Command cannot be changed through its args or flags."""
    command = parse("!spawn demo --force")
    with pytest.raises(TypeError):
        command.args["NAME"] = "other"  # type: ignore[index]
    with pytest.raises(TypeError):
        command.flags["force"] = False  # type: ignore[index]


def test_equal_texts_parse_to_equal_hashable_commands() -> None:
    """Parsing is deterministic and Commands can be hashed."""
    assert parse("!spawn demo --force") == parse("!spawn demo --force")
    assert hash(parse("!ps")) == hash(parse("!ps"))


def test_typed_flag_getters() -> None:
    """The getters return typed values, defaults when absent, and reject undeclared flags."""
    command = parse("!spawn demo --model m --force")
    assert command.str_flag("model") == "m"
    assert command.str_flag("runtime") is None
    assert command.bool_flag("force") is True
    assert parse("!logs demo").int_flag("lines", 40) == 40
    assert parse("!logs demo --lines 9").int_flag("lines", 40) == 9
    with pytest.raises(ValueError, match="no str flag --modle"):
        command.str_flag("modle")
    with pytest.raises(ValueError, match="no int flag --force"):
        command.int_flag("force", 0)


def test_parse_error_is_a_command_error_with_parts() -> None:
    """ParseError is a CommandError carrying the problem and the usage separately."""
    with pytest.raises(CommandError) as caught:
        GRAMMAR.parse("!spawn")
    exc = caught.value
    assert isinstance(exc, ParseError)
    assert exc.problem == "spawn: missing NAME"
    assert exc.usage == "spawn NAME [--runtime R] [--model M] [--prompt TEXT] [--force]"


# --- the grammar itself ------------------------------------------------------------------


def test_duplicate_command_names_are_rejected() -> None:
    """Two specs with one name are a programming error."""
    with pytest.raises(ValueError, match="duplicate command name"):
        Grammar((CommandSpec("ps", "a"), CommandSpec("ps", "b")))


def test_duplicate_subcommand_names_are_rejected() -> None:
    """Two subcommands with one name, in either spelling, are rejected."""
    parent = CommandSpec(
        "roster", "r", subcommands=(CommandSpec("reload", "a"), CommandSpec("roster reload", "b"))
    )
    with pytest.raises(ValueError, match="duplicate command name"):
        Grammar((parent,))


@pytest.mark.parametrize("prefix", ["", " ", "! "])
def test_bad_prefix_is_rejected(prefix: str) -> None:
    """An empty prefix or one containing whitespace is rejected."""
    with pytest.raises(ValueError, match="prefix"):
        Grammar(SPECS, prefix=prefix)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (CommandSpec("Bad", "x"), "bad command name"),
        (CommandSpec("two words", "x"), "bad command name"),
        (CommandSpec("a", "x", subcommands=(CommandSpec("b c", "y"),)), "bad command name"),
        (CommandSpec("a", "x", args=(ArgSpec("T", "t", rest=True), NAME)), "must be last"),
        (
            CommandSpec("a", "x", args=(ArgSpec("O", "o", required=False), NAME)),
            "follows an optional",
        ),
        (CommandSpec("a", "x", args=(NAME, NAME)), "duplicate argument"),
        (CommandSpec("a", "x", flags=(FlagSpec("f", "bool", "f"),) * 2), "duplicate flag"),
        (CommandSpec("a", "x", flags=(FlagSpec("--f", "bool", "f"),)), "bad flag name"),
        (
            CommandSpec("a", "x", flags=(FlagSpec("n", "int", "n", choices=("1", "2")),)),
            "only string flags have choices",
        ),
    ],
)
def test_malformed_specs_are_rejected(spec: CommandSpec, match: str) -> None:
    """Specs the parser could not honour fail at construction, not at parse time."""
    with pytest.raises(ValueError, match=match):
        Grammar((spec,))


def test_qualify_is_idempotent() -> None:
    """Qualifying qualified specs changes nothing; walk lists children after parents."""
    once = qualify(SPECS)
    assert qualify(once) == once
    assert [spec.name for spec in walk(SPECS)][-3:] == ["roster", "roster reload", "roster show"]


def test_command_names_and_lookup() -> None:
    """command_names lists full names; spec() finds them case-insensitively."""
    assert "roster reload" in GRAMMAR.command_names()
    found = GRAMMAR.spec("Roster  Reload")
    assert found is not None and found.summary == "reload the roster"
    assert GRAMMAR.spec("nope") is None


# --- properties --------------------------------------------------------------------------

REAL = Grammar(COMMANDS)


@given(text=st.text(), addressed=st.booleans())
def test_parse_never_raises_anything_but_parse_error(text: str, addressed: bool) -> None:
    """For any text, parse returns a Command or None, or raises a one-line ParseError."""
    for grammar in (GRAMMAR, REAL):
        try:
            result = grammar.parse(text, addressed=addressed)
        except ParseError as exc:
            assert "\n" not in str(exc)
        else:
            assert result is None or isinstance(result, Command)


@given(
    text=st.text(max_size=30).map(lambda s: "!" + s),
    addressed=st.booleans(),
)
def test_prefixed_text_never_returns_none(text: str, addressed: bool) -> None:
    """Text starting with the prefix is always a command or an error, never ordinary chat."""
    with contextlib.suppress(ParseError):
        assert GRAMMAR.parse(text, addressed=addressed) is not None


@given(value=st.text())
def test_double_quoting_round_trips(value: str) -> None:
    """Any string, double-quoted with \\ and " escaped, parses back to itself."""
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert parse(f"!spawn demo --prompt {quoted}").flags["prompt"] == value


@given(value=st.text().filter(lambda s: "'" not in s))
def test_single_quoting_round_trips(value: str) -> None:
    """Any string without an apostrophe, single-quoted, parses back to itself."""
    assert parse(f"!spawn '{value}'").args["NAME"] == value


@given(
    rest=st.text(min_size=1).filter(
        lambda s: s == s.strip() and not s.startswith("-") and s[0] not in "'\""
    )
)
def test_rest_text_is_taken_verbatim(rest: str) -> None:
    """Any rest text not starting with '-' or a quote arrives exactly as typed."""
    assert parse(f"!send demo {rest}").args["TEXT"] == rest


# --- grammar as people type it: flags among the text, quoting hints, subcommands meant ------

TASKISH = Grammar(
    (
        CommandSpec(
            "task",
            "a task",
            args=(ArgSpec("TASK", "the task"),),
            subcommands=(
                CommandSpec(
                    "new",
                    "make one",
                    args=(ArgSpec("TITLE", "title", rest=True),),
                    flags=(
                        FlagSpec("agent", "str", "agent", "A"),
                        FlagSpec("mission", "str", "mission", "M"),
                    ),
                ),
                CommandSpec("done", "end one", args=(ArgSpec("TASK", "the task"),)),
            ),
        ),
        CommandSpec("report", "a report", subcommands=(CommandSpec("changes", "changes"),)),
    )
)


@pytest.mark.parametrize(
    "text",
    [
        "!task new Fix the login --agent coder --mission m",
        "!task new --agent coder Fix the login --mission m",
        "!task new --agent coder --mission m Fix the login",
        "!task new Fix --agent coder the --mission=m login",
        '!task new "Fix the login" --agent coder --mission m',
    ],
)
def test_flags_may_stand_anywhere_in_the_rest_text(text: str) -> None:
    """In a command with flags, its flags are read wherever they stand in its rest text;
    the words around them are the text."""
    command = TASKISH.parse(text)
    assert command is not None
    assert dict(command.args) == {"TITLE": "Fix the login"}
    assert dict(command.flags) == {"agent": "coder", "mission": "m"}


def test_double_dash_ends_the_flags_in_the_rest_text() -> None:
    """After `--` the rest is text as typed, flag-like words and all."""
    command = TASKISH.parse("!task new Fix --agent coder -- the --mission flag")
    assert command is not None
    assert dict(command.args) == {"TITLE": "Fix the --mission flag"}
    assert dict(command.flags) == {"agent": "coder"}


def test_an_unknown_double_dash_word_stays_text_but_a_typo_of_a_flag_is_refused() -> None:
    """`--verbose` is no flag here and stays in the title; `--agnet` is the flag mistyped."""
    command = TASKISH.parse("!task new Drop the --verbose switch --agent coder")
    assert command is not None and command.args["TITLE"] == "Drop the --verbose switch"
    with pytest.raises(ParseError) as caught:
        TASKISH.parse("!task new Fix it --agnet coder")
    assert (
        "unknown flag '--agnet' (did you mean '--agent'? To keep it as text, put -- before it)"
        in str(caught.value)
    )
    kept = TASKISH.parse("!task new --agent coder -- Fix it --agnet")
    assert kept is not None and kept.args["TITLE"] == "Fix it --agnet"


def test_natural_text_and_quoted_runs_keep_their_flags_apart() -> None:
    """An apostrophe in a word is text; a run opening with a quote is text, flags and all."""
    command = TASKISH.parse("!task new it's Bob's --agent coder bug")
    assert command is not None and command.args["TITLE"] == "it's Bob's bug"
    quoted = TASKISH.parse("!task new 'keep --agent here' --agent coder")
    assert quoted is not None and quoted.args["TITLE"] == "keep --agent here"
    assert quoted.flags == {"agent": "coder"}


def test_a_rest_argument_of_a_command_without_flags_is_still_raw() -> None:
    """`send NAME TEXT` has no flags: `--force` in its text is the text's."""
    command = parse("!send coder run it --force now")
    assert command.args["TEXT"] == "run it --force now"


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("!spawn demo --prompt count to 3", '`--prompt "count to 3"`'),
        ("!spawn demo --prompt count to 3 --model m", '`--prompt "count to 3"`'),
        ('!spawn demo --prompt say "hi" now', "`--prompt 'say \"hi\" now'`"),
        ("!spawn --model m demo --prompt fix it", '`--prompt "fix it"`'),
    ],
)
def test_a_multi_word_unquoted_flag_value_is_refused_with_it_quoted(text: str, hint: str) -> None:
    """Words after a string flag's value, past the last argument, are shown quoted."""
    assert error(text).startswith("spawn: unexpected argument ")
    assert f"— quote it: {hint} — usage: spawn" in error(text)


def test_an_extra_word_after_an_argument_gets_no_quoting_hint() -> None:
    """`spawn a b` is an extra argument, not a flag's value."""
    assert "quote it" not in error("!spawn a b --prompt x")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "!report chnages",
            "report: unexpected argument 'chnages' — did you mean 'report changes'?",
        ),
        ("!task nwe Fix it", "task: unexpected argument 'Fix' — did you mean 'task new'?"),
        ("!roster relaod", "roster: unexpected argument 'relaod' — did you mean 'roster reload'?"),
    ],
)
def test_a_mistyped_subcommand_is_answered_with_the_one_meant(text: str, said: str) -> None:
    """A word close to a subcommand that does not parse as the parent names the one meant."""
    grammar = TASKISH if not text.startswith("!roster") else GRAMMAR
    with pytest.raises(ParseError) as caught:
        grammar.parse(text)
    assert str(caught.value).startswith(said)


def test_a_mistyped_subcommand_read_as_an_argument_keeps_the_one_meant() -> None:
    """`task nwe` parses (a task may be so named) and carries `task new` for a not-found."""
    command = TASKISH.parse("!task nwe")
    assert command is not None
    assert (command.name, command.args["TASK"], command.near) == ("task", "nwe", "task new")
    exact = TASKISH.parse("!task fix-login")
    assert exact is not None and exact.near is None


def test_every_subcommand_of_the_command_table_is_suggested_for_its_typo() -> None:
    """One mechanism for every command with subcommands in the real table."""
    grammar = Grammar(COMMANDS)
    for spec in walk(COMMANDS):
        for sub in spec.subcommands:
            word = sub.name.rsplit(" ", 1)[-1]
            typo = word[:-1] if len(word) > 4 else word + "x"
            try:
                command = grammar.parse(f"!{spec.name} {typo} x y z")
            except ParseError as exc:
                assert f"did you mean '{sub.name}'?" in str(exc), str(exc)
            else:
                pytest.fail(f"{spec.name} {typo} parsed as {command}")


def test_forge_takes_list_or_all_and_names_the_one_meant() -> None:
    """`forge lst` is refused by the grammar with `list` meant; `forge ALL` is `all`."""
    grammar = Grammar(COMMANDS)
    with pytest.raises(ParseError, match=r"got 'lst' — did you mean 'list'\?"):
        grammar.parse("!forge lst")
    command = grammar.parse("!forge ALL")
    assert command is not None and command.args["WHAT"] == "all"
