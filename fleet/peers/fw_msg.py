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
            os.path.dirname(os.path.realpath(__file__)), "..", "connections", "door_client.py"
        ),
    )
    door_client = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(door_client)

URL_VAR = door_client.URL_VAR
TOKEN_VAR = door_client.TOKEN_VAR
TOKEN_HEADER = door_client.TOKEN_HEADER
REQUEST_SECONDS = 60.0  # beyond what a call itself waits for (--wait)
VERIFY_WAIT = 120
MAX_WAIT = 600
MAX_TEXT = door_client.MAX_TEXT
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = (
    door_client.EXIT_OK,
    door_client.EXIT_REFUSED,
    door_client.EXIT_USAGE,
)

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


UsageError = door_client.UsageError
Failed = door_client.Failed


def parser() -> argparse.ArgumentParser:
    """The command line's parser (usage errors raise :class:`UsageError`)."""
    top = door_client.Parser(
        prog="fw-msg",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=door_client.Parser
    )
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


def post(
    url: str,
    token: str,
    call: Call,
    *,
    retry_seconds: float = door_client.RETRY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, dict[str, Any] | None]:
    """Post ``call`` to the peer door; its status and JSON answer. A lost connection is
    not tried again: a message might have been sent."""
    return door_client.post(
        url, token, call, door="peer door", timeout=REQUEST_SECONDS + float(call.get("wait") or 0),
        retry_seconds=retry_seconds, clock=clock, sleep=sleep,
    )  # fmt: skip


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
    raise door_client.failure(status, "peer door")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; its exit status."""

    def answer(url: str, token: str, call: Call) -> str:
        return outcome(post(url, token, call), call)

    return door_client.run("fw-msg", "msg", parser, build_call, answer, argv, env)


if __name__ == "__main__":
    door_client.own_directory_off_path(__file__)
    sys.exit(main())
