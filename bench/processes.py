"""The benchmark's child processes: start in their own session, die with us, measure, stop."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl


class BenchError(RuntimeError):
    """The benchmark could not run: a process died, or something did not answer in time."""


class Child:
    """A process in its own session that gets SIGTERM if the thread that started it dies."""

    def __init__(
        self, name: str, argv: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path
    ) -> None:
        self.name = name
        self.log = log
        parent = os.getpid()

        def preexec() -> None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM.value, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)

        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
                preexec_fn=preexec,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise BenchError(f"{self.name} exited with {self.proc.returncode}\n{tail}")

    async def read_line(self, within: float) -> str:
        """The next line on its stdout (bounded; EOF is an error)."""
        stdout: IO[bytes] | None = self.proc.stdout
        assert stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), within)
        except TimeoutError:
            raise BenchError(f"{self.name} printed nothing within {within:.0f} s") from None
        if not line:
            self.check()
            raise BenchError(f"{self.name} closed its stdout")
        return line.decode().strip()

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 15 s. Safe to repeat."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def rss_mib(pid: int) -> float | None:
    """VmRSS of ``pid`` in MiB, from /proc/<pid>/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _stat_fields(pid: int | None) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command's name (``None`` if unknown)."""
    if pid is None:
        return None
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of ``pid`` so far (0 if unknown)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kernel_seconds(pid: int | None) -> float:
    """System CPU time of ``pid`` so far (0 if unknown): its syscalls' share of
    :func:`cpu_seconds` (sends and receives, for a proxy)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")
