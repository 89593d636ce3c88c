"""``fleetwarden spawn|stop|restart|send|ps|runs|task|tasks|mission|budget|approve|deny …
[--json]``: a chat command typed in a shell, run by the running orchestrator through its
control socket (:mod:`bot.control`) — the same grammar, ACL, audit and handlers as chat, as
the operator the config's ``shell: {as: ID}`` names.

The words after ``fleetwarden`` are the command as chat takes it, one argument a word
(``fleetwarden send coder "fix the tests"``); ``--json`` (anywhere before ``--``) prints the
answer's data object (``docs/commands.md``, "Answers as JSON") instead of its text;
``--config FILE`` picks the config (its state dir holds the socket); ``--help`` says the
command's help. Text is printed plain, every control character shown, never obeyed.

Exit status, stable for scripts: :data:`~bot.control.wire.EXIT_OK` 0 done,
:data:`~bot.control.wire.EXIT_REFUSED` 1 refused (ACL, a check, the handler),
:data:`~bot.control.wire.EXIT_USAGE` 2 usage (the words do not parse; nothing was sent),
:data:`~bot.control.wire.EXIT_NOT_RUNNING` 3 not running (no socket, or nobody listens).

``fleetwarden tasks`` with ``--markdown``, ``--json``, ``--csv`` or ``--out`` (any option
but chat's ``--mission`` and ``--state``) is the task register read from the ledger
(:mod:`bot.cli.tasks.command`), as before; bare, or with only those, it is the chat verb.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import json
import os
import socket
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from bot.cli.parsing import Parser
from bot.cli.verbs.operator import missing_shell
from bot.cli.verbs.words import SHELL_OPTIONS, VERBS, options_part
from bot.commands.errors import CommandError
from bot.commands.help import help_text
from bot.commands.parsing.grammar import Command, Grammar
from bot.commands.specs import COMMANDS
from bot.config import Config, ConfigError, Offered, load_config
from bot.control.wire import (
    CONTROL_SOCKET_FILE,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    MAX_ANSWER,
    NO_OPERATOR,
    Answer,
    WireError,
    read_answer,
    request_line,
)
from bot.dashboard.access.status_door import NotTheDashboard, connect
from connectors.markdown import to_plain
from fleet.runtimes import default_registry

TIMEOUT: Final = 300.0
"""How long the shell waits for an answer (a ``send`` waits for the agent to take it)."""


def configure(sub: argparse._SubParsersAction[Parser]) -> None:
    """The verbs in ``fleetwarden --help``; :func:`takes` routes them before argparse, so
    their words are the chat grammar's."""
    for spec in COMMANDS:
        if spec.name in VERBS and spec.name != "tasks":  # `tasks` is the register's too
            verb = sub.add_parser(
                spec.name,
                help=f"{spec.summary} (chat's `{spec.name}`, from a shell; --json for data)",
                add_help=False,
            )
            verb.add_argument("words", nargs=argparse.REMAINDER)


def main(words: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run the chat command in ``words``; the exit status. With ``--json`` every answer is
    one object on stdout, a refusal before the orchestrator was asked too."""
    config_path, as_json, wants_help, rest = _options(list(words))
    verb = rest[0]
    if wants_help:
        print(_plain(help_text(COMMANDS, verb, prefix="")))
        print(f"\nFrom a shell: fleetwarden {verb} … [--json] [--config FILE]")
        return EXIT_OK
    text = " ".join(_quoted(word) for word in rest)
    try:
        command = Grammar(COMMANDS, prefix="!").parse(text, addressed=True)
    except CommandError as exc:
        reason = str(exc).removeprefix(f"{verb}: ")  # the grammar names the verb too
        said = f"fleetwarden {verb}: {reason}{_shell_option_meant(rest[1:])}"
        return _fail(said, EXIT_USAGE, as_json=as_json, command=None)
    assert command is not None  # the verb is a command's name
    fail = functools.partial(_fail, as_json=as_json, command=command.name)
    try:
        config = load_config(
            config_path,
            environ,
            offered=Offered(default_registry().names(), ("subprocess", "tmux")),
            credentials=False,
        )
    except ConfigError as exc:
        return fail(f"fleetwarden: configuration error:\n{exc}", EXIT_USAGE)
    try:
        answer = _ask(config.state_dir, text)
    except _NotRunning as exc:
        if verb == "tasks":  # its register forms need no orchestrator
            exc = _NotRunning(f"{exc}; `fleetwarden tasks --markdown` (or --json, --csv) "
                              "reads the task register without it")  # fmt: skip
        return fail(f"fleetwarden {verb}: {exc}", EXIT_NOT_RUNNING)
    except PermissionError as exc:
        return fail(f"fleetwarden {verb}: {exc}", EXIT_REFUSED, outcome="denied")
    except (OSError, WireError) as exc:
        return fail(f"fleetwarden {verb}: {exc}", EXIT_REFUSED)
    answer = _worded(answer, config)
    code = _exit(command, answer)
    if as_json:
        body = _machine(answer, code)
        print(json.dumps(body, ensure_ascii=True, indent=2))
        if code != EXIT_OK:  # the reason on stderr too, as for every other failure
            print(_plain(str(body["error"])), file=sys.stderr)
    else:
        out = sys.stdout if code == EXIT_OK else sys.stderr
        print(_plain(answer.text), file=out)
    return code


def fleet_status(config: Config, *, as_json: bool) -> int:
    """``fleetwarden status [--json]`` with the dashboard off in ``config``: chat's
    ``ps``, asked on the control socket (``--json``: its data object, as ``fleetwarden ps
    --json`` has it), its build, ``enforce`` and connectors' links said as the dashboard's
    ``status`` says them. Its ``source`` ``None``: no config was read (the embedded
    default, which has no dashboard)."""
    fail = functools.partial(_fail, as_json=as_json, command="status")
    source = config.source
    try:
        answer = _worded(_ask(config.state_dir, "ps"), config)
    except _NotRunning as exc:
        off = "no config was read" if source is None else f"the dashboard is off in {source}"
        said = f"{off}, so status asked the control socket: {exc}"
        return fail(f"fleetwarden status: {said}", EXIT_NOT_RUNNING)
    except PermissionError as exc:
        return fail(f"fleetwarden status: {exc}", EXIT_REFUSED, outcome="denied")
    except (OSError, WireError) as exc:
        return fail(f"fleetwarden status: {exc}", EXIT_REFUSED)
    if answer.exit != EXIT_OK:
        return fail(f"fleetwarden status: {answer.text}", answer.exit, outcome=answer.outcome)
    if as_json:
        print(json.dumps(answer.data, ensure_ascii=True, indent=2))
        return EXIT_OK
    text = answer.text
    if isinstance(answer.data, Mapping) and "build" in answer.data:
        # ps's first line says the build, enforce and what is down: said in full here
        from bot.cli.status.text import standing_text  # the renderers: `status` alone

        print(standing_text(answer.data) + "\n")
        text = text.partition("\n\n")[2]
    print(_plain(text))
    return EXIT_OK


def _worded(answer: Answer, config: Config) -> Answer:
    """``answer``, the control socket's refusal for want of ``shell:`` said as the lines to
    add to the config this shell read."""
    if answer.outcome != "denied" or answer.text != NO_OPERATOR:
        return answer
    said = missing_shell(config)
    return Answer(answer.exit, answer.outcome, said, answer.command, {"error": said})


class _NotRunning(Exception):
    """No orchestrator answers on the control socket."""


def _ask(state_dir: Path, text: str) -> Answer:
    """Send ``text`` on the control socket in ``state_dir``; its answer."""
    where = state_dir / CONTROL_SOCKET_FILE
    try:
        sock = connect(state_dir, TIMEOUT, CONTROL_SOCKET_FILE)
    except (FileNotFoundError, ConnectionRefusedError):
        raise _NotRunning(
            f"Fleetwarden is not running with state dir {state_dir} (nothing answers on "
            f"{where}): start it (`bash run.sh` from the Quick start, or `fleetwarden run`), "
            "or name the config it runs with, --config FILE"
        ) from None
    except NotTheDashboard as exc:
        raise _NotRunning(str(exc)) from None
    except PermissionError:
        raise PermissionError(
            f"uid {os.getuid()} may not use {where}: only the user who runs Fleetwarden (the "
            "orchestrator's own uid) may command it from a shell"
        ) from None
    with sock:
        # Refused before the line was read, the answer is still waiting to be read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request_line(text))
        line = _read_line(sock)
    if not line:
        raise WireError("the orchestrator closed the connection without an answer")
    return read_answer(line)


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
        if size > MAX_ANSWER:
            raise WireError(f"the answer is longer than {MAX_ANSWER} bytes")
    return b"".join(chunks)


def _exit(command: Command, answer: Answer) -> int:
    """The exit status: the orchestrator's, but a ``spawn`` that found its agent running is
    refused unless ``--if-absent`` was given."""
    data = answer.data or {}
    if (
        answer.exit == EXIT_OK
        and command.name == "spawn"
        and data.get("already_running") is True
        and not command.flags.get("if-absent")
    ):
        return EXIT_REFUSED
    return answer.exit


def _machine(answer: Answer, code: int) -> dict[str, object]:
    """What ``--json`` prints: the command, whether it was done, and its data (or why not)."""
    body: dict[str, object] = {
        "command": answer.command,
        "ok": code == EXIT_OK,
        "exit": code,
        "outcome": answer.outcome,
    }
    data = dict(answer.data or {})
    if answer.exit != EXIT_OK:
        body["error"] = data.get("error", answer.text)
    elif code != EXIT_OK:  # done in the audit's eyes, but not what the script asked
        body["outcome"] = "error"
        body["error"] = f"{data.get('agent')} is already running (--if-absent takes that as done)"
    else:
        body["data"] = answer.data
    return body


def _plain(markdown: str) -> str:
    """``markdown`` as terminal text, every control character shown as its escape."""
    return "".join(_shown(char) for char in to_plain(markdown))


def _shown(char: str) -> str:
    if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf"):
        return char
    return char.encode("unicode_escape").decode("ascii")


def _quoted(word: str) -> str:
    """``word`` as one word of the chat grammar's syntax (:mod:`bot.commands.parsing.tokenizer`)."""
    if word and not any(c.isspace() or c in "'\"\\" for c in word):
        return word
    flag, eq, value = word.partition("=")
    if eq and flag.startswith("--") and _quoted(flag) == flag:  # --prompt=VALUE: the flag's
        return f"{flag}={_quoted(value)}"
    if "'" not in word:
        return f"'{word}'"
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fail(
    message: str,
    code: int,
    *,
    as_json: bool = False,
    command: str | None = None,
    outcome: str = "error",
) -> int:
    """Say why nothing was done on stderr and, with ``--json``, as the answer's object on
    stdout (``command`` ``None`` when the words did not parse), as ``docs/commands.md`` has
    it; the exit status."""
    if as_json:
        body = {"command": command, "ok": False, "exit": code, "outcome": outcome}
        body["error"] = _plain(message)
        print(json.dumps(body, ensure_ascii=True, indent=2))
    print(_plain(message) if code != EXIT_USAGE else message, file=sys.stderr)
    return code


def _shell_option_meant(words: Sequence[str]) -> str:
    """A hint when a word looks like a misspelt option of the shell's own (``--jsn``)."""
    for word in options_part(list(words)):
        name = word.partition("=")[0]
        if name.startswith("--") and name not in SHELL_OPTIONS:
            close = difflib.get_close_matches(name, SHELL_OPTIONS, n=1, cutoff=0.7)
            if close:
                return f" (did you mean {close[0]}? it is the shell's own option)"
    return ""


def _options(words: list[str]) -> tuple[Path | None, bool, bool, list[str]]:
    """``--config FILE`` (before the verb or among its words), ``--json`` and ``--help``
    taken out of ``words`` (up to a ``--``, which is dropped); the command words left."""
    config: Path | None = None
    as_json = wants_help = False
    rest: list[str] = []
    it = iter(words)
    for word in it:
        if word == "--":
            rest.extend(it)
            break
        if word == "--config":
            config = Path(next(it, ""))
        elif word.startswith("--config="):
            config = Path(word.partition("=")[2])
        elif word == "--json":
            as_json = True
        elif word in ("-h", "--help"):
            wants_help = True
        else:
            rest.append(word)
    return config, as_json, wants_help, rest
