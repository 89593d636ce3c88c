"""An approval of A holds the line to A after a later round asked for changes on B: neither
B nor the next commit C lands by a plain ``merge`` while round 3 reads it."""

from __future__ import annotations

from fleet.repos.landing.approval import unapproved
from tests.unit.fleet.repos.test_approval_hold import LINE, _round

A = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
B = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
C = "c" * 40


def test_a_later_round_asking_for_changes_keeps_the_line_held() -> None:
    """Approved A (1/3), changes asked on B (2/3), round 3 reading C: C is held."""
    rounds = [_round(1, "approved", A, 3), _round(2, "changes", B, 3), _round(3, "asked", C, 3)]
    assert unapproved(LINE, C, rounds, "merge") is not None
    assert unapproved(LINE, B, rounds[:2], "merge") is not None  # the rejected B itself
