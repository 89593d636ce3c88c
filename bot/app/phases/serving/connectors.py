"""The app's connectors phase: the chat services the config lists (or the ones given),
each behind the redactor, started in turn and read by :class:`~bot.app.serving.Serving`,
which hands their messages to the commands' router; and the watch that tells the other
connectors' rooms when one loses its service (:mod:`bot.chat.link_notices`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.phases.serving.commands import Commands
from bot.app.stops import Stop
from bot.chat import redacting
from bot.chat.link_notices import LinkWatch
from bot.control.answers import ShellAnswers
from bot.control.connector import ShellConnector
from bot.control.door import ControlDoor
from connectors.base import Connector
from connectors.health import DOWN_AFTER_SECONDS
from fleet.ledger import Ledger

log = logging.getLogger(__name__)


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
    await open_control(at, commands)
    return tuple(at.serving.connectors)


async def open_control(at: Grounds, commands: Commands) -> None:
    """The control socket, where commands typed in a shell reach the router as the config's
    ``shell: {as: ID}`` (:mod:`bot.control`). One that cannot listen is logged; chat runs."""
    shell = at.cfg.document.shell

    def shell_user() -> str | None:
        return None if shell is None else shell.as_

    answers = ShellAnswers(commands.router, shell_user, at.clock, at.redactor.redact)
    door = ControlDoor(at.cfg.state_dir, answers)
    try:
        await door.start()
    except OSError as exc:
        log.error("the control socket could not listen in %s: %s", at.cfg.state_dir, exc)
        return
    at.stops.add(Stop.CONTROL, door.stop)
    at.serving.attach(ShellConnector(at.clock))  # where a launch a shell queued is answered
