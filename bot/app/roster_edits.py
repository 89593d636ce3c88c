"""``roster add|set|remove``: the roster changed from chat, durably — in the file the
agents live in (the roster file ``agents:`` names, else the config file itself).

An edit is made on the file's text with its comments and order kept
(:mod:`bot.config.roster.edit`), then checked exactly as ``roster reload`` checks a file
(:func:`bot.app.reload.checked`, over the new text before it is written): any problem and
nothing is written. A problem on a line the edit wrote is said at the command's words
(``roster add odd: runtime: …``), one on a line it kept at the file's own line
(:mod:`bot.config.roster.located`): a refusal never cites a line the file does not have.
Only then is the file replaced atomically (a temporary file beside it, synced, renamed
over it, its mode kept) and reloaded by the very path ``roster reload`` takes; were that
reload refused, the file is put back as it was.

A file edited by hand since Fleetwarden last read it is never overwritten: the keeper
remembers a digest of each file at the start and at every reload, and refuses an edit
when the disk holds something else, saying to ``roster reload`` first — looked at again
right before the file is replaced and before it is put back. An edit holds an exclusive
``flock`` on a lock file beside the roster file from the read to the replace, so two
edits never interleave. A roster file that is a link, or not a regular file, is never
replaced: the edit is refused, saying what to edit instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import yaml
from pydantic_core import PydanticCustomError

from bot.app.reload import NOT_RELOADED, checked
from bot.commands.errors import CommandError
from bot.config import Config, Offered
from bot.config.roster.edit import (
    NOT_CHANGED,
    RemoveAgent,
    RosterEdit,
    RosterEditError,
    edit_text,
)
from bot.config.roster.located import relocated
from fleet.private_files import replace_whole
from fleet.redaction.redactor import Redactor
from fleet.repos.service import Repos
from fleet.schema import SchemaContext, expand_path
from fleet.supervisor.fleet import RosterDiff
from fleet.supervisor.interfaces import AgentControl

log = logging.getLogger(__name__)

CHANGED_ON_DISK = (
    "{path} changed on disk since Fleetwarden last read it: run `roster reload` first (it "
    "applies the edit made there, or says what is wrong with it), then edit again"
)


class RosterKeeper:
    """The files the roster is read from, as Fleetwarden last read them, and the edits
    made to them from chat (one at a time)."""

    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        offered: Offered,
        fleet: AgentControl,
        reload: Callable[[], Awaitable[RosterDiff]],
        repos: Repos | None,
        read: Mapping[Path, str],
        redact: Callable[[str], str] | None = None,
    ) -> None:
        """``config``: the one Fleetwarden started with (its ``source`` is the file);
        ``reload``: what ``roster reload`` runs; ``read``: the files' digests when
        ``config`` was read (:func:`digests`); ``redact``: the app's redactor, through
        which every refusal passes (default: the credential shapes alone)."""
        self._config = config
        self._environ = environ
        self._offered = offered
        self._fleet = fleet
        self._reload = reload
        self._repos = repos
        self._digests = dict(read)
        self._lock = asyncio.Lock()
        self._redact = redact if redact is not None else Redactor().redact

    def remember(self) -> None:
        """Take the files as they are on disk now as the ones Fleetwarden runs on (at the
        start, and after each reload)."""
        self._digests = digests(self._config, self._environ)

    async def edit(self, edit: RosterEdit) -> RosterDiff:
        """Make ``edit`` in the file, check it, write it and reload it; or change nothing
        and say why (a :class:`CommandError`)."""
        async with self._lock:
            try:
                return await self._edit(edit)
            except CommandError as exc:  # a value typed in chat may be echoed: no secret out
                raise CommandError(self._redact(str(exc))) from None

    async def _edit(self, edit: RosterEdit) -> RosterDiff:
        files = await asyncio.to_thread(roster_files, self._config, self._environ)
        target = files[-1]
        await asyncio.to_thread(_refuse_unusual, target)
        lock = await asyncio.to_thread(_locked, target)
        with lock:
            return await self._edit_locked(edit, files, target)

    async def _edit_locked(self, edit: RosterEdit, files: list[Path], target: Path) -> RosterDiff:
        try:  # the bytes edited are the bytes checked against the digest
            old = await asyncio.to_thread(target.read_bytes)
        except OSError as exc:
            raise CommandError(f"{NOT_CHANGED}: cannot read {target}: {exc}") from None
        self._refuse_changed(files, target, old)
        if isinstance(edit, RemoveAgent):
            await self._refuse_running(edit.name)
        try:
            was = old.decode("utf-8")
            new = edit_text(was, edit, under_agents=len(files) == 1)
        except RosterEditError as exc:
            raise CommandError(f"{NOT_CHANGED}: {exc}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{NOT_CHANGED}: {target} is not UTF-8 text") from None
        # Checked as a reload checks the file, over the new text, before anything is written;
        # a problem on a line only the new text has is said at the command's words.
        try:
            await checked(
                self._config,
                self._environ,
                self._offered,
                self._repos,
                texts={target: new},
                said=lambda problem: relocated(problem, target, was, new, edit.words),
            )
        except CommandError as exc:  # said as an edit's refusal, the problems as a reload's
            said = str(exc).removeprefix(NOT_RELOADED)
            raise CommandError(f"{NOT_CHANGED}{said}") from None
        # The check took a while: a hand edit saved meanwhile is not overwritten.
        self._refuse_changed(files, target, await asyncio.to_thread(_read, target))
        await asyncio.to_thread(_refuse_unusual, target)
        try:
            await asyncio.to_thread(write_atomically, target, new.encode("utf-8"))
        except OSError as exc:  # the old file stands: the write replaces it whole or not at all
            raise CommandError(f"{NOT_CHANGED}: cannot write {target}: {exc}") from None
        log.info("roster edited from chat: %s written", target)
        try:
            diff = await self._reload()
        except CommandError as exc:
            # A reload refused what the check passed: put it back — unless the file was
            # edited by hand since it was written, which is then left as it is.
            if await asyncio.to_thread(_read, target) != new.encode("utf-8"):
                raise CommandError(f"{exc}; " + CHANGED_ON_DISK.format(path=target)) from None
            await asyncio.to_thread(write_atomically, target, old)
            raise
        self.remember()  # the file as written and reloaded
        return diff

    def _refuse_changed(self, files: list[Path], target: Path, found_target: bytes | None) -> None:
        """Refuse unless every file is as Fleetwarden last read it (``found_target``: the
        target's bytes just read; ``None``: unreadable)."""
        for path in files:
            if path == target:
                found = "" if found_target is None else hashlib.sha256(found_target).hexdigest()
            else:
                found = _digest(path)
            if found != self._digests.get(path):
                raise CommandError(f"{NOT_CHANGED}: " + CHANGED_ON_DISK.format(path=path))

    async def _refuse_running(self, name: str) -> None:
        for status in await self._fleet.ps():
            if status.name == name and status.state.is_live:
                raise CommandError(
                    f"{NOT_CHANGED}: {name!r} is {status.state.value}: "
                    f"`stop {name}` first, then `roster remove {name}`"
                )


def roster_files(config: Config, environ: Mapping[str, str]) -> list[Path]:
    """The config file, and the roster file when ``agents:`` names one (last: the file
    the agents live in)."""
    source = config.source
    if source is None:
        raise CommandError(
            "there is no config file to write the roster to: Fleetwarden runs on its "
            "defaults; start it with `--config FILE`"
        )
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CommandError(f"{NOT_CHANGED}: cannot read {source}: {exc}") from None
    written = data.get("agents") if isinstance(data, dict) else None
    if not isinstance(written, str):
        return [source]
    context = SchemaContext(base_dir=source.parent, home=environ.get("HOME"))
    try:
        return [source, expand_path(Path(written), context)]
    except PydanticCustomError as exc:
        raise CommandError(f"{NOT_CHANGED}: agents: {exc.message()}") from None


def digests(config: Config, environ: Mapping[str, str]) -> dict[Path, str]:
    """The digest of each file the roster is read from, as it is on disk now (none
    without a config file)."""
    if config.source is None:
        return {}
    try:
        return {path: _digest(path) for path in roster_files(config, environ)}
    except CommandError:  # unreadable now: every later edit is refused until a reload
        return {}


def _read(path: Path) -> bytes | None:
    """The file's bytes (``None`` when it cannot be read)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _refuse_unusual(path: Path) -> None:
    """Refuse a roster file that is a link or not a regular file: replacing it would put a
    plain file where the link was, or fail half way."""
    try:
        found = path.lstat()
    except OSError as exc:
        raise CommandError(f"{NOT_CHANGED}: cannot read {path}: {exc}") from None
    if stat.S_ISLNK(found.st_mode):
        real = path.resolve()
        raise CommandError(
            f"{NOT_CHANGED}: {path.name} is a link to {real}: edit it by hand, or point "
            f"`agents:` at {real}"
        )
    if not stat.S_ISREG(found.st_mode):
        raise CommandError(
            f"{NOT_CHANGED}: {path} is not a regular file: edit it by hand, or point "
            "`agents:` at a file"
        )


def _locked(path: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive ``flock`` on the lock file beside ``path`` (``.NAME.lock``), held
    until the context ends: two edits of one file never interleave."""
    lock_path = path.parent / f".{path.name}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise CommandError(f"{NOT_CHANGED}: cannot lock {lock_path}: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        os.close(fd)
        raise CommandError(f"{NOT_CHANGED}: cannot lock {lock_path}: {exc}") from None
    return _held(fd)


@contextlib.contextmanager
def _held(fd: int) -> Iterator[None]:
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _digest(path: Path) -> str:
    """The SHA-256 of the file's bytes (empty when it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once, keeping its mode (a temporary file beside it,
    synced, renamed over it; then the directory synced): a reader sees the old file or the
    new one, never part of either, and a crash leaves one of them."""
    replace_whole(path, data, path.stat().st_mode & 0o7777)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
