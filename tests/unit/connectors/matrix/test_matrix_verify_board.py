"""The board of pending verifications shared by the bot and `fleetwarden matrix verify`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from connectors.matrix.verification.board import Board, Pending
from connectors.matrix.verification.cli import board_of, main

EMOJIS = (("🐶", "Dog"), ("🐱", "Cat"), ("🦁", "Lion"), ("🐎", "Horse"), ("🦄", "Unicorn"),
          ("🐷", "Pig"), ("🐘", "Elephant"))  # fmt: skip


def shown(board: Board, emojis: tuple[tuple[str, str], ...] = EMOJIS) -> Pending:
    pending = Pending(board.new_id(), "@ann:hs", "DEV", emojis, (1, 2, 3) if emojis else (), "s")
    board.show(pending)
    return pending


def args(vid: str | None = None, answer: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(id=vid, answer=answer)


def test_an_answer_is_read_once_and_files_are_private(tmp_path: Path) -> None:
    """The CLI's answer reaches the bot once; the directory is 0700, each file 0600."""
    board = board_of(tmp_path)
    pending = shown(board)
    assert board.get(pending.id) == pending
    assert "confirmed" in main(args(pending.id, "yes"), tmp_path)
    assert board.directory.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in board.directory.iterdir())
    assert board.take_answer(pending.id) is True
    assert board.take_answer(pending.id) is None


def test_listing_shows_emojis_and_numbers(tmp_path: Path) -> None:
    """`matrix verify` lists each pending one with its emojis, names and numbers."""
    board = board_of(tmp_path)
    pending = shown(board)
    out = main(args(), tmp_path, interactive=False)
    assert pending.id in out and "🐶 Dog" in out and "1 2 3" in out and "@ann:hs" in out
    assert main(args(), tmp_path / "none").startswith("No verification is waiting")


def test_interactive_answer(tmp_path: Path) -> None:
    """At a terminal with one pending verification, the admin is asked yes or no."""
    board = board_of(tmp_path)
    pending = shown(board)
    asked: list[str] = []
    out = main(args(), tmp_path, ask=lambda q: asked.append(q) or "no", interactive=True)
    assert "rejected" in out and len(asked) == 1
    assert board.take_answer(pending.id) is False
    with pytest.raises(ValueError, match="expected yes or no"):
        main(args(), tmp_path, ask=lambda q: "maybe", interactive=True)


def test_unknown_or_unready_ids_are_refused(tmp_path: Path) -> None:
    """An id not on the board, a malformed one, or one without emojis yet, is refused."""
    board = board_of(tmp_path)
    waiting = shown(board, ())
    with pytest.raises(ValueError, match="no pending verification"):
        board.answer("zzzzzz", True)
    with pytest.raises(ValueError, match="no pending verification"):
        board.answer("../../x", True)
    with pytest.raises(ValueError, match="no emojis"):
        board.answer(waiting.id, True)
    assert not (board.directory / f"{waiting.id}.answer").exists()


def test_a_damaged_file_is_skipped(tmp_path: Path) -> None:
    """A file that is not a verification is left out of the list, not a crash."""
    board = board_of(tmp_path)
    good = shown(board)
    (board.directory / "abcdef.json").write_text("{not json")
    assert [p.id for p in board.pending()] == [good.id]
    board.clear()
    assert board.pending() == []
