"""``roster add|set|remove``: the roster changed from chat, durably — in the file the
agents live in (the roster file ``agents:`` names, else the config file itself).

An edit is made on the file's text with its comments and order kept
(:mod:`bot.config.roster_edit`), then checked exactly as ``roster reload`` checks a file
(:func:`bot.app.reload.checked`, over the new text before it is written): any problem and
nothing is written. Only then is the file replaced atomically (a temporary file beside it,
synced, renamed over it, its mode kept) and reloaded by the very path ``roster reload``
takes; were that reload refused, the file is put back as it was.

A file edited by hand since Fleetwarden last read it is never overwritten: the keeper
remembers a digest of each file at the start and at every reload, and refuses an edit
when the disk holds something else, saying to ``roster reload`` first.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import yaml
from pydantic_core import PydanticCustomError

from bot.app.reload import NOT_RELOADED, checked
from bot.commands.errors import CommandError
from bot.config import Config
from bot.config.roster_edit import RemoveAgent, RosterEdit, RosterEditError, edit_text
from fleet.private_files import replace_whole
from fleet.repos.service import Repos
from fleet.schema import SchemaContext, expand_path
from fleet.supervisor.fleet import RosterDiff
from fleet.supervisor.interfaces import AgentControl

log = logging.getLogger(__name__)

NOT_CHANGED = "the roster was not changed; nothing was written"
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
        runtimes: tuple[str, ...],
        backends: tuple[str, ...],
        fleet: AgentControl,
        reload: Callable[[], Awaitable[RosterDiff]],
        repos: Repos | None,
        read: Mapping[Path, str],
    ) -> None:
        """``config``: the one Fleetwarden started with (its ``source`` is the file);
        ``reload``: what ``roster reload`` runs; ``read``: the files' digests when
        ``config`` was read (:func:`digests`)."""
        self._config = config
        self._environ = environ
        self._runtimes = runtimes
        self._backends = backends
        self._fleet = fleet
        self._reload = reload
        self._repos = repos
        self._digests = dict(read)
        self._lock = asyncio.Lock()

    def remember(self) -> None:
        """Take the files as they are on disk now as the ones Fleetwarden runs on (at the
        start, and after each reload)."""
        self._digests = digests(self._config, self._environ)

    async def edit(self, edit: RosterEdit) -> RosterDiff:
        """Make ``edit`` in the file, check it, write it and reload it; or change nothing
        and say why (a :class:`CommandError`)."""
        async with self._lock:
            return await self._edit(edit)

    async def _edit(self, edit: RosterEdit) -> RosterDiff:
        files = await asyncio.to_thread(roster_files, self._config, self._environ)
        target = files[-1]
        try:  # the bytes edited are the bytes checked against the digest
            old = await asyncio.to_thread(target.read_bytes)
        except OSError as exc:
            raise CommandError(f"{NOT_CHANGED}: cannot read {target}: {exc}") from None
        for path in files:
            found = hashlib.sha256(old).hexdigest() if path == target else _digest(path)
            if found != self._digests.get(path):
                raise CommandError(f"{NOT_CHANGED}: " + CHANGED_ON_DISK.format(path=path))
        if isinstance(edit, RemoveAgent):
            await self._refuse_running(edit.name)
        try:
            new = edit_text(old.decode("utf-8"), edit, under_agents=len(files) == 1)
        except RosterEditError as exc:
            raise CommandError(f"{NOT_CHANGED}: {exc}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{NOT_CHANGED}: {target} is not UTF-8 text") from None
        # Checked as a reload checks the file, over the new text, before anything is written.
        try:
            await checked(
                self._config,
                self._environ,
                self._runtimes,
                self._backends,
                self._repos,
                texts={target: new},
            )
        except CommandError as exc:  # said as an edit's refusal, the problems as a reload's
            said = str(exc).removeprefix(NOT_RELOADED)
            raise CommandError(f"{NOT_CHANGED}{said}") from None
        try:
            await asyncio.to_thread(write_atomically, target, new.encode("utf-8"))
        except OSError as exc:  # the old file stands: the write replaces it whole or not at all
            raise CommandError(f"{NOT_CHANGED}: cannot write {target}: {exc}") from None
        log.info("roster edited from chat: %s written", target)
        try:
            diff = await self._reload()
        except CommandError:
            # A reload refused what the check passed (the disk moved under us): put it back.
            await asyncio.to_thread(write_atomically, target, old)
            raise
        self.remember()  # the file as written and reloaded
        return diff

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
