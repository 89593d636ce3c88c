"""What travels on the control socket (``control.sock`` in the state dir, mode 0600): one
request line from the shell, one answer line back, each a JSON object, then the server
closes the connection.

A request is ``{"command": TEXT}``: the command as chat would take it (``spawn coder
--prompt 'fix it'``). An answer is ``{"exit": N, "outcome": O, "command": NAME, "text":
MARKDOWN, "data": OBJECT}``: ``exit`` is the shell's exit status (:data:`EXIT_OK` done,
:data:`EXIT_REFUSED` refused, :data:`EXIT_USAGE` a request the server could not read),
``outcome`` the audit's (``ok``, ``denied``, ``error``), ``text`` the answer chat would get
and ``data`` the same answer as data (``null`` where the command has none).

Both sides bound a line at :data:`MAX_LINE` bytes; the server says why when it cannot
read one, and never waits on a client longer than :data:`IDLE_SECONDS`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

NO_OPERATOR: Final = (
    "the config names no operator for commands from a shell: add `shell: {as: ID}` to it, "
    "ID an `operators:` entry's id (one for every connector, or with `connector: shell`), "
    "then restart Fleetwarden"
)
"""The refusal of a command from a shell where the config names no ``shell: {as: ID}``
(the shell side says it as the lines to add: :func:`bot.cli.verbs.operator.missing_shell`)."""
CONTROL_SOCKET_FILE: Final = "control.sock"
"""In the state dir, mode 0600: the socket ``fleetwarden VERB`` talks to."""
MAX_LINE: Final = 64 * 1024
"""The longest request or answer line, in bytes, its newline included."""
MAX_ANSWER: Final = 4 * 1024 * 1024
"""The longest answer line the shell reads (a ``ps`` of a thousand agents fits)."""
IDLE_SECONDS: Final = 10.0
"""How long the server waits for a client's request line."""
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3


class WireError(ValueError):
    """A line that is not a request or an answer; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the orchestrator says to one shell command."""

    exit: int
    outcome: str
    text: str
    command: str | None = None
    data: Mapping[str, object] | None = None

    def line(self) -> bytes:
        """This answer as one line on the socket."""
        body = {
            "exit": self.exit,
            "outcome": self.outcome,
            "command": self.command,
            "text": self.text,
            "data": None if self.data is None else dict(self.data),
        }
        return json.dumps(body, ensure_ascii=True, default=str).encode() + b"\n"


def request_line(command: str) -> bytes:
    """The request for ``command``. Raises :class:`WireError` when it is too long."""
    line = json.dumps({"command": command}, ensure_ascii=True).encode() + b"\n"
    if len(line) > MAX_LINE:
        raise WireError(f"the command is {len(line)} bytes; at most {MAX_LINE} fit")
    return line


def read_request(line: bytes) -> str:
    """The command a request line holds. Raises :class:`WireError` saying what is wrong."""
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"the request is not a JSON line: {exc}") from None
    if not isinstance(body, dict) or set(body) != {"command"}:
        raise WireError('the request must be a JSON object {"command": TEXT} and nothing else')
    command = body["command"]
    if not isinstance(command, str) or not command.strip():
        raise WireError('"command" must be the text of a command, e.g. "ps"')
    return command


def read_answer(line: bytes) -> Answer:
    """The answer a line holds. Raises :class:`WireError` when it is not one."""
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"the orchestrator's answer is not a JSON line: {exc}") from None
    if not isinstance(body, dict):
        raise WireError("the orchestrator's answer is not a JSON object")
    exit_, outcome, text = body.get("exit"), body.get("outcome"), body.get("text")
    command, data = body.get("command"), body.get("data")
    if not (isinstance(exit_, int) and isinstance(outcome, str) and isinstance(text, str)):
        raise WireError("the orchestrator's answer lacks its exit, outcome or text")
    return Answer(
        exit_,
        outcome,
        text,
        command if isinstance(command, str) else None,
        data if isinstance(data, dict) else None,
    )
