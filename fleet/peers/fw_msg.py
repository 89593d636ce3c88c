"""The fw-msg command: what an agent uses to see its peers, send them messages (with a
receipt: ACCEPTED once in the peer's session, or REFUSED and why), hand them tasks, and give
its verdict on a review asked of it.

It posts each call to Fleetwarden's peer door (:mod:`fleet.peers.door`) with the agent's
heartbeat token, and prints the answer. It runs inside the agent's sandbox with only the
system's python3 (3.9 or later), so it imports nothing but the standard library.
``fw-msg --help`` says how it is used.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

URL_VAR = "FLEETWARDEN_HEARTBEAT_URL"
TOKEN_VAR = "FLEETWARDEN_HEARTBEAT_TOKEN"
TOKEN_HEADER = "X-Fleetwarden-Token"
RETRY_SECONDS = 30.0  # Fleetwarden restarting: its port refuses connections for a while
REQUEST_SECONDS = 60.0  # beyond what a call itself waits for (--wait)
VERIFY_WAIT = 120
MAX_WAIT = 600
MAX_TEXT = 64 * 1024  # the door's own cap on a call
MAX_ANSWER = 1024 * 1024
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

Call = dict[str, Any]  # a call, as the door takes it (PEP 585: python3 >= 3.9)

DESCRIPTION = """\
Talk to the other agents of your Fleetwarden fleet: your peers (the agents you may write
to). A message reaches a peer's session framed with your name; answer one by writing to
the name in its frame's header."""

EPILOG = """\
commands:
  fw-msg peers                    your peers: who they are, where they run, live or not
  fw-msg send PEER TEXT [--verify] [--wait S]
                                  send PEER a message; --verify waits (120 s, or S) for
                                  ACCEPTED (it is in PEER's session) or REFUSED (why)
  fw-msg task PEER TITLE [BODY]   hand PEER a piece of work, as a task of its own
  fw-msg review approve|changes TEXT
                                  your verdict on the review asked of you

TEXT or BODY given as - is read from standard input; put -- before one that starts
with a dash.

exit status: 0 done (ACCEPTED, with --verify); 1 refused, failed or not yet accepted
(why, on standard error); 2 a usage error."""


class UsageError(Exception):
    """The command line or the environment cannot make a call; ``usage`` is the usage
    line of the (sub)command that said so."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class Failed(Exception):
    """The call was refused or could not be made; the message says why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(message, self.format_usage())


def parser() -> argparse.ArgumentParser:
    """The command line's parser (usage errors raise :class:`UsageError`)."""
    top = _Parser(
        prog="fw-msg",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    commands.add_parser("peers", help="list your peers")
    send = commands.add_parser("send", help="send a peer a message")
    send.add_argument("peer", metavar="PEER")
    send.add_argument("text", metavar="TEXT")
    send.add_argument("--verify", action="store_true", help="wait for ACCEPTED or REFUSED")
    send.add_argument("--wait", type=int, metavar="S", help=f"seconds to wait (<= {MAX_WAIT})")
    task = commands.add_parser("task", help="hand a peer a task")
    task.add_argument("peer", metavar="PEER")
    task.add_argument("title", metavar="TITLE")
    task.add_argument("body", nargs="?", default="", metavar="BODY")
    review = commands.add_parser("review", help="your verdict on the review asked of you")
    review.add_argument("verdict", choices=("approve", "changes"))
    review.add_argument("text", metavar="TEXT")
    return top


def build_call(args: argparse.Namespace, stdin: Callable[[], str]) -> Call:
    """The door's JSON call for parsed ``args``; ``stdin`` reads the text given as ``-``."""

    def text(value: str) -> str:
        return stdin() if value == "-" else value

    if args.command == "peers":
        return {"op": "peers"}
    if args.command == "send":
        if args.wait is not None and not 0 <= args.wait <= MAX_WAIT:
            raise UsageError(f"--wait takes 0 to {MAX_WAIT} seconds")
        verify = bool(args.verify or args.wait)
        wait = args.wait if args.wait is not None else (VERIFY_WAIT if verify else 0)
        return {"op": "send", "to": args.peer, "text": text(args.text), "verify": verify,
                "wait": wait}  # fmt: skip
    if args.command == "task":
        return {"op": "task", "to": args.peer, "title": args.title, "body": text(args.body)}
    return {"op": "review", "verdict": args.verdict, "text": text(args.text)}


def door_url(env: Mapping[str, str]) -> tuple[str, str]:
    """The peer door's URL for this agent and its token, from the environment."""
    url, token = env.get(URL_VAR, ""), env.get(TOKEN_VAR, "")
    if not url or not token:
        raise UsageError(
            f"{URL_VAR} and {TOKEN_VAR} are not set: fw-msg works inside a Fleetwarden agent"
        )
    if not url.startswith("http://") or "/heartbeat/" not in url:
        raise UsageError(f"{URL_VAR} is not Fleetwarden's heartbeat URL")
    return url.replace("/heartbeat/", "/msg/", 1), token


def read_stdin() -> str:
    data = sys.stdin.buffer.read(MAX_TEXT + 1)
    return data.decode("utf-8", "replace")


def _refused_connection(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return True
    return isinstance(reason, OSError) and reason.errno == errno.ECONNREFUSED


def post(
    url: str,
    token: str,
    call: Call,
    *,
    retry_seconds: float = RETRY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, dict[str, Any] | None]:
    """Post ``call``; its status and JSON answer (``None``: no JSON). A refused connection
    (Fleetwarden restarting) or a busy answer (503: still starting) is tried again for
    ``retry_seconds``; a lost connection is not (a message might have been sent)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = json.dumps(call).encode("utf-8")
    headers = {"Content-Type": "application/json", TOKEN_HEADER: token}
    timeout = REQUEST_SECONDS + float(call.get("wait") or 0)
    deadline = clock() + retry_seconds
    pause = 0.1
    while True:
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, _json(response.read(MAX_ANSWER + 1))
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read(MAX_ANSWER + 1)
            finally:
                exc.close()
            if exc.code != 503:
                return exc.code, _json(body)
            why = "Fleetwarden is busy"
        except (urllib.error.URLError, OSError) as exc:
            if not _refused_connection(exc):
                raise Failed(f"cannot reach Fleetwarden's peer door: {_reason(exc)}") from None
            why = "Fleetwarden does not answer (connection refused)"
        if clock() + pause > deadline:
            raise Failed(f"{why}, and still after {retry_seconds:g} s; try again later")
        sleep(pause)
        pause = min(pause * 2, 1.0)


def _reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def outcome(answer: tuple[int, dict[str, Any] | None], call: Call) -> str:
    """The text of a successful answer; :class:`Failed` saying why otherwise — a refusal
    as ``REFUSED: why``, and a message still waiting after ``--verify`` as not accepted."""
    status, data = answer
    if status == 200 and data is not None and isinstance(data.get("text"), str):
        text = str(data["text"])
        if call.get("verify") and data.get("state") != "delivered":
            raise Failed(f"not yet accepted: {text}")
        return text
    if data is not None and isinstance(data.get("error"), str):
        error = str(data["error"])
        if status == 403 and error.startswith("refused: "):
            raise Failed(f"REFUSED: {error[len('refused: ') :]}")
        raise Failed(error)
    if status == 403:
        raise Failed(f"refused: the peer door does not take this agent's {TOKEN_VAR}")
    if status == 408:
        raise Failed("the call did not reach Fleetwarden in time; try again")
    if status == 413:
        raise Failed(f"refused: the call is over {MAX_TEXT // 1024} KiB; make the text shorter")
    raise Failed(f"the peer door answered {status}")


def _write(stream: Any, text: str) -> None:
    if not text.endswith("\n"):
        text += "\n"
    stream.buffer.write(text.encode("utf-8", "replace"))
    stream.flush()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; its exit status."""
    try:
        args = parser().parse_args(argv)
        url, token = door_url(os.environ if env is None else env)
        call = build_call(args, read_stdin)
    except SystemExit as exc:  # --help: printed, and done
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except UsageError as exc:
        _write(sys.stderr, f"{exc.usage or parser().format_usage()}fw-msg: {exc}")
        return EXIT_USAGE
    try:
        text = outcome(post(url, token, call), call)
    except Failed as exc:
        _write(sys.stderr, f"fw-msg: {exc}")
        return EXIT_REFUSED
    _write(sys.stdout, text)
    return EXIT_OK


def own_directory_off_path() -> None:
    """Take this file's directory off ``sys.path``: run as a script by a Python without
    ``-P`` (before 3.11), it comes first, and a module of the package there would be
    imported before one of the standard library's of the same name."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]


if __name__ == "__main__":
    own_directory_off_path()
    sys.exit(main())
