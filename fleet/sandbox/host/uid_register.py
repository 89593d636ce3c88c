"""The host's register of agent uid ranges: which fleet holds which agent uids on this
machine, so that two orchestrators never give their agents the same host uid.

Run as root, Fleetwarden gives each sandboxed agent a host uid of its own
(:mod:`fleet.sandbox.lanes`). Two orchestrators on one machine, each with its own config
and state dir (two teams, two presets tried side by side), would both start at
:data:`~fleet.sandbox.lanes.FIRST_UID`, and the kernel would take each fleet's agent for
the other's: its files, its processes, its sockets. So a fleet holds a range of uids on
the host for as long as it runs:

* the register is a directory only Fleetwarden's user (root) may enter,
  :data:`REGISTER` (0700, made if missing; refused if another user owns it or may write
  it, or if any directory on its way is a symlink);
* a fleet's lease is a file there named after its state dir (0600), holding its state dir,
  config, pid and range, and ``flock``-ed while the fleet runs: the kernel drops the lock
  when the process ends however it ends, so a dead orchestrator's range is free again by
  the lock, never by the file's age;
* a range is taken under the register's own lock, so two orchestrators starting at once
  see each other; a range that overlaps a live lease is refused, naming the fleet that
  holds it, its pid, and a free range to give instead; a range whose uids still run
  processes that are not this fleet's (the agents of a fleet that stopped and left them
  running) is refused the same way;
* a fleet left to choose takes a range no other fleet on record has held, else the one
  held longest ago (so a fleet that stopped a moment ago finds its range when it comes
  back), with one warning naming the fleet that held it last; the records of the stopped
  fleets it takes over are dropped (the register holds a record per range, not history);
* each new uid is checked against the lease (:meth:`Lease.check`): the file at its name is
  still the one this fleet locked.

Everything is opened from the register's directory handle without following a link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Final

from fleet.errors import FleetError
from fleet.sandbox.host.uid_ranges import Holder, Running, UidRange, choose

log = logging.getLogger(__name__)

REGISTER: Final = Path("/run/fleetwarden/uids")
"""Where the host's leases of agent uid ranges are (root's, 0700)."""
_LOCK: Final = "register.lock"
_SUFFIX: Final = ".lease"
_CAP: Final = 4096  # a lease's record is a few hundred bytes
_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE: Final = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UidRangeHeld(FleetError, OSError):
    """The uids this fleet would give its agents are another fleet's on this host, or the
    register cannot be trusted. The message names the holder and the fix."""


class Lease:
    """This fleet's hold on its range: the lease file's descriptor, locked, and the
    register's directory it lies in. Released by :meth:`release` or the process's end."""

    def __init__(self, register: int, name: str, fd: int, uids: UidRange) -> None:
        self._register, self._name, self._fd = register, name, fd
        self.range = uids

    def check(self) -> None:
        """Refuse (:class:`UidRangeHeld`) unless the register still holds this lease: the
        same file at its name, locked by this fleet."""
        if self._fd < 0:
            raise UidRangeHeld(f"this fleet's hold on {self.range} was released")
        try:
            now = os.stat(self._name, dir_fd=self._register, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        held = os.fstat(self._fd)
        if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            raise UidRangeHeld(
                f"this fleet's lease of {self.range} is gone from the host's register "
                f"({REGISTER}): another fleet may take these uids; restart Fleetwarden",
            )

    def release(self) -> None:
        """Let the range go (its record stays, naming this fleet, until another takes it)."""
        for fd in (self._fd, self._register):
            if fd >= 0:
                os.close(fd)
        self._fd = self._register = -1


def take(
    state_dir: Path,
    *,
    wanted: UidRange | None,
    count: int,
    span: UidRange,
    own: Collection[int] = (),
    config: Path | None = None,
    register: Path = REGISTER,
    running: Running | None = None,
) -> Lease:
    """Hold a range of agent uids on this host for the fleet at ``state_dir``: ``wanted``,
    else the range its agents' uids ``own`` are in, else a free one (:func:`choose`).
    :class:`UidRangeHeld` when another fleet holds it, or processes of another run as its
    uids; ``own`` (this fleet's agents' uids, which may still run) are not counted."""
    if running is None:  # /proc read once for every range the choice looks at
        seen = uids_running(span)
        running = functools.partial(_first_of, seen)
    fleet = str(state_dir)
    directory = open_register(register)
    try:
        with _locked(directory):
            holders = list(_holders(directory))
            previous = _previous(holders, fleet, own, count, span)
            chosen = choose(
                wanted,
                previous,
                count,
                span,
                holders,
                fleet,
                lambda uids: running(uids, own) is not None,
            )
            if isinstance(chosen, str):
                raise UidRangeHeld(chosen)
            busy = running(chosen, own)
            if busy is not None:
                pid, uid = busy
                raise UidRangeHeld(
                    f"{chosen}: uid {uid} still runs a process (pid {pid}) that is not this "
                    "fleet's, likely an agent of a fleet that stopped and left it running: "
                    "stop it, or give this fleet another range with `agent_uids: base: …`",
                )
            _take_over(directory, chosen, [h for h in holders if h.state_dir != fleet])
            name = _lease_name(fleet)
            fd = _own_file(directory, name)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UidRangeHeld(
                        f"another Fleetwarden holds the uids of the fleet at {fleet} on this "
                        "host; stop it first",
                    ) from None
                record = {
                    "state_dir": fleet,
                    "config": "" if config is None else str(config),
                    "pid": os.getpid(),
                    "first": chosen.first,
                    "count": chosen.count,
                    "taken": time.time(),
                }
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(record).encode(), 0)
            except BaseException:
                os.close(fd)
                raise
    except BaseException:
        os.close(directory)
        raise
    log.info("this fleet holds %s on this host (%s)", chosen, register)
    return Lease(directory, name, fd, chosen)


def _take_over(directory: int, chosen: UidRange, others: Collection[Holder]) -> None:
    """Warn, once, that ``chosen`` was held by a fleet that has stopped (the last to hold
    it), and drop the records of the stopped fleets whose ranges it overlaps: the register
    keeps the last holder of each range, the new one. Called under the register's lock."""
    over = (h for h in others if not h.live and h.range.overlaps(chosen))
    before = sorted(over, key=lambda h: h.taken)
    if not before:
        return
    more = f" (and {len(before) - 1} fleets before it)" if len(before) > 1 else ""
    log.warning(
        "%s were last held by the fleet at %s%s, which has stopped: files its agents left "
        "owned by them are open to this fleet's agents",
        chosen,
        before[-1].state_dir,
        more,
    )
    for holder in before:
        with contextlib.suppress(OSError):
            os.unlink(_lease_name(holder.state_dir), dir_fd=directory)


def open_register(path: Path) -> int:
    """A descriptor of the register's directory, made (0700) where missing, each level
    opened without following a link; refused unless the register is this user's alone
    and no level on its way may be written by another user (but a sticky ``/tmp``)."""
    me = os.geteuid()
    fd = os.open("/", _DIR)
    try:
        for level, name in enumerate(path.parts[1:], start=2):
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=fd)
            try:
                inner = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UidRangeHeld(
                        f"{Path(*path.parts[:level])} is a symlink or no directory: the "
                        "host's uid register must be a directory of root's own; remove it",
                    ) from None
                raise
            os.close(fd)
            fd = inner
            info = os.fstat(fd)
            shown = Path(*path.parts[:level])
            last = level == len(path.parts)
            if info.st_uid not in (0, me) or (last and info.st_uid != me):
                raise UidRangeHeld(
                    f"{shown} is owned by uid {info.st_uid}: the host's uid register must "
                    f"be root's alone; remove it (it is made again, 0700)",
                )
            opened = info.st_mode & (0o077 if last else 0o022)
            if opened and not (info.st_mode & stat.S_ISVTX and not last):
                raise UidRangeHeld(
                    f"{shown} may be written by others (mode {info.st_mode & 0o7777:o}): the "
                    "host's uid register must be root's alone; `chmod 700` it",
                )
        return fd
    except BaseException:
        os.close(fd)
        raise


def processes_as(uids: UidRange, own: Collection[int]) -> tuple[int, int] | None:
    """A live process (pid, uid) whose real, effective, saved or filesystem uid lies in
    ``uids`` and is none of ``own``; ``None`` when there is none. A zombie is not live."""
    return _first_of(uids_running(uids), uids, own)


def uids_running(uids: UidRange) -> dict[int, int]:
    """Each uid of ``uids`` some live process runs as (real, effective, saved or
    filesystem), with one such pid."""
    with os.scandir("/proc") as entries:
        pids = [int(entry.name) for entry in entries if entry.name.isdigit()]
    found: dict[int, int] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
                fields = dict(line.partition(":")[::2] for line in fh)
        except OSError:
            continue  # gone meanwhile
        if fields.get("State", "").split()[:1] in (["Z"], ["X"]):
            continue  # ended, only waiting to be reaped: it runs nothing
        for uid in (int(word) for word in fields.get("Uid", "").split()):
            if uid in uids:
                found.setdefault(uid, pid)
    return found


def _first_of(seen: dict[int, int], uids: UidRange, own: Collection[int]) -> tuple[int, int] | None:
    return next(
        ((pid, uid) for uid, pid in sorted(seen.items()) if uid in uids and uid not in own), None
    )


@contextlib.contextmanager
def _locked(directory: int) -> Iterator[None]:
    fd = _own_file(directory, _LOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for a scan of the register: moments
        yield
    finally:
        os.close(fd)


def _own_file(directory: int, name: str) -> int:
    """``name`` in the register, opened (made 0600) without following a link; refused
    unless it is a regular file of this user's alone, with no other link."""
    fd = os.open(name, _FILE, 0o600, dir_fd=directory)
    info = os.fstat(fd)
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_nlink != 1
        or info.st_mode & 0o077
    ):
        os.close(fd)
        raise UidRangeHeld(
            f"{name} in the host's uid register is not a private file of root's "
            "(0600, one link): remove it",
        )
    return fd


def _holders(directory: int) -> Iterator[Holder]:
    """Every lease's record, live (locked by a running fleet) or not; the record of a
    fleet that has stopped and whose state dir is gone is removed (under the register's
    lock, as every caller holds it)."""
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if e.name.endswith(_SUFFIX)]
    for name in names:
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=directory
            )
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                live = True
            else:
                live = False
                fcntl.flock(fd, fcntl.LOCK_UN)
            text = os.pread(fd, _CAP, 0)
        finally:
            os.close(fd)
        holder = _record(text, live)
        if holder is None:
            log.warning("%s in the host's uid register is unreadable: left out", name)
        elif not live and not os.path.isdir(holder.state_dir):
            # A fleet whose state dir is gone has no agents left to come back to.
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=directory)
        else:
            yield holder


def _record(text: bytes, live: bool) -> Holder | None:
    try:
        data = json.loads(text)
        return Holder(
            state_dir=str(data["state_dir"]),
            config=str(data.get("config", "")),
            pid=int(data["pid"]),
            range=UidRange(int(data["first"]), int(data["count"])),
            live=live,
            taken=float(data.get("taken", 0.0)),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _previous(
    holders: Collection[Holder], fleet: str, own: Collection[int], count: int, span: UidRange
) -> UidRange | None:
    """The range this fleet held last (its lease's record), else the block of ``count``
    uids (aligned from ``span``'s start) its agents' lowest uid is in."""
    mine = next((h.range for h in holders if h.state_dir == fleet), None)
    if mine is not None and (not own or min(own) in mine):
        return mine
    if not own:
        return None
    block = (min(own) - span.first) // count
    return UidRange(span.first + block * count, count)


def _lease_name(state_dir: str) -> str:
    return hashlib.sha256(state_dir.encode()).hexdigest()[:32] + _SUFFIX
