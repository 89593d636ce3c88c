"""The router the commands phase builds over the command families — each message read with
the grammar of its connector's prefix, checked against the ACL, confirmed when its command
asks first, or taken as an answer to an approval — and the spawn queue opened on it."""

from __future__ import annotations

from collections.abc import Sequence

from bot.acl import Acl
from bot.app.phases.serving.handlers import FamilyParts, Grammars
from bot.commands import registry
from bot.commands.family import Family
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.approvals.answers import ApprovalDesk
from bot.commands.handlers.work.starts import ChatTaskStarts
from bot.commands.handlers.work.tasks import TaskCommands
from bot.commands.routing.router import Router


def route(
    parts: FamilyParts,
    acl: Acl,
    families: Sequence[Family],
    answers: ApprovalDesk,
    grammars: Grammars,
) -> Router:
    """The router over ``families``: each message read with its connector's grammar,
    checked against ``acl``, confirmed when it asks first, or an answer to an approval."""
    ledgered, fleet = parts.ledgered, parts.fleeted.fleet
    ledger = ledgered.ledger
    grammar, own = grammars

    async def agent_names() -> set[str]:
        names: set[str] = {status.name for status in await fleet.ps()}
        names.update(spec.name for spec in fleet.roster())
        return names

    return Router(
        grammar=grammar,
        grammars=own,
        acl=acl,
        handlers=registry.handlers(families),
        audit=ledger.audit,
        chat=ledger.chat,
        ordering=ledgered.notifier.ordering,
        confirmations=parts.desk,
        approvals=answers,
        agents=agent_names,
    )


def open_queue(parts: FamilyParts, router: Router, handlers: Handlers, tasks: TaskCommands) -> None:
    """The spawn queue opened on ``router``; a task held for others starts, once they are
    done, as the request the register built for its asker, where they asked (``tasks``'
    launch of it); the gates a stop left, now a stage can start."""
    at, fleeted = parts.at, parts.fleeted
    queue, named = fleeted.queue, at.serving.named
    queue.open(router, named, handlers.queued)
    starts = ChatTaskStarts(at.clock, router, named, tasks.held)
    fleeted.register.held.listen(starts.start)
    if fleeted.pipelines is not None:
        fleeted.pipelines.resume()
    fleeted.fleet.subscribe(queue.on_fleet_event)
