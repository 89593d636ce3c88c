"""A real ``codex app-server`` spoken to through :mod:`fleet.sessions.codex`, with the
smallest loop that does a driver's I/O: the process is planned by Fleetwarden's Codex
runtime (its argv, environment and config files), each line it writes is fed to the
protocol, and each line the protocol makes is written to its stdin."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from fleet.approvals.binding import shown_digest
from fleet.ledger.records.approvals import Decision
from fleet.model import AgentSpec
from fleet.runs.layout import write_files
from fleet.runtimes import RuntimeContext
from fleet.runtimes.codex import CodexRuntime
from fleet.sessions.base import Asked, Effect, Write
from fleet.sessions.codex import CodexAppServer, protocol
from tests.fakes.provider.server import Accepted, FakeProvider
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

KEY = "test-key-codex-live"
ACCEPT = Accepted(api_keys=frozenset({KEY}))  # the one key the fake provider serves
MODEL = "gpt-5.5"  # a model Codex knows: its apply_patch is a freeform tool
TIMEOUT = 60.0


@dataclass
class LiveCodex:
    """One ``codex app-server`` process and its protocol; ``lines`` is what it wrote,
    ``effects`` what the protocol made of it (writes aside)."""

    spec: AgentSpec
    fake: FakeProvider
    root: Path
    lines: list[str] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    protocol: CodexAppServer | None = None
    ctx: RuntimeContext | None = None  # the agent's place; by default a home and workdir

    @property
    def work(self) -> Path:
        return self.ctx.workdir if self.ctx is not None else self.root / "work"

    async def __aenter__(self) -> LiveCodex:
        cli("codex")
        ctx = self.ctx or self._context()
        plan = CodexRuntime(str(bin_dir() / "codex")).plan(self.spec, ctx)
        assert plan.session == "codex-app-server"
        write_files(ctx.home, plan.files)
        self.proc = await asyncio.create_subprocess_exec(
            *plan.argv,
            env=dict(plan.env),
            cwd=plan.cwd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,  # one log, as the backends keep it
            start_new_session=True,
        )
        try:
            self.protocol = protocol(self.spec, self.work)
            await self.apply(self.protocol.opening(plan.prompt))
        except BaseException:  # no ``async with`` body: the process ends here
            await self.__aexit__(None, None, None)
            raise
        return self

    def _context(self) -> RuntimeContext:
        home = self.root / "home"
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        self.work.mkdir(exist_ok=True)
        environ = {
            "PATH": os.pathsep.join([str(bin_dir()), str(node_dir()), "/usr/bin", "/bin"]),
            "LANG": "C.UTF-8",
            "TMPDIR": str(home / "tmp"),
            "OPENAI_API_KEY": KEY,
        }
        return RuntimeContext(
            home=home,
            workdir=self.work,
            environ=environ,
            provider_urls={"openai": self.fake.base_url},
            started_at=datetime.now(UTC),
        )

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    @property
    def live(self) -> CodexAppServer:
        assert self.protocol is not None
        return self.protocol

    async def apply(self, effects: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        for effect in effects:  # type: ignore[attr-defined]
            if isinstance(effect, Write):
                self.proc.stdin.write(effect.line.encode() + b"\n")
            else:
                self.effects.append(effect)
        await self.proc.stdin.drain()

    async def until(self, wanted: Callable[[Effect], bool], deadline: float = TIMEOUT) -> Effect:
        """Read and feed lines until the protocol makes an effect ``wanted`` accepts."""
        seen = len(self.effects)
        stop = time.monotonic() + deadline
        while True:
            for effect in self.effects[seen:]:
                if wanted(effect):
                    return effect
            seen = len(self.effects)
            left = stop - time.monotonic()
            assert left > 0, "no such effect in time; the output:\n" + "\n".join(self.lines[-40:])
            assert self.proc is not None and self.proc.stdout is not None
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except TimeoutError:
                continue
            assert raw, "codex app-server ended; its output:\n" + "\n".join(self.lines[-40:])
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            await self.apply(self.live.feed(line))

    async def answer(self, native_id: str, decision: Decision, reason: str | None = None) -> None:
        """Answer the latest ask under ``native_id``, as the approvals would (bound to it)."""
        asked = [e.ask for e in self.effects if isinstance(e, Asked)]
        ask = next(a for a in reversed(asked) if a.native_id == native_id)
        await self.apply(self.live.answer(native_id, decision, reason, digest=shown_digest(ask)))

    async def send(self, text: str) -> None:
        await self.apply(self.live.turn(text))

    async def interrupt(self) -> None:
        await self.apply(self.live.interrupt())
