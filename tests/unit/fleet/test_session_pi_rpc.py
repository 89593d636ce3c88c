"""Tests for fleet.sessions.pi_rpc: the pi-rpc protocol without a process."""

from __future__ import annotations

import json

from fleet.approvals.model import Decision
from fleet.model import PermissionMode
from fleet.sessions.base import Alive, TurnEnded, Write
from fleet.sessions.pi_rpc import PiRpc


def prompt(text: str) -> Write:
    return Write(json.dumps({"type": "prompt", "message": text}, separators=(",", ":")))


def test_a_turn_sent_during_a_turn_waits_for_its_end() -> None:
    """The first turn is written at once; one sent while it runs is written at agent_end."""
    rpc = PiRpc()
    assert rpc.opening("one") == (prompt("one"),)
    assert rpc.busy and rpc.turn("two") == ()
    assert rpc.feed('{"type":"agent_start"}') == (Alive("working"),)
    assert rpc.feed('{"type":"agent_end","messages":[]}') == [TurnEnded(), prompt("two")]
    assert rpc.feed('{"type":"agent_end","messages":[]}') == [TurnEnded(), Alive("waiting")]
    assert not rpc.busy and rpc.turn("three") == (prompt("three"),)


def test_what_pi_cannot_take_in_band_and_lines_that_are_not_events() -> None:
    """Asks are not answered here (they go through the ask door), the mode changes from the
    next process, an interrupt when idle writes nothing, and stray lines are ignored."""
    rpc = PiRpc()
    assert rpc.answer("toolu_1", Decision.ALLOW, None) == ()
    assert rpc.set_mode(PermissionMode.FULL) is None
    assert rpc.interrupt() == ()
    assert rpc.feed("Warning: something on stderr") == ()
    assert rpc.feed('["not", "an", "event"]') == ()
    rpc.turn("go")
    assert rpc.interrupt() == (Write('{"type":"abort"}'),)
