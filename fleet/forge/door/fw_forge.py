"""The fw-forge command: what an agent on a forge run uses to read its repository's issues,
pull requests and files, comment, open and describe its pull request, and say it is done.

It holds no forge credential: it posts each call to Fleetwarden's forge door
(:mod:`fleet.forge.door.door`) with the agent's heartbeat token, and prints the answer. It runs
inside the agent's sandbox with only the system's python3 (3.9 or later), so it imports
nothing but the standard library. ``fw-forge --help`` says how it is used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING or __package__:  # imported as part of Fleetwarden
    from fleet.connections import door_client
else:  # run as a script, with the system's python3 alone: the client from the same tree
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "fleetwarden_door_client",
        os.path.join(
            os.path.dirname(os.path.realpath(__file__)), "..", "..", "connections", "door_client.py"
        ),
    )
    door_client = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(door_client)

URL_VAR = door_client.URL_VAR
TOKEN_VAR = door_client.TOKEN_VAR
TOKEN_HEADER = door_client.TOKEN_HEADER
REQUEST_SECONDS = 120.0  # a call waits on the forge's API, itself given 30 s a request
MAX_TEXT = door_client.MAX_TEXT
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = (
    door_client.EXIT_OK,
    door_client.EXIT_REFUSED,
    door_client.EXIT_USAGE,
)

Call = dict[str, Any]  # a call, as the door takes it (PEP 585: python3 >= 3.9)

DESCRIPTION = """\
Work with the forge (GitHub, Gitea, GitLab) from a Fleetwarden forge run. Fleetwarden does each
call for you, within your run: you may read anything in the run's repository, comment on
your issue or your pull request, open your pull request (from your branch, once pushed
with `git push origin HEAD`) and change its description, and say when you are done."""

EPILOG = """\
commands:
  fw-forge read N                 an issue: title, state, labels, author, body
  fw-forge read N --pull          a pull request: as an issue, with head, base, merged
  fw-forge read N --comments      the comments on issue or pull request N
  fw-forge read N --pull-comments the comments on merge request N (GitLab numbers
                                  issues and merge requests apart)
  fw-forge read --file PATH [--ref REF]
                                  a file of the repository (default branch unless REF)
  fw-forge comment [--issue N] TEXT
                                  comment on your issue (or on N: your issue or your PR)
  fw-forge comment --pull TEXT    comment on your pull (merge) request
  fw-forge describe TEXT          replace your pull request's description
  fw-forge pr [--draft] TITLE [BODY]
                                  open your pull request from your branch
  fw-forge done ok|failed SUMMARY say the work is over, and how it went

TEXT, BODY or SUMMARY given as - is read from standard input; put -- before one
that starts with a dash.

exit status: 0 done (the answer on standard output); 1 refused or failed (why, on
standard error); 2 a usage error."""


UsageError = door_client.UsageError
Failed = door_client.Failed


def parser() -> argparse.ArgumentParser:
    """The command line's parser (usage errors raise :class:`UsageError`)."""
    top = door_client.Parser(
        prog="fw-forge",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=door_client.Parser
    )
    commands.required = True
    read = commands.add_parser("read", help="read an issue, a pull request, comments or a file")
    read.add_argument("number", nargs="?", type=int, metavar="N")
    kind = read.add_mutually_exclusive_group()
    kind.add_argument("--pull", action="store_true", help="N is a pull request")
    kind.add_argument("--comments", action="store_true", help="the comments on N")
    kind.add_argument(
        "--pull-comments", action="store_true", help="the comments on pull (merge) request N"
    )
    kind.add_argument("--file", metavar="PATH", help="a file, by its path in the repository")
    read.add_argument("--ref", metavar="REF", help="the branch, tag or commit of --file")
    comment = commands.add_parser("comment", help="comment on your issue or pull request")
    comment.add_argument("--issue", type=int, metavar="N", help="your issue's or PR's number")
    comment.add_argument("--pull", action="store_true", help="on your pull (merge) request")
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
        if args.pull_comments:
            return {"op": "read", "what": "comments", "number": args.number, "pull": True}
        what = "pull" if args.pull else "comments" if args.comments else "issue"
        return {"op": "read", "what": what, "number": args.number}
    if args.command == "comment":
        if args.pull:
            if args.issue is not None:
                raise UsageError("comment takes --issue N or --pull, not both")
            return {"op": "comment", "pull": True, "body": text(args.text)}
        return {"op": "comment", "number": args.issue, "body": text(args.text)}
    if args.command == "describe":
        return {"op": "describe", "body": text(args.text)}
    if args.command == "pr":
        return {"op": "pr", "title": args.title, "body": text(args.body), "draft": args.draft}
    return {"op": "done", "status": args.status, "summary": text(args.summary)}


def post(
    url: str,
    token: str,
    call: Call,
    *,
    retry_seconds: float = door_client.RETRY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, dict[str, Any] | None]:
    """Post ``call`` to the forge door; its status and JSON answer. A connection lost
    before any answer is tried again for a read only (a write might have been done)."""
    return door_client.post(
        url, token, call, door="forge door", timeout=REQUEST_SECONDS,
        retry_lost=call.get("op") == "read", retry_seconds=retry_seconds, clock=clock,
        sleep=sleep,
    )  # fmt: skip


def outcome(answer: tuple[int, dict[str, Any] | None]) -> str:
    """The text of a successful answer; :class:`Failed` saying why otherwise."""
    status, data = answer
    if status == 200 and data is not None and isinstance(data.get("text"), str):
        return str(data["text"])
    if data is not None and isinstance(data.get("error"), str):
        raise Failed(str(data["error"]))
    raise door_client.failure(status, "forge door")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; its exit status."""

    def answer(url: str, token: str, call: Call) -> str:
        return outcome(post(url, token, call))

    return door_client.run("fw-forge", "forge", parser, build_call, answer, argv, env)


if __name__ == "__main__":
    door_client.own_directory_off_path(__file__)
    sys.exit(main())
