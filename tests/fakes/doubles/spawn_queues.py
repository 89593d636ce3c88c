"""A spawn queue with the admission in front of it, built from its caps and defaults as the app
builds one from its config (:func:`bot.app.phases.fleet.admission.admission_stages`)."""

from __future__ import annotations

from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from fleet.accounts.book import AccountBook
from fleet.budgets.model import Groups
from fleet.caps import Caps
from fleet.ledger import Ledger
from fleet.notices import NoticeBoard
from fleet.supervisor.admission.admit import SpawnBudgets
from fleet.supervisor.admission.queue import LaunchQueue
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.interfaces import AgentControl
from fleet.timing.clock import Clock
from tests.fakes.doubles.launches import an_admission


def a_spawn_queue(
    *,
    ledger: Ledger,
    fleet: AgentControl,
    caps: Caps,
    groups: Groups,
    accounts: AccountBook | None,
    clock: Clock,
    default_runtime: str,
    default_account: str | None = None,
    host: str | None = None,
    notices: NoticeBoard | None = None,
    budgets: SpawnBudgets | None = None,
) -> SpawnQueue:
    slots = Slots(
        agents=ledger.agents,
        spawn_queue=ledger.spawn_queue,
        fleet=fleet,
        caps=caps,
        groups=groups,
        accounts=accounts,
        default_runtime=default_runtime,
        default_account=default_account,
        host=host,
    )
    admission = an_admission(fleet, slots=slots, budgets=budgets)
    launches = LaunchQueue(store=ledger.spawn_queue, admission=admission, clock=clock)
    return SpawnQueue(launches=launches, forge=ledger.forge, clock=clock, notices=notices)
