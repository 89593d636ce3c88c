"""``fleetwarden matrix verify``: the verifications an operator started, for an admin to
compare and answer while ``fleetwarden run`` runs (through :mod:`.board`'s files).

``verify`` lists them with their emojis and numbers; ``verify ID yes|no`` answers one; at a
terminal, ``verify`` with no answer asks for one. The running bot reads the answer within a
second or two.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from connectors.matrix.verification.board import Board

ANSWERS = {"yes": True, "y": True, "no": False, "n": False}


def configure(
    matrix_sub: argparse._SubParsersAction[argparse.ArgumentParser], config_help: str
) -> None:
    verify = matrix_sub.add_parser(
        "verify",
        help="compare and answer an operator's emoji verification (while the bot runs)",
        description=(
            "List the key verifications operators started from their Matrix client, with "
            "the emojis to compare with theirs; answer one with ID yes (they match: the bot "
            "signs the operator's identity) or ID no (they differ: it is cancelled)."
        ),
    )
    verify.add_argument("id", nargs="?", help="the verification's id, as listed")
    verify.add_argument("answer", nargs="?", choices=sorted(ANSWERS), help="yes or no")
    verify.add_argument("--config", type=Path, required=True, help=config_help)


def board_of(state_dir: Path) -> Board:
    from connectors.matrix.encryption import crypto

    return Board(crypto.store_dir(state_dir) / "verifications")


def main(
    args: argparse.Namespace,
    state_dir: Path,
    *,
    ask: Callable[[str], str] = input,
    interactive: bool | None = None,
) -> str:
    """What to print; raises ValueError naming what is wrong."""
    board = board_of(state_dir)
    if args.id is not None and args.answer is not None:
        board.answer(args.id, ANSWERS[args.answer])
        return _answered(args.id, ANSWERS[args.answer])
    pending = [p for p in board.pending() if args.id is None or p.id == args.id]
    if not pending:
        if args.id is not None:
            raise ValueError(f"no pending verification {args.id!r}")
        return "No verification is waiting. An operator starts one from their client."
    listing = "\n\n".join(p.describe() for p in pending)
    if interactive is None:
        interactive = sys.stdin.isatty()
    comparable = [p for p in pending if p.emojis]
    if not interactive or not comparable:
        return listing + "\n\nAnswer with: fleetwarden matrix verify --config F ID yes|no"
    print(listing + "\n")
    vid = comparable[0].id if len(comparable) == 1 else ask("Which one (id)? ").strip()
    reply = ask(f"Do the emojis of {vid} match what the operator sees? [yes/no] ").strip()
    if reply.lower() not in ANSWERS:
        raise ValueError(f"expected yes or no, got {reply!r}; nothing was answered")
    board.answer(vid, ANSWERS[reply.lower()])
    return _answered(vid, ANSWERS[reply.lower()])


def _answered(vid: str, yes: bool) -> str:
    if yes:
        return f"{vid}: confirmed; the bot finishes the verification and signs their identity."
    return f"{vid}: rejected; the bot cancels the verification (mismatched emojis)."
