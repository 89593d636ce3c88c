"""The router's side of the control socket: a shell's command runs as the operator the
config's ``shell: {as: ID}`` names, on the connector :data:`SHELL` (an ``operators:`` entry
for every connector, or ``connector: shell``, gives it its role, looked up as it runs), and
is audited with source :data:`SHELL` — parsed, authorised, handled and answered as chat's
(:meth:`bot.commands.routing.router.Router.answer`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from bot.commands.routing.execution import Ran
from bot.commands.routing.request import Reply
from bot.commands.routing.sources import SHELL
from bot.control.wire import EXIT_OK, EXIT_REFUSED, NO_OPERATOR, Answer
from connectors.base import InboundMessage, RoomId, UserId
from fleet.timing.clock import Clock


class Answering(Protocol):
    def answer(self, msg: InboundMessage, source: str) -> Awaitable[tuple[Ran, Reply]]: ...


class ShellAnswers:
    """Runs each shell command through the router as the configured operator."""

    def __init__(
        self,
        router: Answering,
        operator: Callable[[], str | None],
        clock: Clock,
        redact: Callable[[str], str] = str,
    ) -> None:
        """``operator``: the config's ``shell.as`` now (``None``: not set). ``redact``:
        what every word of an answer passes before it leaves, as chat's do."""
        self._router = router
        self._operator = operator
        self._clock = clock
        self._redact = redact

    async def __call__(self, text: str) -> Answer:
        sender = self._operator()
        if sender is None:
            return Answer(EXIT_REFUSED, "denied", NO_OPERATOR)
        msg = InboundMessage(
            connector=SHELL,
            sender=UserId(sender),
            text=text,
            room=RoomId(SHELL),
            timestamp=self._clock.now(),
            addressed=True,
        )
        ran, reply = await self._router.answer(msg, SHELL)
        data = reply.data if ran.outcome == "ok" else {"error": ran.detail or reply.markdown}
        return Answer(
            EXIT_OK if ran.outcome == "ok" else EXIT_REFUSED,
            ran.outcome,
            self._redact(reply.markdown),
            ran.command,
            None if data is None else self._redacted(data),
        )

    def _redacted(self, value: Any) -> Any:
        """``value`` (data: mappings, lists, strings, numbers) with every string redacted."""
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, Mapping):
            return {str(k): self._redacted(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._redacted(v) for v in value]
        return value
