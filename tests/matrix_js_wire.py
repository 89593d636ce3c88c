"""The Node process behind a :class:`tests.matrix_js_user.JsOperator`: started in a session of
its own that dies with the thread that started it, spoken to in JSON lines — a request
``{"id", "op", "args"}`` gets one answer ``{"id", "ok", "result"|"error"}``, and events come
as ``{"event": NAME, ...}`` — and always ended by :meth:`NodeWire.stop`."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
OPERATOR_SCRIPT = REPO_ROOT / "tests" / "matrix_js" / "operator.mjs"
MODULES_ENV_VAR = "FLEETWARDEN_MATRIX_JS_MODULES"
DEFAULT_MODULES = REPO_ROOT / ".cache" / "matrix-js" / "node_modules"
LOG_ENV_VAR = "FLEETWARDEN_MATRIX_JS_LOG"

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl

Json = dict[str, Any]


class JsOperatorError(RuntimeError):
    """The operator's Node process refused a request, timed out, or died."""


def modules_dir() -> Path:
    """The ``node_modules`` holding matrix-js-sdk; fails (never skips) when it is missing."""
    path = Path(os.environ.get(MODULES_ENV_VAR) or DEFAULT_MODULES)
    if not (path / "matrix-js-sdk" / "package.json").exists():
        pytest.fail(
            f"matrix-js-sdk is not installed in {path}: run `bash tests/matrix_js.sh` "
            f"(tests/run.sh does), or set {MODULES_ENV_VAR}",
            pytrace=False,
        )
    return path


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the matrix-js-sdk operator needs Node.js 20+")
    return node


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child is killed when the thread that forked it dies."""

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL.value, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class NodeWire:
    """One ``node tests/matrix_js/operator.mjs`` process; its stderr goes to ``log_path``."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self._proc = proc
        self.log_path = log_path
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.events: list[Json] = []  # what the process pushed, oldest first
        self._pushed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def spawn(cls, workdir: Path) -> NodeWire:
        """Start the process in ``workdir`` (whose path its command line names, so a test's
        cleanup of what runs under its directory finds it)."""
        modules = modules_dir()
        log_path = workdir / f"js-operator-{time.monotonic_ns()}.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            MODULES_ENV_VAR: str(modules),
            LOG_ENV_VAR: os.environ.get(LOG_ENV_VAR, "warn"),
        }
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                _node(),
                str(OPERATOR_SCRIPT),
                str(log_path),
                cwd=workdir,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
                limit=16 * 1024 * 1024,
            )
        return cls(proc, log_path)

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def call(self, op: str, args: Json, *, wait: float) -> Any:
        """Send one request and wait at most ``wait`` seconds for its answer."""
        proc = self._proc
        if proc.returncode is not None or proc.stdin is None:
            raise JsOperatorError(f"{op}: the operator's process has ended\n{self.log()}")
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        line = json.dumps({"id": ident, "op": op, "args": args}) + "\n"
        try:
            proc.stdin.write(line.encode())
            await proc.stdin.drain()
            return await asyncio.wait_for(future, wait)
        except TimeoutError:
            raise JsOperatorError(f"{op}: no answer within {wait} s\n{self.log()}") from None
        finally:
            self._pending.pop(ident, None)

    async def wait_event(self, name: str, *, within: float = 30, **fields: Any) -> Json:
        """The first event the process pushed named ``name`` with all of ``fields``."""

        def found() -> Json | None:
            return next(
                (
                    e
                    for e in self.events
                    if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
                ),
                None,
            )

        try:
            async with asyncio.timeout(within), self._pushed:
                await self._pushed.wait_for(found)
        except TimeoutError:
            raise JsOperatorError(
                f"no {name!r} event with {fields} within {within} s\n{self.log()}"
            ) from None
        event = found()
        assert event is not None
        return event

    def log(self) -> str:
        """What the Node process wrote to its log so far (for failure messages)."""
        return self.log_path.read_text(encoding="utf8", errors="replace")[-6000:]

    async def stop(self) -> None:
        """End the process (the "stop" request, then SIGKILL to its group). Safe to repeat."""
        proc = self._proc
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.call("stop", {}, wait=5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._fail_pending(JsOperatorError("the operator was stopped"))

    async def _read(self) -> None:
        assert self._proc.stdout is not None
        try:
            async for raw in self._proc.stdout:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue  # never expected: stdout carries only protocol lines
                if "event" in message:
                    self.events.append(message)
                    async with self._pushed:
                        self._pushed.notify_all()
                    continue
                future = self._pending.get(message.get("id"))
                if future is None or future.done():
                    continue
                if message.get("ok"):
                    future.set_result(message.get("result"))
                else:
                    future.set_exception(JsOperatorError(str(message.get("error"))))
        finally:
            self._fail_pending(JsOperatorError(f"the operator's process ended\n{self.log()}"))

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
