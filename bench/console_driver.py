"""``fleetwarden run`` on console pipes, as the fleet benchmarks drive it: a line typed, the
lines it prints timestamped as they arrive, one awaited by pattern."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.fleet_trace import TRACED

FLEETWARDEN = Path(sys.executable).with_name("fleetwarden")
REPO = Path(__file__).resolve().parent.parent


class Console:
    """``fleetwarden run`` on pipes; a thread timestamps every line it prints."""

    def __init__(
        self, cwd: Path, config: Path, trace: Path | None = None, gc_freeze: bool = False
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWARDEN_")}
        argv = [str(FLEETWARDEN), "run", "--config", str(config)]
        if trace is not None:
            # The same entry point, with timing wrappers around the ps and sweep paths.
            freeze = "gc-freeze" if gc_freeze else "-"
            argv = [
                sys.executable,
                "-m",
                "bench.fleet_scale",
                TRACED,
                str(trace),
                freeze,
                *argv[1:],
            ]
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
            )
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._err: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            at = time.perf_counter()
            with self._cond:
                self._lines.append((at, raw.decode("utf-8", "replace").rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._lines.append((time.perf_counter(), "\0EOF"))
            self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._err.append(raw)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def mark(self) -> int:
        with self._cond:
            return len(self._lines)

    def send(self, line: str) -> float:
        """Type one line; the perf_counter just before it was written."""
        assert self.proc.stdin is not None
        t0 = time.perf_counter()
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        return t0

    def expect(
        self, regex: re.Pattern[str], since: int, timeout: float = 30.0
    ) -> tuple[float, re.Match[str], int]:
        """The first line from index ``since`` on matching ``regex``: (arrival, match, next)."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self._lines):
                    at, text = self._lines[i]
                    i += 1
                    if text == "\0EOF":
                        raise RuntimeError(f"fleetwarden ended; stderr:\n{self.stderr[-3000:]}")
                    found = regex.search(text)
                    if found:
                        return at, found, i
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = "\n".join(t for _, t in self._lines[since:][-20:])
                    raise RuntimeError(
                        f"no {regex.pattern!r} within {timeout} s; output:\n{tail}\n"
                        f"stderr:\n{self.stderr[-3000:]}"
                    )
                self._cond.wait(remaining)

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode("utf-8", "replace")

    def close(self, timeout: float = 60.0) -> int:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
