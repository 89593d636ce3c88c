"""Reading and writing files in an agent's lane (its HOME, its workdir) without trusting
anything the agent may have put there.

An agent can write its HOME and its workdir, and Fleetwarden — often as root — reads and
writes files there too (its CLI's config, Claude Code's state, a repository's HEAD). Every
path below the lane's root is walked one name at a time from a directory descriptor with
``O_NOFOLLOW``, so a symlink anywhere on the way (``.claude`` → ``/etc``,
``settings.json`` → Fleetwarden's config) is refused, never followed. A file is read only
if it is a regular file (a FIFO would block Fleetwarden, a device never ends) of at most
``cap`` bytes with no other hard link, opened with ``O_NONBLOCK`` so that opening a FIFO
cannot block either. A file is written to a fresh temporary name (``O_EXCL``: never an
existing file or link) in its own directory and renamed over the old one, which replaces
a symlink or FIFO there instead of writing through it. A folder Fleetwarden owns whole (a
CLI's skills) is emptied by :func:`empty_lane_dir` the same way: nothing followed.

The root itself is the operator's (the state dir's ``home``, a workdir from the roster)
and is opened as named; :func:`hand_over` and :func:`close_top`, which chown, follow a link
at the root only when root or Fleetwarden's user made it (:func:`open_top`).

:func:`hand_over` makes a lane's tree its agent's own user's (when Fleetwarden is root,
here or on a host: :mod:`fleet.sandbox.lanes`, :mod:`fleet.hosts.lanes`), chowning
without following a symlink and leaving alone a file with another hard link, whose other
name may lie outside the lane; :func:`hand_over_lane` also closes the HOME and the
workdir to every other agent's user (0750, group root). The module is standalone
(standard library only), so the same code runs on a host, copied there with the scripts
Fleetwarden runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

_MAX_TOP_LINKS = 40  # as the kernel's own bound on links followed in one path
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class ExecutableText(str):
    """Text written as an executable file (mode 0700, not 0600): a script that was
    executable where the operator keeps it (a skill's ``scripts/``)."""

    __slots__ = ()


def files_json(files: Mapping[str, str]) -> str:
    """``files`` (path → text) as the host's lane scripts read them on their input: a JSON
    object whose executable texts are ``{"text": …, "executable": true}``."""
    return json.dumps(
        {
            path: {"text": str(text), "executable": True}
            if isinstance(text, ExecutableText)
            else str(text)
            for path, text in files.items()
        }
    )


def file_of(value: object) -> str:
    """One value of :func:`files_json`'s object as the text to write (``ValueError`` when
    it is neither form)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return ExecutableText(value["text"]) if value.get("executable") is True else value["text"]
    raise ValueError("a file's text is neither a string nor {text, executable}")


class LaneFileError(OSError):
    """A file in an agent's lane that Fleetwarden will not read or write as it is: a
    symlink, not a regular file, too large, or outside the lane. The message names it."""


def parts_of(relative: str | PurePosixPath) -> tuple[str, ...]:
    """``relative``'s names, refused unless it stays below its root (no ``..``, not absolute)."""
    path = PurePosixPath(relative)
    if path.is_absolute() or not path.parts or any(p in ("..", ".") for p in path.parts):
        raise LaneFileError(errno.EINVAL, f"{relative} is not a path inside the lane")
    return path.parts


@contextlib.contextmanager
def lane_dir(root: Path, names: tuple[str, ...] = (), *, create: bool = False) -> Iterator[int]:
    """A descriptor of the directory ``root/names…``, every level below ``root`` opened
    without following a symlink (and made 0700 when ``create`` and missing)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in names:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)
            try:
                inner = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LaneFileError(
                        exc.errno, f"{root.joinpath(*names)}: {name} is a symlink or no directory"
                    ) from None
                raise
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def read_lane_file(root: Path, relative: str | PurePosixPath, cap: int) -> bytes | None:
    """The bytes of ``root/relative`` — ``None`` when it does not exist; ``LaneFileError``
    when it, or a directory on its way, is a symlink, when it is no regular file or has
    other hard links, or when it holds more than ``cap`` bytes."""
    *dirs, name = parts_of(relative)
    where = root.joinpath(*parts_of(relative))
    try:
        with lane_dir(root, tuple(dirs)) as dir_fd:
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise LaneFileError(exc.errno, f"{where} is a symlink") from None
                raise
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LaneFileError(errno.EINVAL, f"{where} is not a regular file")
        if info.st_nlink > 1:  # a hard link: the same file may be Fleetwarden's elsewhere
            raise LaneFileError(errno.EMLINK, f"{where} has other hard links")
        if info.st_size > cap:
            raise LaneFileError(errno.EFBIG, f"{where} holds more than {cap} bytes")
        chunks, left = [], cap + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > cap:  # it grew since fstat
        raise LaneFileError(errno.EFBIG, f"{where} holds more than {cap} bytes")
    return data


def write_lane_file(root: Path, relative: str | PurePosixPath, text: str) -> None:
    """Replace ``root/relative`` with ``text`` (mode 0600, or 0700 for
    :class:`ExecutableText`), creating missing directories 0700 — through no symlink: a
    symlink, FIFO or file at the name is replaced, a symlink on the way refused
    (``LaneFileError``)."""
    *dirs, name = parts_of(relative)
    mode = 0o700 if isinstance(text, ExecutableText) else 0o600
    with lane_dir(root, tuple(dirs), create=True) as dir_fd:
        temporary = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temporary, _NEW_FLAGS, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=dir_fd)
            raise


def empty_lane_dir(root: Path, relative: str | PurePosixPath) -> None:
    """Remove ``root/relative`` and all it holds, whatever is there (a folder, a file, a
    symlink: the link itself), through no symlink: one on the way is refused
    (``LaneFileError``), one inside removed, never followed. Nothing there: nothing done."""
    *dirs, name = parts_of(relative)
    try:
        with lane_dir(root, tuple(dirs)) as dir_fd:
            _remove(dir_fd, name)
    except FileNotFoundError:
        return
    except RecursionError:
        raise LaneFileError(errno.ELOOP, f"{root / relative} is nested too deep") from None


def _remove(dir_fd: int, name: str) -> None:
    """Remove ``name`` in ``dir_fd`` and all below it, each level opened from its parent's
    descriptor without following a link (a link is removed itself). Python 3.8 and later,
    as a host's may be (``shutil.rmtree``'s ``dir_fd`` needs 3.11)."""
    if not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        with os.scandir(fd) as entries:
            names = [entry.name for entry in entries]
        for inner in names:
            _remove(fd, inner)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def chmod_itself(path: Path, mode: int, kind: int) -> None:
    """``chmod`` the file at ``path`` itself — never where a symlink put there points —
    once it is seen to be of file type ``kind`` (``stat.S_IFSOCK``…); ``LaneFileError``
    if it is not (an agent swapped it)."""
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if stat.S_IFMT(os.fstat(fd).st_mode) != kind:
            raise LaneFileError(errno.EPERM, f"{path} was replaced by something else")
        os.chmod(f"/proc/self/fd/{fd}", mode)  # the inode the descriptor holds
    finally:
        os.close(fd)


def hand_over_lane(home: Path, workdir: Path, uid: int) -> None:
    """Hand an agent's HOME and workdir to ``uid`` and close both to every other agent's
    user (:func:`close_top`: another lane that still sees the path — it was made or named
    after that lane's sandbox was built — cannot enter it); ``ValueError`` for a workdir
    so near ``/`` (``/srv``, ``/``) that handing it over would give the agent a system
    tree."""
    if len(workdir.resolve().parts) < 3:
        raise ValueError(
            f"its workdir {workdir} is too near / to be handed to the agent's own user; "
            "give it a directory of its own"
        )
    for top in (home, workdir):
        hand_over(top, uid)
        close_top(top, uid)


def close_top(top: Path, uid: int) -> None:
    """Close the directory ``top`` (:func:`open_top`) to every user but ``uid`` and root:
    ``uid``'s, group root, 0750. Root's group lets Fleetwarden's own sandboxes, which
    run as root without a capability (git's HEAD probe), still enter it; agents' users
    have no group but their own."""
    fd = open_top(top)
    if fd is None:
        return
    try:
        os.fchown(fd, uid, 0)
        os.fchmod(fd, 0o750)
    finally:
        os.close(fd)


def hand_over(top: Path, uid: int) -> int:
    """Make the tree at ``top`` (:func:`open_top`) ``uid``'s (uid and gid); how many
    entries changed.

    Symlinks are never followed (``fwalk`` holds each directory open, so no level can be
    swapped for a link on the way down), and a file with more than one hard link is left
    as it is: its other name may lie outside the lane."""
    fd = open_top(top)
    if fd is None:
        return 0
    changed = 0
    try:
        info = os.fstat(fd)
        if (info.st_uid, info.st_gid) != (uid, uid):
            os.fchown(fd, uid, uid)
            changed += 1
        for _, dirs, files, dir_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            for name in (*dirs, *files):
                if _own(name, uid, dir_fd):
                    changed += 1
    finally:
        os.close(fd)
    return changed


def open_top(top: Path) -> int | None:
    """A descriptor of the directory ``top``, or ``None`` when there is none. The folders
    above it are the operator's and are followed; ``top`` itself may be the agent's to
    replace (a workdir in its HOME), so a link there is followed only when Fleetwarden's
    user or root made it (an operator's workdir named through a link) and is refused
    otherwise: followed, it would hand the agent whatever tree it points at."""
    here = top.absolute()
    for _ in range(_MAX_TOP_LINKS):
        above = here.parent.resolve()
        try:
            parent = os.open(above, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            info = os.stat(here.name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):
                return os.open(here.name, _DIR_FLAGS, dir_fd=parent)
            if info.st_uid not in (0, os.geteuid()):
                raise LaneFileError(
                    errno.ELOOP,
                    f"{here} is a link made by uid {info.st_uid}, not a folder: it is not "
                    "followed; remove it, and Fleetwarden makes the folder again",
                )
            here = above / os.readlink(here.name, dir_fd=parent)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno != errno.ELOOP or isinstance(exc, LaneFileError):
                raise
            raise LaneFileError(errno.ELOOP, f"{here} was swapped for a link") from None
        finally:
            os.close(parent)
    raise LaneFileError(errno.ELOOP, f"{top}: too many links")


def _own(path: Path | str, uid: int, dir_fd: int | None) -> bool:
    try:
        info = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if info.st_uid == uid and info.st_gid == uid:
        return False
    if not stat.S_ISDIR(info.st_mode) and info.st_nlink > 1:
        log.warning("left %s as it is: it has %d hard links", path, info.st_nlink)
        return False
    os.chown(path, uid, uid, dir_fd=dir_fd, follow_symlinks=False)
    return True
