"""``fleetwarden tasks --markdown [--out DIR] [--mission NAME]``: the task register written
as two documents, ``TASKS.md`` and ``MISSIONS.md`` (:mod:`bot.render.work.task_documents` lays
them out), for a repository's docs folder or anyone without chat; ``--json`` and ``--csv``
print it as data instead (:mod:`bot.render.work.task_exports`), for scripts and spreadsheets.

It reads the ledger where the config puts it (the SQLite file in its state dir, or its
PostgreSQL database, with the password from ``ledger_password_env``) beside a running
orchestrator, and needs none of the config's other secrets. It never makes a ledger: with
no SQLite file where the config says, it says Fleetwarden has not run with that config.
What people, agents and forge issues wrote was redacted as it was stored and passes the
redactor again; words this command cannot check are withheld, and it says so
(:mod:`bot.cli.tasks.register`): a secret the config names never reaches what it writes.

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
from collections.abc import Mapping
from pathlib import Path

from bot.cli.status.command import shown
from bot.cli.tasks.register import (
    EXIT_CONFIG,
    Read,
    TasksError,
    read_register,
)
from bot.config import Config
from bot.render.work.task_documents import (
    MISSIONS_FILE,
    TASKS_FILE,
    missions_document,
    tasks_document,
    value,
)
from bot.render.work.task_exports import register_csv, register_json

EXIT_OK = 0


def configure_parser(parser: argparse.ArgumentParser, config_help: str) -> None:
    form = parser.add_mutually_exclusive_group()
    form.add_argument(
        "--markdown",
        action="store_true",
        help=f"write {TASKS_FILE} and {MISSIONS_FILE} (the mission manifest) from the register",
    )
    form.add_argument(
        "--json", action="store_true", help="print the register as JSON: tasks and missions"
    )
    form.add_argument(
        "--csv", action="store_true", help="print the register's tasks as CSV, a row each"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --markdown, the directory to write them in, which must exist (default: "
        "the current one, unless it is in a git checkout: there, only when named, `--out .`)",
    )
    parser.add_argument(
        "--mission", metavar="NAME", help="only this mission's tasks and its sub-missions'"
    )
    parser.add_argument("--config", type=Path, help=config_help)


def main(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    """Run ``fleetwarden tasks``; the exit status."""
    data = bool(getattr(args, "json", False) or getattr(args, "csv", False))
    if not args.markdown and not data:
        print(
            "fleetwarden tasks: `fleetwarden tasks --markdown [--out DIR] [--mission NAME]` "
            f"writes the task register as {TASKS_FILE} and {MISSIONS_FILE}; `--json` or "
            "`--csv` prints it as data (in chat, `tasks` lists them)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        if data:
            if args.out is not None:
                raise TasksError(
                    "--out is for --markdown: --json and --csv print to standard output "
                    "(send it to a file: `> tasks.csv`)",
                    EXIT_CONFIG,
                )
            read = asyncio.run(read_register(config, environ, args.mission))
            sys.stdout.write(_data(read, as_json=bool(args.json)))
        else:
            out = writable_dir(default_out() if args.out is None else args.out)
            read = asyncio.run(read_register(config, environ, args.mission))
            write_whole(out, documents_of(read, args.mission))
            print(shown(f"wrote {out / TASKS_FILE} and {out / MISSIONS_FILE} from {read.where}"))
    except TasksError as exc:
        print(shown(f"fleetwarden tasks: {exc}"), file=sys.stderr)
        return exc.code
    if read.withheld:
        print(shown(f"fleetwarden tasks: {read.withheld}"), file=sys.stderr)
    return EXIT_OK


def _data(read: Read, *, as_json: bool) -> str:
    """The register ``read`` as JSON or CSV."""
    if as_json:
        return register_json(read.tasks, read.tree, read.held_tasks, read.held_missions)
    return register_csv(read.tasks, read.missions, read.held_tasks)


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


def documents_of(read: Read, mission_name: str | None) -> dict[str, str]:
    """The two documents, by file name, of the register ``read``."""
    scope = "" if mission_name is None else f"mission {value(mission_name)}"
    return {
        TASKS_FILE: tasks_document(read.tasks, read.missions, scope=scope),
        MISSIONS_FILE: missions_document(read.tasks, read.tree, only=read.only),
    }


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
