"""pi's live session: ``pi --mode rpc``, one process for every turn (the ``pi-rpc`` protocol).

pi reads commands as JSON lines on stdin and writes its events (the same as ``--mode json``)
and a ``response`` to each command on stdout. Measured on pi 0.73.1 against the fake
provider: a turn is ``{"type": "prompt", "message": …}``, its events run from
``agent_start`` to ``agent_end``; a ``prompt`` sent after ``agent_end`` starts the next turn
in the same process; ``{"type": "abort"}`` during a turn ends it (``agent_end`` comes, then
the abort's response) and the process goes on; end of input ends the process, status 0.

A turn sent while one runs is queued here and written when ``agent_end`` comes (pi itself
refuses a ``prompt`` during a turn unless told how to queue it), so turns keep their order
and each ends in its own ``agent_end``. pi has no permission protocol: its asks go through
Fleetwarden's extension and the ask door (:mod:`fleet.runtimes.gates`), never this
channel, so :meth:`PiRpc.answer` writes nothing; the mode cannot change in-band either
(the extension reads it when the process starts).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import Final

from fleet.approvals.model import Decision
from fleet.model import PermissionMode
from fleet.sessions.base import Alive, Effect, TurnEnded, Write

NAME: Final = "pi-rpc"
_WORKING: Final = frozenset({"turn_start", "tool_execution_start", "tool_execution_end"})


def _command(kind: str, **fields: str) -> Write:
    return Write(json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":")))


class PiRpc:
    """The ``pi-rpc`` :class:`~fleet.sessions.base.SessionProtocol`."""

    def __init__(self) -> None:
        self._busy = False
        self._queued: deque[str] = deque()

    @property
    def name(self) -> str:
        return NAME

    @property
    def busy(self) -> bool:
        return self._busy

    def opening(self, prompt: str | None) -> Sequence[Effect]:
        return self.turn(prompt) if prompt else ()

    def feed(self, line: str) -> Sequence[Effect]:
        try:
            event = json.loads(line)
        except ValueError:
            return ()
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "agent_start":
            self._busy = True
            return (Alive("working"),)
        if kind in _WORKING:
            return (Alive("working"),)
        if kind == "agent_end":
            self._busy = False
            ended: list[Effect] = [TurnEnded()]
            if self._queued:
                ended.append(self._prompt(self._queued.popleft()))
            else:
                ended.append(Alive("waiting"))
            return ended
        return ()

    def turn(self, text: str) -> Sequence[Effect]:
        if self._busy or self._queued:
            self._queued.append(text)
            return ()
        return (self._prompt(text),)

    def answer(self, native_id: str, decision: Decision, reason: str | None) -> Sequence[Effect]:
        return ()  # asks go through the ask door, not this channel

    def interrupt(self) -> Sequence[Effect]:
        return (_command("abort"),) if self._busy else ()

    def set_mode(self, mode: PermissionMode) -> Sequence[Effect] | None:
        return None

    def _prompt(self, text: str) -> Write:
        self._busy = True  # until its agent_end; a turn sent meanwhile waits its turn
        return _command("prompt", message=text)
