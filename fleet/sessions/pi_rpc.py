"""pi's live session: ``pi --mode rpc``, one process for every turn (the ``pi-rpc`` protocol).

pi reads commands as JSON lines on stdin and writes its events (the same as ``--mode json``)
and a ``response`` to each command on stdout. Measured on pi 0.73.1 against the fake
provider: a turn is ``{"type": "prompt", "message": …}``, its events run from
``agent_start`` to ``agent_end``; a ``prompt`` sent after ``agent_end`` starts the next turn
in the same process; ``{"type": "abort"}`` during a turn ends it (``agent_end`` comes, then
the abort's response) and the process goes on; end of input ends the process, status 0.

The session is named in the output by the ``get_state`` response the opening asks for
(``data.sessionId``). A turn sent while one runs is queued here and written when
``agent_end`` comes (pi itself refuses a ``prompt`` during a turn unless told how to queue
it), so turns keep their order and each ends in its own ``agent_end``. When the work is
done (a turn ends with none queued, not interrupted) the session ends its process, as a
headless run would: pi has no command for that, so Fleetwarden's extension registers one,
:data:`END_COMMAND`, which asks pi to shut down once idle (``ctx.shutdown()``); a later
turn starts a new process that continues the session.

pi has no permission protocol: its asks go through Fleetwarden's extension and the ask
door (:mod:`fleet.runtimes.gates`), never this channel, so :meth:`PiRpc.answer` writes
nothing; the mode cannot change in-band either (the extension reads it when the process
starts).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import Final

from fleet.ledger.records.approvals import Decision
from fleet.model import PermissionMode
from fleet.sessions.base import Alive, Closing, Effect, TurnEnded, Write

NAME: Final = "pi-rpc"
END_COMMAND: Final = "/fleetwarden-end"  # registered by fleet/gates/pi.mjs
_WORKING: Final = frozenset({"turn_start", "tool_execution_start", "tool_execution_end"})


def _command(kind: str, **fields: str) -> Write:
    return Write(json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":")))


class PiRpc:
    """The ``pi-rpc`` :class:`~fleet.sessions.base.SessionProtocol`."""

    def __init__(self) -> None:
        self._busy = False
        self._interrupted = False
        self._queued: deque[str] = deque()

    @property
    def name(self) -> str:
        return NAME

    @property
    def busy(self) -> bool:
        return self._busy

    def opening(self, prompt: str | None) -> Sequence[Effect]:
        # get_state first: its response names the session, for a later process to resume.
        return (_command("get_state"), *(self.turn(prompt) if prompt else ()))

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
            interrupted, self._interrupted = self._interrupted, False
            ended: list[Effect] = [TurnEnded()]
            if self._queued:
                ended.append(self._prompt(self._queued.popleft()))
            elif interrupted:
                ended.append(Alive("waiting"))  # the operator stopped it: keep the process
            else:
                ended += [Closing(), _command("prompt", message=END_COMMAND)]
            return ended
        return ()

    def turn(self, text: str) -> Sequence[Effect]:
        if self._busy or self._queued:
            self._queued.append(text)
            return ()
        return (self._prompt(text),)

    def answer(
        self, native_id: str, decision: Decision, reason: str | None, *, digest: str
    ) -> Sequence[Effect]:
        return ()  # asks go through the ask door, not this channel

    def interrupt(self) -> Sequence[Effect]:
        if not self._busy:
            return ()
        self._interrupted = True
        return (_command("abort"),)

    def set_mode(self, mode: PermissionMode) -> Sequence[Effect] | None:
        return None

    def _prompt(self, text: str) -> Write:
        self._busy = True  # until its agent_end; a turn sent meanwhile waits its turn
        # pi runs a message starting with "/" as a command (an extension's, a skill, a
        # template): an operator's text is only text.
        return _command("prompt", message=" " + text if text.startswith("/") else text)
