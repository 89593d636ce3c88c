"""The app's spend phases: the budgets with the pacing policy (ticked once at start, so
the policy is current before any request), and — unless the config turns metering off —
the accounts and the metering proxy that holds their credentials, with each run's cap."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.app import assembly as wiring
from bot.config import Config
from bot.config.load import UNMETERED_BUDGETS
from bot.dashboard.metrics import Write
from fleet.accounts.book import AccountBook
from fleet.budgets.model import Scope
from fleet.budgets.policy import PacingPolicy
from fleet.budgets.run_caps import CappedPolicy, RunCaps
from fleet.budgets.run_watch import RunCapWatch
from fleet.budgets.service import BudgetService
from fleet.clock import Clock
from fleet.ledger import Ledger
from fleet.metering.journal import DIRECTORY, UsageJournal
from fleet.metering.proxy import MeteringProxy
from fleet.notices import NoticeBoard


async def start_budgets(
    cfg: Config,
    ledger: Ledger,
    notices: NoticeBoard,
    clock: Clock,
    via: Callable[[str], list[Scope]],
) -> BudgetService:
    """The budgets and the policy the proxy consults, kept current by the pacing tick."""
    budgets = BudgetService(
        ledger=ledger,
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


@dataclass(frozen=True, slots=True)
class Metering:
    """What the metering phase started."""

    accounts: AccountBook
    run_caps: RunCapWatch
    proxy: MeteringProxy


async def start_metering(
    cfg: Config,
    ledger: Ledger,
    policy: PacingPolicy,
    notices: NoticeBoard,
    clock: Clock,
    environ: Mapping[str, str],
    sink: Callable[[Write], Write],
) -> Metering | None:
    """The accounts and the proxy (``None`` when metering is off). ``sink`` wraps the
    proxy's writes to the ledger (the metrics observe them on the way)."""
    if cfg.metering is None:
        return None
    accounts = wiring.account_book(
        cfg, ledger=ledger, notices=notices, clock=clock, environ=environ
    )
    await accounts.start()
    journal = UsageJournal(cfg.state_dir / DIRECTORY, ledger.record_metering_once, clock)
    await journal.replay()  # usage the last shutdown kept counts towards the caps restored
    run_caps = RunCapWatch(RunCaps(), ledger, notices, clock)
    await run_caps.restore()  # the runs still going are capped before any request is served
    proxy = MeteringProxy(
        cfg.state_dir,
        routes=cfg.providers,
        sink=sink(ledger.record_metering),
        settings=cfg.metering,
        prices=cfg.prices,
        policy=CappedPolicy(policy, run_caps.caps),
        clock=clock,
        accounts=accounts,
        journal=journal,
    )
    await proxy.start()
    return Metering(accounts, run_caps, proxy)
