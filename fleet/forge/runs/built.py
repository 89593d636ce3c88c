"""Forge work built whole: its publisher, the work, the desk the forge door reaches and the
watch over its runs, each handed the others it needs, made in one place for the app's forge
phase and the tests alike (:func:`build_work`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fleet.approvals.spend import SpendAsks
from fleet.forge.launcher import ForgeLauncher
from fleet.forge.model import ForgeApi
from fleet.forge.posts.provenance import ProvenanceSource
from fleet.forge.posts.publish import Publisher, Tell
from fleet.forge.posts.signed import Posts
from fleet.forge.runs.desk import TURN_WAIT, ForgeDesk
from fleet.forge.runs.watch import ForgeWatch
from fleet.forge.runs.work import ForgeWork
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.budgets import Freeze
from fleet.repos.schema import RepoEntry


@dataclass(frozen=True, slots=True)
class BuiltWork:
    """Forge work as :func:`build_work` made it: what its runs post, the work itself, the
    forge door's desk over it and the watch over its live runs."""

    publisher: Publisher
    work: ForgeWork
    desk: ForgeDesk
    watch: ForgeWatch


def build_work(
    *,
    forges: Mapping[str, ForgeEntry],
    apis: Mapping[str, ForgeApi],
    repos: Mapping[str, RepoEntry],
    launcher: ForgeLauncher,
    source: ProvenanceSource,
    redact: Callable[[str], str],
    tell: Tell | None = None,
    freezes: Callable[[], Awaitable[list[Freeze]]] | None = None,
    spend: SpendAsks | None = None,
    turn_wait: float = TURN_WAIT,
) -> BuiltWork:
    """Forge work over ``forges`` (each reached through its API in ``apis``) and ``repos``,
    its runs started through ``launcher``. ``source``: where its posts' provenance is read,
    whose ledger stores (the forge runs among them) and clock every part shares;
    ``redact``: the app's redactor; ``tell``, ``freezes``: see :class:`Publisher`;
    ``spend``: the asks at runs' caps a comment answers (``None``: metering is off);
    ``turn_wait``: how long the desk waits for an agent's turn to end."""
    forge, clock = source.records.forge, source.clock
    publisher = Publisher(
        forges=forges,
        posts=Posts(apis, source, redact),
        launcher=launcher,
        tell=tell,
        freezes=freezes,
    )
    work = ForgeWork(
        forges=forges,
        apis=apis,
        repos=repos,
        forge=forge,
        launcher=launcher,
        publisher=publisher,
        clock=clock,
        spend=spend,
    )
    desk = ForgeDesk(
        forges=forges,
        apis=apis,
        forge=forge,
        publisher=publisher,
        launcher=launcher,
        clock=clock,
        lock=work.lock,
        spawn=work.spawn,
        turn_wait=turn_wait,
    )
    watch = ForgeWatch(
        work,
        desk,
        forges=forges,
        forge=forge,
        launcher=launcher,
        publisher=publisher,
        holds=work.holds,
        starts=work.starts,
        clock=clock,
    )
    return BuiltWork(publisher, work, desk, watch)
