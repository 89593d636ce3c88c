"""The ``fleetwarden`` command line's words for what people type: ``--config`` before the
command as well as after it, and a misspelt option or command answered with the one meant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import _command
from bot.cli.parser import command_line, typed
from bot.cli.parsing import parse


def refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """What the command line says refusing ``argv`` (it exits with status 2)."""
    with pytest.raises(SystemExit) as ended:
        parse(command_line(), argv)
    assert ended.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "argv",
    [
        ("--config", "x.yaml", "status"),
        ("--config=x.yaml", "status"),
        ("status", "--config", "x.yaml"),
        ("--config", "x.yaml", "status", "--config", "x.yaml"),
    ],
)
def test_config_may_come_before_or_after_the_command(argv: tuple[str, ...]) -> None:
    """`fleetwarden --config X status` reads X as `fleetwarden status --config X` does."""
    args = parse(command_line(), argv)
    assert (args.command, args.config) == ("status", Path("x.yaml"))
    assert not hasattr(args, "config_first")


def test_config_given_twice_differently_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Two different files, before and after the command, are refused: give it once."""
    said = refusal(capsys, "--config", "a.yaml", "status", "--config", "b.yaml")
    assert said.endswith(
        "--config given twice, before the command (a.yaml) and after it (b.yaml): give it once"
    )


def test_a_command_without_config_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """`matrix setup` reads no config: one given before it is refused by name."""
    said = refusal(
        capsys, "--config", "x.yaml", "matrix", "setup", "--homeserver", "h", "--bot-user", "b"
    )
    assert said.endswith("`fleetwarden matrix setup` takes no --config")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("status", "--confg", "x"), "unrecognized arguments: --confg — did you mean --config?"),
        (("tasks", "--markdwon"), "unrecognized arguments: --markdwon — did you mean --markdown?"),
        (
            ("status", "--jsno", "--confg=x"),
            "--jsno: did you mean --json?; --confg: did you mean --config?",
        ),
        (("--confg", "x", "status"), "unknown option --confg — did you mean --config?"),
        (
            ("--markdwon", "tasks"),
            "did you mean --markdown? --markdown is an option of the command: put it after "
            "the command: `fleetwarden tasks --markdown …`",
        ),
        (("stauts",), "invalid choice: 'stauts' (choose from"),
        (("stauts",), "— did you mean 'status'?"),
        (("accounts", "chek"), "— did you mean 'check'?"),
    ],
)
def test_a_misspelt_option_or_command_is_answered_with_the_one_meant(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], said: str
) -> None:
    """Every level of the command names the option or command likely meant."""
    assert said in refusal(capsys, *argv)


def test_json_before_a_command_that_takes_it_is_the_commands() -> None:
    """`fleetwarden --json status` reads as `fleetwarden status --json`, as the shell's
    verbs take `--json` before them."""
    args = parse(command_line(), ["--json", "status"])
    assert args.command == "status" and args.json is True


def test_words_that_do_not_parse_answer_one_object_with_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With `--json`, a misspelt command is one object on stdout (`command` null) and the
    reason on stderr, exit status 2."""
    with pytest.raises(SystemExit) as exited:
        parse(command_line(), ["--json", "stauts"])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    body = json.loads(out)
    assert body["command"] is None and body["exit"] == 2 and body["ok"] is False
    assert "did you mean 'status'?" in body["error"] and body["error"] in err


def test_an_unknown_option_near_none_is_refused_plainly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--zzz` after the command is refused as argparse does, with no guess."""
    assert refusal(capsys, "status", "--zzzzzz").endswith("unrecognized arguments: --zzzzzz")


@pytest.mark.parametrize(
    ("words", "command"),
    [
        (["run"], "run"),
        (["--config", "x", "run"], "run"),
        (["--config=x", "run"], "run"),
        (["status", "--config", "x"], "status"),
        ([], None),
    ],
)
def test_the_command_word_is_found_past_a_config_before_it(
    words: list[str], command: str | None
) -> None:
    """Ctrl-C while `fleetwarden --config X run` loads ends it as `run` (status 0)."""
    assert _command(words) == command


@pytest.mark.parametrize(
    "argv",
    [
        ("status", "--json"),
        ("--config", "x.yaml", "tasks", "--markdown"),
        ("--version", "--json", "status"),
        ("--version", "--markdown", "tasks"),
        ("--version", "--jsn"),
        ("--jsn", "status"),
        ("staus",),
        ("--help",),
        ("--version",),
    ],
)
def test_the_command_typed_alone_loaded_parses_as_every_command_loaded(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """The parser made for the command typed (its options alone loaded) answers every
    command line as the whole one does: the same parse, or the same refusal and status."""

    def answer(parser_for: str | None) -> tuple[object, str, str]:
        try:
            args = parse(command_line(parser_for), argv)
        except SystemExit as ended:
            out = capsys.readouterr()
            return ended.code, out.out, out.err
        return vars(args), "", ""

    assert answer(typed(list(argv))) == answer(None)
