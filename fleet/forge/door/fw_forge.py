"""The fw-forge command: what an agent on a forge run uses to read its repository's issues,
pull requests and files, comment, open and describe its pull request, and say it is done.

It holds no forge credential: it posts each call to Fleetwarden's forge door
(:mod:`fleet.forge.door.door`) with the agent's heartbeat token, and prints the answer. It runs
inside the agent's sandbox with only the system's python3 (3.9 or later), so it imports
nothing but the standard library. ``fw-forge --help`` says how it is used.
"""

from __future__ import annotations

import argparse
import errno
import http.client
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
REQUEST_SECONDS = 120.0  # a call waits on the forge's API, itself given 30 s a request
MAX_TEXT = 64 * 1024  # the door's own cap on a call
MAX_ANSWER = 1024 * 1024
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

Call = dict[str, Any]  # a call, as the door takes it (PEP 585: python3 >= 3.9)

DESCRIPTION = """\
Work with the forge (GitHub, Gitea) from a Fleetwarden forge run. Fleetwarden does each
call for you, within your run: you may read anything in the run's repository, comment on
your issue or your pull request, open your pull request (from your branch, once pushed
with `git push origin HEAD`) and change its description, and say when you are done."""

EPILOG = """\
commands:
  fw-forge read N                 an issue: title, state, labels, author, body
  fw-forge read N --pull          a pull request: as an issue, with head, base, merged
  fw-forge read N --comments      the comments on issue or pull request N
  fw-forge read --file PATH [--ref REF]
                                  a file of the repository (default branch unless REF)
  fw-forge comment [--issue N] TEXT
                                  comment on your issue (or on N: your issue or your PR)
  fw-forge describe TEXT          replace your pull request's description
  fw-forge pr [--draft] TITLE [BODY]
                                  open your pull request from your branch
  fw-forge done ok|failed SUMMARY say the work is over, and how it went

TEXT, BODY or SUMMARY given as - is read from standard input; put -- before one
that starts with a dash.

exit status: 0 done (the answer on standard output); 1 refused or failed (why, on
standard error); 2 a usage error."""


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
        prog="fw-forge",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    read = commands.add_parser("read", help="read an issue, a pull request, comments or a file")
    read.add_argument("number", nargs="?", type=int, metavar="N")
    kind = read.add_mutually_exclusive_group()
    kind.add_argument("--pull", action="store_true", help="N is a pull request")
    kind.add_argument("--comments", action="store_true", help="the comments on N")
    kind.add_argument("--file", metavar="PATH", help="a file, by its path in the repository")
    read.add_argument("--ref", metavar="REF", help="the branch, tag or commit of --file")
    comment = commands.add_parser("comment", help="comment on your issue or pull request")
    comment.add_argument("--issue", type=int, metavar="N", help="your issue's or PR's number")
    comment.add_argument("text", metavar="TEXT")
    describe = commands.add_parser("describe", help="replace your pull request's description")
    describe.add_argument("text", metavar="TEXT")
    pr = commands.add_parser("pr", help="open your pull request from your branch")
    pr.add_argument("--draft", action="store_true", help="open it as a draft")
    pr.add_argument("title", metavar="TITLE")
    pr.add_argument("body", nargs="?", default="", metavar="BODY")
    done = commands.add_parser("done", help="say the work is over")
    done.add_argument("status", choices=("ok", "failed"))
    done.add_argument("summary", metavar="SUMMARY")
    return top


def build_call(args: argparse.Namespace, stdin: Callable[[], str]) -> Call:
    """The door's JSON call for parsed ``args``; ``stdin`` reads the text given as ``-``."""

    def text(value: str) -> str:
        return stdin() if value == "-" else value

    if args.command == "read":
        if args.file is not None:
            if args.number is not None:
                raise UsageError("read takes N or --file PATH, not both")
            call: Call = {"op": "read", "what": "file", "path": args.file}
            if args.ref is not None:
                call["ref"] = args.ref
            return call
        if args.number is None:
            raise UsageError("read needs N (an issue or pull request number) or --file PATH")
        if args.ref is not None:
            raise UsageError("--ref goes with --file")
        what = "pull" if args.pull else "comments" if args.comments else "issue"
        return {"op": "read", "what": what, "number": args.number}
    if args.command == "comment":
        return {"op": "comment", "number": args.issue, "body": text(args.text)}
    if args.command == "describe":
        return {"op": "describe", "body": text(args.text)}
    if args.command == "pr":
        return {"op": "pr", "title": args.title, "body": text(args.body), "draft": args.draft}
    return {"op": "done", "status": args.status, "summary": text(args.summary)}


def door_url(env: Mapping[str, str]) -> tuple[str, str]:
    """The forge door's URL for this agent and its token, from the environment."""
    url, token = env.get(URL_VAR, ""), env.get(TOKEN_VAR, "")
    if not url or not token:
        raise UsageError(
            f"{URL_VAR} and {TOKEN_VAR} are not set: fw-forge works inside a Fleetwarden agent"
        )
    if not url.startswith("http://") or "/heartbeat/" not in url:
        raise UsageError(f"{URL_VAR} is not Fleetwarden's heartbeat URL")
    return url.replace("/heartbeat/", "/forge/", 1), token


def read_stdin() -> str:
    data = sys.stdin.buffer.read(MAX_TEXT + 1)
    return data.decode("utf-8", "replace")


def _refused_connection(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return True
    return isinstance(reason, OSError) and reason.errno == errno.ECONNREFUSED


def _lost_connection(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, (ConnectionResetError, http.client.RemoteDisconnected))


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
    (Fleetwarden restarting) or a busy answer is tried again for ``retry_seconds``, and a
    connection lost before any answer too, for a read only (a write might have been done)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = json.dumps(call).encode("utf-8")
    headers = {"Content-Type": "application/json", TOKEN_HEADER: token}
    deadline = clock() + retry_seconds
    pause = 0.1
    while True:
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with opener.open(request, timeout=REQUEST_SECONDS) as response:
                return response.status, _json(response.read(MAX_ANSWER + 1))
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read(MAX_ANSWER + 1)
            finally:
                exc.close()
            if exc.code != 503:
                return exc.code, _json(body)
            why = "Fleetwarden is busy"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if _refused_connection(exc):
                why = "Fleetwarden does not answer (connection refused)"
            elif _lost_connection(exc) and call.get("op") == "read":
                why = "Fleetwarden closed the connection"
            else:
                raise Failed(f"cannot reach Fleetwarden's forge door: {_reason(exc)}") from None
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


def outcome(answer: tuple[int, dict[str, Any] | None]) -> str:
    """The text of a successful answer; :class:`Failed` saying why otherwise."""
    status, data = answer
    if status == 200 and data is not None and isinstance(data.get("text"), str):
        return str(data["text"])
    if data is not None and isinstance(data.get("error"), str):
        raise Failed(str(data["error"]))
    if status == 403:
        raise Failed(f"refused: the forge door does not take this agent's {TOKEN_VAR}")
    if status == 408:
        raise Failed("the call did not reach Fleetwarden in time; try again")
    if status == 413:
        raise Failed(f"refused: the call is over {MAX_TEXT // 1024} KiB; make the text shorter")
    raise Failed(f"the forge door answered {status}")


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
        _write(sys.stderr, f"{exc.usage or parser().format_usage()}fw-forge: {exc}")
        return EXIT_USAGE
    try:
        text = outcome(post(url, token, call))
    except Failed as exc:
        _write(sys.stderr, f"fw-forge: {exc}")
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
