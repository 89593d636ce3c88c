"""``fleetwarden tasks --markdown [--out DIR] [--mission NAME]``: the task register written
as two documents, ``TASKS.md`` and ``MISSIONS.md`` (:mod:`bot.render.task_documents` lays
them out), for a repository's docs folder or anyone without chat.

It reads the ledger where the config puts it (the SQLite file in its state dir, or its
PostgreSQL database, with the password from ``ledger_password_env``) beside a running
orchestrator, and needs none of the config's other secrets. It never makes a ledger: with
no SQLite file where the config says, it says Fleetwarden has not run with that config.
What people, agents and forge issues wrote (titles, bodies, reasons) was redacted as it was
stored, by the running Fleetwarden's redactor, which knows every secret the fleet holds; it
passes this command's redactor again, as in chat and on the dashboard. A task or mission
stored before that (its row not marked ``redacted``) is redacted here only when this
command knows every secret the config names; else its words are withheld
(:data:`WITHHELD`) and the answer says which and how to write them: this command never
writes words it could not check.

The answer names the register it read (and says so when no config was given and the
default state dir's was). Without ``--out`` the documents go in the current directory,
unless it is in a git checkout: there only when named (``--out .``), so a run from a clone
never leaves files its next commit would take.

Each document is written whole or not at all: both go to temporary files in ``DIR`` first,
then each replaces its file in one ``rename``. A bad ``--out`` (missing, a file, not
writable) or an unknown ``--mission`` is said with its fix before anything is read or
written."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from bot.app.assembly import ledger_location, redactor
from bot.cli.status import shown
from bot.commands.grammar import show, suggest
from bot.config import CONFIG_ENV_VAR, Config
from bot.render.task_documents import (
    MISSIONS_FILE,
    TASKS_FILE,
    missions_document,
    tasks_document,
    value,
)
from fleet.clock import SystemClock
from fleet.errors import LedgerError
from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.ledger.records.tasks import MissionRecord, TaskRecord
from fleet.tasks.views import views

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
EVERY_TASK = 1_000_000
"""More tasks than any register holds: the documents list them all."""
_FEW = 8  # mission names listed when an unknown one is close to none
WITHHELD = "[withheld: stored before it was redacted]"
"""What stands for a task's or a mission's words this command cannot check."""


def configure_parser(parser: argparse.ArgumentParser, config_help: str) -> None:
    parser.add_argument(
        "--markdown",
        action="store_true",
        help=f"write {TASKS_FILE} and {MISSIONS_FILE} (the mission manifest) from the register",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="the directory to write them in, which must exist (default: the current one, "
        "unless it is in a git checkout: there, only when named, `--out .`)",
    )
    parser.add_argument(
        "--mission", metavar="NAME", help="only this mission's tasks and its sub-missions'"
    )
    parser.add_argument("--config", type=Path, help=config_help)


class TasksError(Exception):
    """Why the documents were not written: said in one line, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def main(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    """Run ``fleetwarden tasks``; the exit status."""
    if not args.markdown:
        print(
            "fleetwarden tasks: `fleetwarden tasks --markdown [--out DIR] [--mission NAME]` "
            f"writes the task register as {TASKS_FILE} and {MISSIONS_FILE}; it is the only "
            "mode so far (in chat, `tasks` lists them)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        out = writable_dir(default_out() if args.out is None else args.out)
        documents, read, withheld = asyncio.run(_documents(config, environ, args.mission))
        write_whole(out, documents)
    except TasksError as exc:
        print(shown(f"fleetwarden tasks: {exc}"), file=sys.stderr)
        return exc.code
    print(shown(f"wrote {out / TASKS_FILE} and {out / MISSIONS_FILE} from {read}"))
    if withheld:
        print(shown(f"fleetwarden tasks: {withheld}"), file=sys.stderr)
    return EXIT_OK


def default_out(here: Path | None = None) -> Path:
    """Where the documents go when no ``--out`` is given: the current directory, unless it
    is in a git checkout — files appearing in a checkout nobody named would be committed by
    the next ``git add -A`` — then :class:`TasksError` with the fix."""
    cwd = Path.cwd() if here is None else here
    top = git_checkout(cwd)
    if top is not None:
        raise TasksError(
            f"the current directory {cwd} is in the git checkout {top}, and the documents "
            "are written into a checkout only when it is named: `--out DIR` says where "
            "(`--out .` writes here)",
            EXIT_CONFIG,
        )
    return Path(".")


def git_checkout(path: Path) -> Path | None:
    """The top of the git checkout ``path`` is in (a directory holding ``.git``), if any."""
    try:
        resolved = path.resolve()
    except OSError:
        return None
    for folder in (resolved, *resolved.parents):
        if (folder / ".git").exists():
            return folder
    return None


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


def writable_dir(out: Path) -> Path:
    """``out`` if the documents can be written there; :class:`TasksError` with the fix."""
    if not out.exists():
        raise TasksError(
            f"--out {out}: no such directory; make it first (mkdir -p {out}) or name one "
            "that exists",
            EXIT_CONFIG,
        )
    if not out.is_dir():
        raise TasksError(
            f"--out {out} is a file, not a directory: name the directory {TASKS_FILE} and "
            f"{MISSIONS_FILE} go in",
            EXIT_CONFIG,
        )
    if not os.access(out, os.W_OK | os.X_OK):
        raise TasksError(
            f"--out {out}: this user may not write there; name a directory it may write "
            "to, or run as the directory's owner",
            EXIT_CONFIG,
        )
    return out


async def _documents(
    config: Config, environ: Mapping[str, str], mission_name: str | None
) -> tuple[dict[str, str], str, str]:
    """The two documents, by file name, from the ledger ``config`` names; which register
    that was, in words; and what was withheld, in words (empty: nothing)."""
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
    tasks = [_redacted(task, redact, unknown) for task in tasks]
    missions = [_mission(m, redact, unknown) for m in missions]
    tree = [_mission(m, redact, unknown) for m in tree]
    found_views = views(tasks, actuals)  # what their runs used, as every surface says
    scope = "" if mission_name is None else f"mission {value(mission_name)}"
    documents = {
        TASKS_FILE: tasks_document(found_views, missions, scope=scope),
        MISSIONS_FILE: missions_document(found_views, tree, only=only),
    }
    held = withheld_words(
        [t for t in tasks if t.title == WITHHELD], [m for m in missions if m.title == WITHHELD]
    )
    return documents, register_words(config, location), held and held + _fix(unknown)


def unset_secrets(config: Config, environ: Mapping[str, str]) -> list[str]:
    """The variables the config names as holding a secret that are not set here: a text
    stored unredacted may hold one of their values, which this command cannot see."""
    return sorted(name for name in config.secret_env_names() if not environ.get(name))


def _redacted(task: TaskRecord, redact: Callable[[str], str], unknown: list[str]) -> TaskRecord:
    """``task`` with every text a person, an agent or an issue wrote redacted; withheld
    when it was stored unredacted and a secret the config names is ``unknown`` here."""
    if not task.redacted and unknown:
        task = replace(task, title=WITHHELD, body="", why="", source_ref="", asked_by="")
    return replace(
        task,
        title=redact(task.title),
        body=redact(task.body),
        why=redact(task.why),
        source_ref=redact(task.source_ref),
        asked_by=redact(task.asked_by),
        branch=None if task.branch is None else redact(task.branch),
        pull_url=None if task.pull_url is None else redact(task.pull_url),
    )


def _mission(
    mission: MissionRecord, redact: Callable[[str], str], unknown: list[str]
) -> MissionRecord:
    """``mission`` with its title redacted, or withheld as a task's words are."""
    withheld = bool(not mission.redacted and unknown and mission.title)
    return replace(mission, title=WITHHELD if withheld else redact(mission.title))


def withheld_words(tasks: list[TaskRecord], missions: list[MissionRecord]) -> str:
    """``the words of tasks #3, #4 and of mission auth were withheld``, or empty."""
    named = []
    if tasks:
        ids = ", ".join(f"#{task.id}" for task in tasks[:_FEW]) + (", …" * (len(tasks) > _FEW))
        named.append(f"task{'s' if len(tasks) > 1 else ''} {ids}")
    if missions:
        names = ", ".join(m.name for m in missions[:_FEW]) + (", …" * (len(missions) > _FEW))
        named.append(f"mission{'s' if len(missions) > 1 else ''} {names}")
    if not named:
        return ""
    return (
        f"the words of {' and of '.join(named)} are written as {WITHHELD}: they were stored "
        "before Fleetwarden redacted what it stores, "
    )


def _fix(unknown: list[str]) -> str:
    listed = ", ".join(unknown[:_FEW]) + (", …" if len(unknown) > _FEW else "")
    return (
        f"and this command cannot redact them without the config's secret variables "
        f"({listed} not set here); start Fleetwarden once with this config (it redacts "
        "them at its start), or run this with those variables set"
    )


def _no_mission(name: str, names: list[str]) -> str:
    """Why ``--mission name`` cannot be written, and the names that could."""
    said = f"--mission {show(name)}: no mission is called so"
    if (guess := suggest(name, names)) is not None:
        return f"{said} — did you mean {show(guess)}?"
    if not names:
        return f"{said}: the register has no missions yet (leave --mission out for every task)"
    listed = ", ".join(show(n) for n in names[:_FEW]) + (", …" if len(names) > _FEW else "")
    return f"{said}: the register has {listed}"


def write_whole(out: Path, documents: Mapping[str, str]) -> None:
    """Write each of ``documents`` (text by file name) in ``out``, each whole or not at all:
    all to temporary files first, then each renamed over its file. Their mode is what this
    user's umask gives a new file."""
    mode = _file_mode()
    written: dict[str, str] = {}
    try:
        for name, text in documents.items():
            fd, temporary = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".tmp")
            written[name] = temporary
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, mode)
        for name, temporary in written.items():
            os.replace(temporary, out / name)
    except OSError as exc:
        raise TasksError(f"cannot write in {out}: {exc.strerror or exc}") from None
    finally:
        for temporary in written.values():
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _file_mode() -> int:
    """The mode a new file gets under this process's umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
