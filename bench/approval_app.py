"""The approval benchmark's full path: Fleetwarden's app in this process (its Matrix
connector, router, approvals service and feed), with one stub agent running, asked as an
agent's CLI asks — :meth:`Approvals.open` — and answered by the operator's reaction, which
the service delivers to the CLI's channel."""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.matrix_watch import Arrivals, Watcher
from bench.processes import BenchError
from bot.app.lifecycle import App
from bot.config.reading.load import Offered, load_config
from fleet.ledger.records.approvals import ApprovalRequest, Ask
from fleet.runtimes import default_registry
from fleet.timing.clock import SystemClock
from tests.matrix_e2ee_user import EncryptedUser

PASSWORD = "correct horse battery staple"
CHANNEL = "bench-cli"
START_TIMEOUT = 60.0


@dataclass
class AppParty:
    """Requests opened in the app's approvals service for ``agent``'s run; an answer
    arrives when the service delivers it to :data:`CHANNEL`."""

    room: str
    app: App
    agent: str
    run_id: int
    bot: str
    operator: Watcher
    within: float
    delivered: Arrivals = field(default_factory=Arrivals)
    _requests: dict[str, str] = field(default_factory=dict)  # message event id -> request id

    async def deliver(self, request: ApprovalRequest) -> None:
        self.delivered.arrived(request.id, time.perf_counter())

    async def request(self, index: int) -> tuple[float, float, str]:
        ask = Ask(f"bench-{index}-{uuid.uuid4().hex[:8]}", "Bash", "rm -rf build")
        t0 = time.perf_counter()
        opened = await self.app.approvals.open(
            agent=self.agent,
            run_id=self.run_id,
            channel=CHANNEL,
            ask=ask,
            wait_seconds=600,
            max_open=5,
            starter=None,  # found from the run: the operator spawned it
        )

        def shown(source: dict[str, Any]) -> bool:
            content = source.get("content") or {}
            relation = (content.get("m.relates_to") or {}).get("rel_type")
            return (
                source.get("sender") == self.bot
                and relation != "m.replace"
                and f"`{opened.id}`" in str(content.get("body", ""))
            )

        at, source = await self.operator.match(shown, self.within, f"request {opened.id}")
        message = str(source["event_id"])
        self._requests[message] = opened.id
        return t0, at, message

    async def answered(self, message: str, reaction: str) -> float:
        request = self._requests.pop(message)
        return await self.delivered.seen(request, self.within, f"answer to {request}")


@contextlib.asynccontextmanager
async def party(
    root: Path,
    homeserver: str,
    bot: Any,
    op: EncryptedUser,
    op_watch: Watcher,
    room: str,
    args: argparse.Namespace,
) -> AsyncIterator[AppParty]:
    """The app serving ``room`` as ``bot``, with agent ``c1`` (the stub) started by the
    operator from chat; stopped with its agent at the end."""
    workdir = root / "app"
    workdir.mkdir()
    config_path = workdir / "fleetwarden.yaml"
    config_path.write_text(
        "state_dir: ./state\n"
        "log_level: warning\n"
        "operators:\n"
        f"  - {{id: '{op.user_id}', role: operator}}\n"
        "connectors:\n"
        "  matrix:\n"
        f"    homeserver: {homeserver}\n"
        f"    user_id: '{bot.user_id}'\n"
        "    password_env: FW_BOT_PASSWORD\n"
        f"    rooms: ['{room}']\n"
        f"    sync_timeout_seconds: {args.sync_timeout:g}\n"
    )
    environ = {"FW_BOT_PASSWORD": PASSWORD}
    config = load_config(
        config_path,
        environ,
        offered=Offered(default_registry().names(), ("subprocess",)),
        cwd=workdir,
    )
    app = App(config, clock=SystemClock(), environ=environ)
    try:
        await app.start()
        await op_watch.until_joined(room, bot.user_id, START_TIMEOUT)
        await op.say(room, "!spawn c1 --runtime stub --prompt wait")
        await op_watch.match(
            lambda s: "Agent **c1** started" in str((s.get("content") or {}).get("body", "")),
            START_TIMEOUT,
            "c1's start",
        )
        runs = await app.fleet.outputs.open_runs()
        if len(runs) != 1:
            raise BenchError(f"expected one open run of c1, found {runs}")
        [(agent, run_id)] = runs
        made = AppParty(room, app, agent, run_id, bot.user_id, op_watch, args.round_timeout)
        await app.approvals.register(CHANNEL, made.deliver)
        yield made
    finally:
        with contextlib.suppress(RuntimeError):  # the app did not get as far as its fleet
            for status in await app.fleet.ps():
                if status.state.is_live:
                    await app.fleet.stop_agent(status.name, force=True)
        await app.stop()
