"""A host's remote log mirrored here once, whatever the number of its agent's runs the
watch still looks at: the host's look (:data:`LOOK_SCRIPT`, run by the real ``sh`` here)
lists the log once a run, and a log that grew between the look and the read was taken as
cut and mirrored again from its beginning."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fleet.backends.remote_watch import RemoteWatch, Watched
from fleet.hosts.place import HostPlace
from fleet.model import RunHandle


@dataclass
class Ran:
    stdout: str


class GrowingFile:
    """The remote log as SFTP reads it, while its agent goes on writing."""

    def __init__(self, path: Path, more: bytes) -> None:
        self.path, self.more, self.at = path, more, 0

    async def __aenter__(self) -> GrowingFile:
        with self.path.open("ab") as fh:  # written after the look measured it
            fh.write(self.more)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def seek(self, offset: int) -> None:
        self.at = offset

    async def read(self, size: int) -> bytes:
        with self.path.open("rb") as fh:
            fh.seek(self.at)
            return fh.read(size)


class Link:
    """The host's link: the look run by the real ``sh`` (the host is this machine)."""

    def __init__(self, more: bytes) -> None:
        self.more = more

    async def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Ran:  # noqa: ASYNC109
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return Ran(out.decode())

    async def sftp(self) -> Link:
        return self

    def open(self, path: str, mode: str, encoding: None = None) -> GrowingFile:
        return GrowingFile(Path(path), self.more)


class Host:
    def __init__(self, tmp: Path, more: bytes) -> None:
        self.tmp, self._link = tmp, Link(more)

    def link(self, name: str) -> Link:
        return self._link

    def place(self, name: str) -> HostPlace:
        return HostPlace(host=name, home=str(self.tmp), state_dir=str(self.tmp / "state"))


async def test_two_runs_of_one_agent_mirror_its_log_once(tmp_path: Path) -> None:
    remote = tmp_path / "remote.log"
    remote.write_bytes(b"first run\n")
    here = tmp_path / "here.log"
    host = Host(tmp_path, more=b"")
    watch = RemoteWatch("h1", host, lambda session: str(remote), poll_every=60)  # type: ignore[arg-type]
    ended = RunHandle("tmux", 2**22 + 7, 2**22 + 7, tmp_path, here, None, "coder")  # no such pid
    watch.add(Watched(ended, "coder", 0))
    await watch.next_look()
    host._link.more = b"more\n"  # the next run writes while the look reads
    running = RunHandle("tmux", os.getpid(), os.getpid(), tmp_path, here, None, "coder")
    with remote.open("ab") as fh:
        fh.write(b"second run\n")
    watch.add(Watched(running, "coder", None))
    await watch.next_look()
    host._link.more = b""
    watch.look_now()
    await watch.next_look()
    watch.look_now()
    await watch.next_look()
    await watch.close()
    assert here.read_bytes() == remote.read_bytes() == b"first run\nsecond run\nmore\n"
