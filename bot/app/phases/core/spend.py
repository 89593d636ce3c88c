"""The app's spend phase: the budgets with the pacing policy (ticked once at start, so
the policy is current before any request), the book of the agents' refused egress, and —
unless the config turns metering off — the accounts and the metering proxy that holds their
credentials, with each run's cap (its refused endpoints noted in that book)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.stops import Stop
from bot.config import Config
from bot.config.checks.across import UNMETERED_BUDGETS
from bot.dashboard.pages.metrics import Write
from fleet.accounts.book import AccountBook
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.budgets.runs.caps import CappedPolicy, RunCaps
from fleet.budgets.runs.watch import RunCapWatch
from fleet.budgets.service import BudgetService
from fleet.budgets.stores import BudgetStores
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import Scope
from fleet.metering.counting.journal import DIRECTORY, UsageJournal
from fleet.metering.proxy import MeteringProxy
from fleet.notices import NoticeBoard
from fleet.sandbox.egress.refusals import RefusalBook
from fleet.timing.clock import Clock


@dataclass(frozen=True, slots=True)
class Spend:
    """What the spend phase made: the budgets, the book of refused egress (the sandboxes'
    forward proxies note theirs there too), and the accounts, each run's cap and the
    metering proxy (``None`` when metering is off)."""

    budgets: BudgetService
    refusals: RefusalBook
    accounts: AccountBook | None
    run_caps: RunCapWatch | None
    proxy: MeteringProxy | None


async def start_spend(
    at: Grounds,
    ledger: Ledger,
    notices: NoticeBoard,
    *,
    sink: Callable[[Write], Write],
) -> Spend:
    """The budgets, ticked once; then the accounts and the proxy, unless metering is off.
    ``sink`` wraps the proxy's writes to the ledger (the metrics observe them on the way).
    The fleet launches with the runs' caps; a capped run is cut on it by what the fleet
    phase has listen to them (:class:`~fleet.budgets.runs.watch.CapCutoffs`). The account
    book is made first (started after the budgets): the budgets reach an agent through the
    accounts it is on."""
    cfg, clock, stops = at.cfg, at.clock, at.stops
    accounts = None
    if cfg.metering is not None:
        accounts = wiring.account_book(
            cfg, ledger=ledger, notices=notices, clock=clock, environ=at.environ
        )
    budgets = await start_budgets(cfg, ledger, notices, clock, served_by(ledger, accounts))
    stops.add(Stop.BUDGETS, budgets.drain)
    refusals = wiring.refusal_book(ledger, notices)  # started with the sandboxes
    if accounts is None:
        return Spend(budgets, refusals, None, None, None)
    run_caps = RunCapWatch(RunCaps(), ledger.agents, ledger.runs, notices, clock)
    proxy = await start_metering(at, ledger, budgets, accounts, run_caps, refusals, sink=sink)
    return Spend(budgets, refusals, accounts, run_caps, proxy)


def served_by(ledger: Ledger, accounts: AccountBook | None) -> Callable[[str], list[Scope]]:
    """The host an agent runs on, and the account and provider scopes its requests go
    through now."""

    def scopes(agent: str) -> list[Scope]:
        pairs = accounts.accounts_of(agent) if accounts is not None else []
        return [
            Scope("host", ledger.agents.host_of(agent)),
            *(Scope("account", a) for _, a in pairs),
            *(Scope("provider", p) for p, _ in pairs),
        ]

    return scopes


async def start_budgets(
    cfg: Config,
    ledger: Ledger,
    notices: NoticeBoard,
    clock: Clock,
    via: Callable[[str], list[Scope]],
) -> BudgetService:
    """The budgets and the policy the proxy consults, kept current by the pacing tick."""
    budgets = BudgetService(
        stores=BudgetStores(ledger.budgets, ledger.agents, ledger.metering, ledger.accounts),
        budgets=cfg.budgets,
        groups=cfg.groups,
        timezone=cfg.timezone,
        clock=clock,
        policy=PacingPolicy(cfg.groups, tz=cfg.timezone),
        notices=notices,
        via=via,
        unenforceable=UNMETERED_BUDGETS if cfg.metering is None else None,
    )
    await budgets.start()
    return budgets


async def start_metering(
    at: Grounds,
    ledger: Ledger,
    budgets: BudgetService,
    accounts: AccountBook,
    run_caps: RunCapWatch,
    refusals: RefusalBook,
    *,
    sink: Callable[[Write], Write],
) -> MeteringProxy:
    """The accounts started, the usage journal replayed, the runs' caps restored, and the
    proxy that holds the accounts' credentials; each to be stopped from when it is made.
    The proxy consults ``budgets``' policy, and brings down what live runs' quotes hold as
    their requests settle; ``refusals``: where it notes the endpoints it refused an agent."""
    cfg, clock, stops = at.cfg, at.clock, at.stops
    await accounts.start()
    stops.add(Stop.ACCOUNTS, accounts.stop)
    journal = UsageJournal(cfg.state_dir / DIRECTORY, ledger.metering.record_metering_once, clock)
    await journal.replay()  # usage the last shutdown kept counts towards the caps restored
    stops.add(Stop.RUN_CAPS, run_caps.drain)
    await run_caps.restore()  # the runs still going are capped before any request is served
    proxy = MeteringProxy(
        cfg.state_dir,
        routes=cfg.providers,
        sink=sink(ledger.metering.record_metering),
        settings=cfg.metering,
        prices=cfg.prices,
        policy=CappedPolicy(budgets.policy, run_caps.caps, budgets.holds.spend),
        clock=clock,
        accounts=accounts,
        journal=journal,
        on_refused=refusals.proxy_refused,
    )
    await proxy.start()
    stops.add(Stop.METERING, proxy.stop)
    return proxy
