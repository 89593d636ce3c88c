"""The app's connectors phase: the chat services the config lists (or the ones given),
each behind the redactor, started in turn and read by :class:`~bot.app.serving.Serving`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from bot.app import assembly as wiring
from bot.app.serving import Serving
from bot.chat import redacting
from bot.commands.acl import Acl
from bot.config import Config
from connectors.base import Connector
from fleet.clock import Clock
from fleet.ledger import Ledger
from fleet.redaction.redactor import Redactor


async def start_connectors(
    cfg: Config,
    *,
    serving: Serving,
    given: Sequence[Connector] | None,
    ledger: Ledger,
    acl: Acl,
    clock: Clock,
    environ: Mapping[str, str],
    redactor: Redactor,
    secrets: Iterable[object],
    on_send_failure: Callable[[str], None],
) -> tuple[Connector, ...]:
    """The connectors started, in order. ``given``: the ones to serve instead of the
    config's; ``secrets``: the parts that make secrets at run time, for the redactor."""
    made = given
    if made is None:
        made = wiring.make_connectors(
            cfg,
            ledger=ledger,
            acl=acl,
            clock=clock,
            environ=environ,
            failures=serving.failures,
        )
    await serving.start(redacting.guard(made, redactor, secrets, on_failure=on_send_failure))
    return tuple(serving.connectors)
