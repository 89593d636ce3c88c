"""The app's connectors phase: the chat services the config lists (or the ones given),
each behind the redactor, started in turn and read by :class:`~bot.app.serving.Serving`,
which hands their messages to the commands' router; and the watch that tells the other
connectors' rooms when one loses its service (:mod:`bot.chat.link_notices`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.stops import Stop
from bot.chat import redacting
from bot.chat.link_notices import LinkWatch
from bot.commands.wiring import Commands
from connectors.base import Connector
from connectors.health import DOWN_AFTER_SECONDS
from fleet.ledger import Ledger


async def start_connectors(
    at: Grounds,
    ledger: Ledger,
    commands: Commands,
    given: Sequence[Connector] | None,
    secrets: Iterable[object],
    on_send_failure: Callable[[str], None],
) -> tuple[Connector, ...]:
    """The connectors started, in order, their messages routed to ``commands`` (whose ACL
    the Matrix and Discord connectors ask too). ``given``: the ones to serve instead of the
    config's; ``secrets``: the parts that make secrets at run time, for the redactor."""
    made = given
    if made is None:
        made = wiring.make_connectors(
            at.cfg,
            ledger=ledger,
            acl=commands.acl,
            clock=at.clock,
            environ=at.environ,
            failures=at.serving.failures,
        )
    guarded = redacting.guard(made, at.redactor, secrets, on_failure=on_send_failure)
    await at.serving.start(guarded, commands.router)
    section = at.cfg.document.connectors
    after = section.down_after_seconds if section is not None else DOWN_AFTER_SECONDS
    watch = LinkWatch(at.serving.running, at.clock, after)
    watch.start()
    at.stops.add(Stop.LINK_WATCH, watch.stop)
    return tuple(at.serving.connectors)
