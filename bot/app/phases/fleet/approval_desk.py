"""Approvals in the app: the feed that shows requests (subscribed to the service and to the
fleet's events), and where each connector's command prefix and a run's starter come from."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from bot.app import assembly as wiring
from bot.approvals.feed import ApprovalFeed, Connectors, Starter
from bot.chat.notifier import Notifier
from bot.config import Config
from connectors.base import Connector
from fleet.approvals.service import Approvals
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.approvals import ApprovalRequest
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.ledger.stores.operators.chat import ChatStore
from fleet.notices import starter
from fleet.supervisor.interfaces import FleetView


def prefix_for(cfg: Config) -> Callable[[str], str]:
    """The command prefix shown on ``connector`` (none on the console: it needs none)."""
    own, default = wiring.prefixes(cfg), cfg.command_prefix

    def prefix(name: str) -> str:
        return "" if name == "console" else own.get(name, default)

    return prefix


def medium(
    cfg: Config, named: Callable[[str], Connector | None]
) -> Callable[[str], tuple[str, bool]]:
    """Of a connector's name, the command prefix shown there (:func:`prefix_for`) and
    whether its people can react to a message (a medium with threads; not the console;
    one not running now is taken to)."""
    prefix = prefix_for(cfg)

    def of(name: str) -> tuple[str, bool]:
        connector = named(name)
        return prefix(name), connector is None or connector.has_threads

    return of


KNOWN_STARTERS = 1024
"""How many runs' starters :func:`run_starter` keeps (the newest runs' last)."""


def run_starter(fleet: FleetView) -> Starter:
    """Who started the run a request came from, as its story records it; read once per run
    (who started it never changes), not before each of its requests is shown. A run's entry
    goes when it ends: its id may be a later run's once its agent is forgotten."""
    known: OrderedDict[int, str] = OrderedDict()

    async def ended(event: FleetEvent) -> None:
        if event.kind is EventKind.ENDED and event.run_id is not None:
            known.pop(event.run_id, None)

    fleet.subscribe(ended)

    async def find(request: ApprovalRequest) -> str | None:
        if request.run_id in known:
            return known[request.run_id]
        story = await fleet.outputs.stories.story(request.run_id)
        start = None if story is None else story.report.start
        found = None if start is None else starter(start.trigger)
        if found is not None:
            known[request.run_id] = found
            while len(known) > KNOWN_STARTERS:
                known.popitem(last=False)
        return found

    return find


def attach_feed(
    cfg: Config,
    approvals: Approvals,
    chat: ChatStore,
    audit: AuditStore,
    fleet: FleetView,
    notices: Notifier,
    connectors: Connectors,
) -> ApprovalFeed:
    """The feed, listening to ``approvals`` and to ``fleet`` (a run's end closes its asks)."""
    feed = ApprovalFeed(
        approvals,
        chat,
        audit,
        connectors,
        notices,
        prefix_for=prefix_for(cfg),
        starter=run_starter(fleet),
        ordering=notices.ordering,
    )
    approvals.subscribe(feed.on_approval)
    fleet.subscribe(feed.on_fleet_event)
    return feed
