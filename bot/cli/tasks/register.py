"""The register as ``fleetwarden tasks`` may show it, read from the ledger the config names
beside a running orchestrator, in whatever form it is written (:mod:`bot.cli.tasks.command`).

What people, agents and forge issues wrote (titles, bodies, reasons) was redacted as it was
stored, by the running Fleetwarden's redactor, which knows every secret the fleet holds;
it passes this command's redactor again, as in chat and on the dashboard. A task or
mission stored before that (its row not marked ``redacted``), or before the config named a
secret it names now (its mark does not name that secret), is redacted here only when this
command knows the value of each secret the config names that its mark does not; else its
words are withheld
(:data:`WITHHELD`) and :attr:`Read.withheld` says which, and how to write them: this command
never writes words it could not check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from bot.app.assembly import ledger_location, redactor, unset_secrets
from bot.commands.parsing.grammar import show, suggest
from bot.config import CONFIG_ENV_VAR, Config
from fleet.errors import LedgerError
from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.ledger.records.tasks import MissionRecord, TaskRecord
from fleet.ledger.stores.work.marks import covers
from fleet.tasks.views import TaskView, views
from fleet.timing.clock import SystemClock

EXIT_FAILURE, EXIT_CONFIG = 1, 2
EVERY_TASK = 1_000_000
"""More tasks than any register holds: every one is written."""
FEW = 8  # names listed in one line
WITHHELD = "[withheld: stored before it was redacted]"
"""What stands for a task's or a mission's words this command cannot check."""


class TasksError(Exception):
    """Why nothing was written: said in one line, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Read:
    """The register as it may be shown: ``tasks`` with what their runs used; every mission,
    and ``tree`` (mission ``only`` and those under it, or every mission); the ids of the
    tasks and missions whose words were withheld, and why in words (empty: none was);
    ``where``: which register was read, in words."""

    tasks: list[TaskView]
    missions: list[MissionRecord]
    tree: list[MissionRecord]
    only: int | None
    held_tasks: frozenset[int]
    held_missions: frozenset[int]
    withheld: str
    where: str


async def read_register(
    config: Config, environ: Mapping[str, str], mission_name: str | None
) -> Read:
    """The register the ledger ``config`` names holds (of mission ``mission_name`` and its
    sub-missions, when given), redacted or withheld; :class:`TasksError` when it cannot."""
    location = _location(config, environ)
    try:
        ledger = await Ledger.connect(location, SystemClock())
    except LedgerError as exc:
        raise TasksError(str(exc)) from None
    try:
        missions = await ledger.missions.missions()
        only: int | None = None
        tree = missions
        if mission_name is not None:
            found = await ledger.missions.mission_named(mission_name)
            if found is None:
                raise TasksError(_no_mission(mission_name, [m.name for m in missions]), 2)
            only = found.id
            tree = await ledger.missions.tree(found.id)
        chosen = None if only is None else [mission.id for mission in tree]
        tasks = await ledger.tasks.tasks(missions=chosen, limit=EVERY_TASK)
        actuals = await ledger.actuals.actuals([task.id for task in tasks])
    finally:
        await ledger.close()
    redact = redactor(config, environ).redact  # a secret in a prompt or an issue stays out
    unknown = unset_secrets(config, environ)
    held_tasks = frozenset(t.id for t in tasks if not covers(t.redacted, t.redacted_for, unknown))
    held_missions = frozenset(
        m.id for m in missions if m.title and not covers(m.redacted, m.redacted_for, unknown)
    )
    return Read(
        tasks=views([_redacted(t, redact, t.id in held_tasks) for t in tasks], actuals),
        missions=[_mission(m, redact, m.id in held_missions) for m in missions],
        tree=[_mission(m, redact, m.id in held_missions) for m in tree],
        only=only,
        held_tasks=held_tasks,
        held_missions=held_missions,
        withheld=_withheld_words(
            sorted(held_tasks), [m.name for m in missions if m.id in held_missions], unknown
        ),
        where=register_words(config, location),
    )


def _location(config: Config, environ: Mapping[str, str]) -> LedgerLocation:
    """Where the ledger is; :class:`TasksError` when there is none there to read."""
    try:
        location = ledger_location(config, environ)
    except LedgerError as exc:
        raise TasksError(str(exc), EXIT_CONFIG) from None
    if location.url is None and not location.path.is_file() and config.source is None:
        raise TasksError(
            f"no ledger at {location.path}: no --config was given (nor {CONFIG_ENV_VAR}), so "
            "the default state dir was read: `fleetwarden tasks --markdown --config PATH` "
            "names the config Fleetwarden runs with"
        )
    if location.url is None and not location.path.is_file():
        raise TasksError(
            f"no ledger at {location.path}: Fleetwarden has not run with this config yet "
            "(or --config names another config than the one it runs with)"
        )
    return location


def register_words(config: Config, location: LedgerLocation) -> str:
    """``the register in PATH (the config FILE)``: which register was read, and why there —
    saying so when no config was given and the default state dir's was read."""
    where = f"the register in {location}"
    if config.source is None:
        return (
            f"{where} (no --config and no {CONFIG_ENV_VAR}: the default state dir's; "
            "give --config to read another)"
        )
    return f"{where} (the config {config.source})"


def _redacted(task: TaskRecord, redact: Callable[[str], str], withheld: bool) -> TaskRecord:
    """``task`` with every text a person, an agent or an issue wrote redacted (its name
    too: it was made from its title), or, when ``withheld``, in place of its title
    :data:`WITHHELD` and nothing of the rest, nor its name."""
    if withheld:
        task = replace(task, name="", title=WITHHELD, body="", why="", source_ref="", asked_by="")
    return replace(
        task,
        name=redact(task.name),
        title=redact(task.title),
        body=redact(task.body),
        why=redact(task.why),
        source_ref=redact(task.source_ref),
        asked_by=redact(task.asked_by),
        branch=None if task.branch is None else redact(task.branch),
        pull_url=None if task.pull_url is None else redact(task.pull_url),
    )


def _mission(mission: MissionRecord, redact: Callable[[str], str], withheld: bool) -> MissionRecord:
    """``mission`` with its title redacted, or withheld."""
    return replace(mission, title=WITHHELD if withheld else redact(mission.title))


def _withheld_words(tasks: list[int], missions: list[str], unknown: list[str]) -> str:
    """``the words of tasks #3, #4 and of mission auth are written as …``, why and the
    fix; empty when nothing was withheld."""
    named = []
    if tasks:
        ids = ", ".join(f"#{task}" for task in tasks[:FEW]) + (", …" if len(tasks) > FEW else "")
        named.append(f"task{'s' if len(tasks) > 1 else ''} {ids}")
    if missions:
        names = ", ".join(missions[:FEW]) + (", …" if len(missions) > FEW else "")
        named.append(f"mission{'s' if len(missions) > 1 else ''} {names}")
    if not named:
        return ""
    listed = ", ".join(unknown[:FEW]) + (", …" if len(unknown) > FEW else "")
    return (
        f"the words of {' and of '.join(named)} are written as {WITHHELD}: they were stored "
        "before Fleetwarden redacted what it stores, or before the config named a secret it "
        "names now, and this command cannot redact them "
        f"without the config's secret variables ({listed} not set here); start Fleetwarden "
        "once with this config (it redacts them at its start), or run this with those "
        "variables set"
    )


def _no_mission(name: str, names: list[str]) -> str:
    """Why ``--mission name`` cannot be written, and the names that could."""
    said = f"--mission {show(name)}: no mission is called so"
    if (guess := suggest(name, names)) is not None:
        return f"{said} — did you mean {show(guess)}?"
    if not names:
        return f"{said}: the register has no missions yet (leave --mission out for every task)"
    listed = ", ".join(show(n) for n in names[:FEW]) + (", …" if len(names) > FEW else "")
    return f"{said}: the register has {listed}"
