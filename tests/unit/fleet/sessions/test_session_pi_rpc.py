"""Tests for fleet.sessions.pi_rpc: the pi-rpc protocol without a process."""

from __future__ import annotations

import json

from fleet.ledger.records.approvals import Decision
from fleet.model import PermissionMode
from fleet.runtimes.pi import PiRuntime
from fleet.sessions.base import Alive, Closing, TurnEnded, Write
from fleet.sessions.pi_rpc import END_COMMAND, PiRpc


def prompt(text: str) -> Write:
    return Write(json.dumps({"type": "prompt", "message": text}, separators=(",", ":")))


def test_a_turn_sent_during_a_turn_waits_for_its_end() -> None:
    """The first turn is written at once; one sent while it runs is written at agent_end;
    the last turn's end ends the process through the extension's end command."""
    rpc = PiRpc()
    assert rpc.opening("one") == (Write('{"type":"get_state"}'), prompt("one"))
    assert rpc.busy and rpc.turn("two") == ()
    assert rpc.feed('{"type":"agent_start"}') == (Alive("working"),)
    assert rpc.feed('{"type":"agent_end","messages":[]}') == [TurnEnded(), prompt("two")]
    assert rpc.feed('{"type":"agent_end","messages":[]}') == [
        TurnEnded(),
        Closing(),
        prompt(END_COMMAND),
    ]


def test_an_interrupted_turn_keeps_the_process() -> None:
    """After an interrupt the turn's end leaves the process waiting for the next turn."""
    rpc = PiRpc()
    rpc.opening("one")
    assert rpc.interrupt() == (Write('{"type":"abort"}'),)
    assert rpc.feed('{"type":"agent_end","messages":[]}') == [TurnEnded(), Alive("waiting")]
    assert not rpc.busy and rpc.turn("two") == (prompt("two"),)


def test_what_pi_cannot_take_in_band_and_lines_that_are_not_events() -> None:
    """Asks are not answered here (they go through the ask door), the mode changes from the
    next process, an interrupt when idle writes nothing, and stray lines are ignored."""
    rpc = PiRpc()
    assert rpc.answer("toolu_1", Decision.ALLOW, None, digest="d") == ()
    assert rpc.set_mode(PermissionMode.FULL) is None
    assert rpc.interrupt() == ()
    assert rpc.feed("Warning: something on stderr") == ()
    assert rpc.feed('["not", "an", "event"]') == ()
    assert rpc.turn("/fleetwarden-end") == (prompt(" /fleetwarden-end"),)  # text, not a command
    assert rpc.interrupt() == (Write('{"type":"abort"}'),)


def test_the_session_is_named_by_the_get_state_response() -> None:
    """pi's runtime reads the session id from the get_state response the opening asks for."""
    line = '{"type":"response","command":"get_state","success":true,"data":{"sessionId":"abc-1"}}'
    assert PiRuntime().session_id(line) == "abc-1"
