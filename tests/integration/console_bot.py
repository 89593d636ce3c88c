"""Drive the real ``fleetwarden run`` process through its console, as an operator would."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from fleet.model import RunHandle
from fleet.sandbox.host.procfs import process_start_ticks

FLEETWARDEN = Path(sys.executable).with_name("fleetwarden")
DEFAULT_TIMEOUT = 20.0
ROSTER_HEAD = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
agents:
"""
"""A config for the console and quick stops, as a ``str.format`` template: agents follow."""


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without anything that would pick a config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWARDEN_")}
    env.update(extra)
    return env


class ConsoleBot:
    """A running ``fleetwarden run`` with pipes on stdin, stdout and stderr."""

    def __init__(
        self,
        cwd: Path,
        *args: str,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
        program: Path = FLEETWARDEN,
    ) -> None:
        """``prefix``: a command that ends by exec'ing the rest (e.g. ``setpriv …``);
        ``program``: the ``fleetwarden`` to run (another install's)."""
        self.cwd = cwd
        self.env = env if env is not None else clean_env()
        self.proc = subprocess.Popen(
            [*prefix, str(program), "run", *args],
            cwd=cwd,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._out = _Collector(self.proc.stdout, ended=self._stdin_closed)
        self._err = _Collector(self.proc.stderr)
        self._mark = 0

    @property
    def output_since_command(self) -> str:
        """What the bot printed since the last line typed."""
        return self._out.text()[self._mark :]

    @property
    def stdout(self) -> str:
        return self._out.text()

    @property
    def stderr(self) -> str:
        return self._err.text()

    def send(self, line: str) -> None:
        """Type one line."""
        assert self.proc.stdin is not None
        self._mark = len(self._out.text())
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match[str]:
        """Wait until stdout after the last ``send`` matches ``pattern`` (a regex)."""
        regex = re.compile(pattern, re.MULTILINE)
        match = self._out.wait_for(lambda text: regex.search(text, self._mark), timeout)
        if match is None:
            raise AssertionError(
                f"no {pattern!r} within {timeout} s; stdout since the last command:\n"
                f"{self._out.text()[self._mark :]}\nstderr:\n{self.stderr}"
            )
        return match

    def expect_anywhere(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match[str]:
        """Wait until stdout, from its start, matches ``pattern``: for a line said on its own
        time (a run's summary), which may come before or after the last command."""
        regex = re.compile(pattern, re.MULTILINE)
        match = self._out.wait_for(regex.search, timeout)
        if match is None:
            raise AssertionError(
                f"no {pattern!r} within {timeout} s; stdout:\n{self._out.text()}\n"
                f"stderr:\n{self.stderr}"
            )
        return match

    def command(self, line: str, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match[str]:
        self.send(line)
        return self.expect(pattern, timeout)

    def close(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """End input (EOF) and return the exit status."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        return self.wait(timeout)

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for the process to end by itself; release its pipes."""
        code = self.proc.wait(timeout)
        self._out.join()
        self._err.join()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
        return code

    def kill(self) -> None:
        """kill -9, as a crash would."""
        self.proc.send_signal(signal.SIGKILL)
        self.wait()

    def quit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """``quit`` typed at the console; the exit status once it ended."""
        self.send("quit")
        return self.wait(timeout)

    def __enter__(self) -> ConsoleBot:
        return self

    def __exit__(self, *failed: object) -> None:
        """A bot the test did not end (it failed first) is killed, never left running; one
        that ended by itself has its pipes released."""
        if self.proc.poll() is None:
            self.kill()
        else:
            self.wait()

    def _stdin_closed(self) -> None:
        """Its output ended: once it has exited, nothing reads its input any more, so the
        pipe is closed (a test that never waited for it leaves no open pipe behind)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(DEFAULT_TIMEOUT)
        stdin = self.proc.stdin
        if self.proc.returncode is not None and stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()


@contextlib.contextmanager
def killed_on_failure(bot: ConsoleBot) -> Iterator[ConsoleBot]:
    """For what a helper checks between starting ``bot`` and handing it over: when a check
    fails, the bot is killed there, since the caller's ``with bot`` is not reached."""
    try:
        yield bot
    except BaseException:
        bot.__exit__()
        raise


class _Collector:
    """Reads a pipe on a thread; lets the test wait for what it is looking for."""

    def __init__(self, pipe: object, ended: Callable[[], None] | None = None) -> None:
        """``ended``: called on the reading thread once the pipe is at its end (and closed:
        what it held is read)."""
        self._pipe = pipe
        self._ended = ended
        self._chunks: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fd = self._pipe.fileno()  # type: ignore[attr-defined]
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:  # closed under it by a wait() that gave up on this thread
                break
            if not data:
                break
            with self._cond:
                self._chunks.append(data.decode("utf-8", errors="replace"))
                self._cond.notify_all()
        with contextlib.suppress(OSError, ValueError):
            self._pipe.close()  # type: ignore[attr-defined]
        if self._ended is not None:
            self._ended()

    def text(self) -> str:
        with self._cond:
            return "".join(self._chunks)

    def wait_for(self, check, timeout: float):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = check("".join(self._chunks))
                remaining = deadline - time.monotonic()
                if result or remaining <= 0:
                    return result
                self._cond.wait(remaining)

    def join(self) -> None:
        self._thread.join(DEFAULT_TIMEOUT)


def wait_until(predicate, timeout: float = DEFAULT_TIMEOUT, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until true or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while we read
        return False


def kill_run_group(handle: RunHandle) -> None:
    """SIGKILL the process group of the run ``handle`` names, if that group's leader is still
    the run's (its start time the one recorded): a leader long gone leaves its number free
    for any process, another test's among them."""
    ticks = process_start_ticks(handle.pgid)
    if ticks is None or (handle.start_ticks is not None and ticks != handle.start_ticks):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(handle.pgid, signal.SIGKILL)


def processes_where(match: Callable[[str, bytes], bool]) -> list[int]:
    """Pids of the processes (never a bubblewrap sandbox around one, whose argv names what
    it runs) for which ``match(cwd, cmdline)`` holds."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        program = os.path.basename(cmdline.split(b"\0", 1)[0])
        if program != b"bwrap" and match(cwd, cmdline):
            pids.append(int(entry))
    return pids


def under(root: Path, cwd: str, cmdline: bytes) -> bool:
    """Whether a process working in ``cwd`` with ``cmdline`` is one of ``root``'s: it works
    in ``root`` or below it, or its command line names a path below it. Tests run side by
    side: a kill matched on a program's name alone ends another test's process."""
    top = str(root)
    return cwd == top or cwd.startswith(top + "/") or (top + "/").encode() in cmdline


def stub_processes_in(workdir: Path) -> list[int]:
    """Pids of stub agents whose working directory is ``workdir``."""
    return processes_where(
        lambda cwd, cmdline: (
            cwd == str(workdir)
            and b"stub_agent.py" in cmdline
            and b"agent_shim" not in cmdline
            and b"forwarder.py" not in cmdline  # a locked sandbox's first command
        )
    )


def host_pid(agent_pid: int, pid: int) -> int:
    """The host pid of process ``pid`` as the sandboxed agent ``agent_pid`` sees it (its own
    pid namespace numbers from 1); ``pid`` itself for an agent without a sandbox."""
    try:
        namespace = os.readlink(f"/proc/{agent_pid}/ns/pid")
    except OSError:
        return pid
    if namespace == os.readlink("/proc/self/ns/pid"):
        return pid
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
            with open(f"/proc/{entry}/status") as fh:
                nspid = next(line for line in fh if line.startswith("NSpid:")).split()
        except (OSError, StopIteration):
            continue
        if int(nspid[-1]) == pid:
            return int(entry)
    return pid
