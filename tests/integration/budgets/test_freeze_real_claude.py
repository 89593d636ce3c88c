"""A budget's ``freeze`` cutoff on the real Claude Code, running its TUI in tmux: it starts a
command in the background, then an answer's usage crosses the agent's budget, the budget
runs out as that answer settles at the metering proxy, and every process of the agent
(Claude Code, the shell and the command) is paused — frozen in its control group, or
stopped (SIGSTOP) where it has none — with the freeze recorded and shown by ``ps``;
``resume`` continues them all in the same tmux session, where a further request is refused
by the proxy (the budget is still out); stopping the agent leaves no process behind.

Wired as the app wires it: the fleet's provider URLs are the proxy's, the proxy consults the
budget service's policy, and the service carries out cutoffs through a
:class:`~fleet.supervisor.cutoffs.CutoffKeeper` on the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.backends.freezer import children_map, group_members, tree
from fleet.backends.tmux import TmuxBackend
from fleet.budgets.model import Groups
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.budgets.service import BudgetService
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import Budget, Cutoff, Scope, WindowKind, WindowSpec
from fleet.metering.config import MeteringSettings
from fleet.metering.counting.events import Outcome
from fleet.metering.proxy import MeteringProxy
from fleet.model import AgentSpec, RunHandle
from fleet.names import AgentName
from fleet.notices import Delivery, Notice
from fleet.runs.launch.launch_kit import LaunchKit, RunSpend
from fleet.runtimes import default_registry
from fleet.sandbox.host.procfs import process_start_ticks
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.cutoffs import CutoffKeeper
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import budget_stores, fleet_stores
from tests.fakes.provider.server import Accepted, FakeProvider, ToolCall, Turn, Usage
from tests.integration.paused import pauses, thaw_groups
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

NAME = AgentName("frosty")
KEY = "fake-freeze-key-0123456789abcdefghij"
REPLY = "fleetwarden-freeze-reply-5b2e"
LIMIT = 5_000
ANSWER = Usage(input=9_000, output=1_000)  # this answer alone crosses LIMIT
# First Claude Code starts a command in the background (a child process to freeze too);
# the answer to its result crosses the limit.
SLEEP = "sleep 600"
BACKGROUND = Turn(
    text="",
    tool=ToolCall("Bash", {"command": SLEEP, "description": "wait", "run_in_background": True}),
    usage=Usage(input=12, output=3),
)
DEADLINE = 60.0


class Board:
    """Where the budget service posts its notices; kept for the assertions."""

    def __init__(self) -> None:
        self.posted: list[str] = []

    async def post(self, notice: Notice) -> Delivery:
        self.posted.append(notice.markdown)
        return Delivery()


@dataclass
class Rig:
    fake: FakeProvider
    ledger: Ledger
    budgets: BudgetService
    proxy: MeteringProxy
    backend: TmuxBackend
    fleet: Fleet
    board: Board


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` after ``DEADLINE`` seconds."""
    deadline = time.monotonic() + DEADLINE
    delay = 0.02
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE} s: {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)


def model_requests(fake: FakeProvider) -> int:
    """How many model requests reached the provider."""
    return sum(1 for r in fake.requests if r.method == "POST" and r.path.endswith("/messages"))


def state_of(pid: int) -> str | None:
    """The process's state letter from ``/proc/PID/stat`` (``T``: stopped by a signal,
    ``Z``: dead, waiting for its parent to reap it); ``None`` once it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()[0]
    return None


def processes(handle: RunHandle) -> dict[int, str]:
    """The agent's processes and their states: the tree from the run's process (the agent)
    and the rest of its process group but for the group's leader, the backend's shim
    (Fleetwarden's own, waiting for the agent; see :func:`shim`). Zombies are left out:
    they are dead, and stay until their (stopped) parent reaps them."""
    pids = set(tree(handle.pid, children_map())) | set(group_members(handle.pgid))
    states = {pid: state_of(pid) for pid in pids - {handle.pgid}}
    return {pid: state for pid, state in states.items() if state not in (None, "Z")}


def cmdline(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    return []


def shim(handle: RunHandle) -> str | None:
    """The state of the run's shim, after checking it is the shim that leads the group."""
    assert handle.pgid != handle.pid
    assert any(arg.endswith("agent_shim.py") for arg in cmdline(handle.pgid))
    return state_of(handle.pgid)


def alive(known: dict[int, int | None]) -> list[int]:
    """The processes among ``known`` (pid → start ticks) still running (and not zombies)."""
    return [
        pid
        for pid, ticks in known.items()
        if ticks is not None and process_start_ticks(pid) == ticks and state_of(pid) != "Z"
    ]


def kill_all(handle: RunHandle) -> None:
    """SIGKILL every process of the run (a stopped one dies too, a frozen one once its
    group is thawed): the cleanup. Nothing when the group's leader is no longer the run's:
    its number, and its group's, may be any process's by now."""
    if process_start_ticks(handle.pgid) != handle.start_ticks:
        return
    pids = {*processes(handle), handle.pgid}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    thaw_groups(pids)


@pytest.fixture
async def freeze_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cli("claude")  # fails with "run bash tests/run.sh" when the CLIs are not installed
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; run `bash tests/run.sh`, which installs it")
    clock = SystemClock()
    state_dir = tmp_path / "state"
    work = tmp_path / "work"
    work.mkdir()
    turn = Turn(text=REPLY, usage=ANSWER)
    async with FakeProvider(default=turn, accept=Accepted(api_keys=frozenset({KEY}))) as fake:
        fake.add(BACKGROUND)
        ledger = await Ledger.open(tmp_path / "ledger.db", clock)
        board = Board()
        budget = Budget(
            Scope("agent", NAME),
            WindowSpec(WindowKind.ROLLING, timedelta(hours=5)),
            limit_tokens=LIMIT,
            cutoff=Cutoff.FREEZE,
        )
        policy = PacingPolicy(Groups())
        budgets = BudgetService(
            stores=budget_stores(ledger),
            budgets={budget.key: budget},
            groups=Groups(),
            timezone=ZoneInfo("UTC"),
            clock=clock,
            policy=policy,
            notices=board,
        )
        await budgets.start()
        proxy = MeteringProxy(
            state_dir,
            routes={"anthropic": ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC)},
            sink=ledger.metering.record_metering,
            settings=MeteringSettings(flush_interval=0.05),
            policy=policy,
            clock=clock,
        )
        await proxy.start()
        backend = TmuxBackend(f"fw-freeze-test-{uuid.uuid4().hex[:8]}")
        path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
        spec = AgentSpec(
            NAME,
            "claude",
            backend="tmux",
            prompt="say hi",
            workdir=work,
            secret_env=("ANTHROPIC_API_KEY",),
            allow=(f"Bash({SLEEP})",),  # the command runs without asking
        )
        fleet = real_fleet(
            stores=fleet_stores(ledger),
            clock=clock,
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"tmux": backend},
                settings=FleetSettings(state_dir=state_dir, reply_wait=0.5, stop_grace=5.0),
                environ={
                    "PATH": ":".join(dict.fromkeys(path)),
                    "LANG": "C.UTF-8",
                    "ANTHROPIC_API_KEY": KEY,
                },
                spend=RunSpend(provider_urls=proxy),
            ),
            roster={NAME: spec},
        )
        await fleet.start()
        await budgets.enforce_with(CutoffKeeper(fleet))
        try:
            yield Rig(fake, ledger, budgets, proxy, backend, fleet, board)
        finally:
            run = await ledger.runs.last_run(NAME)
            if run is not None and run.ended_at is None:
                kill_all(run.handle)
            await fleet.stop()
            await backend.shutdown_server()
            await proxy.stop()
            await budgets.drain()
            await ledger.close()


async def test_a_frozen_claude_code_stops_whole_and_resumes_refused(freeze_rig: Rig) -> None:
    await freeze_rig.fleet.spawn(LaunchRequest(NAME, collect=False))
    run = await freeze_rig.ledger.runs.last_run(NAME)
    assert run is not None and run.handle.backend == "tmux"
    handle = run.handle

    # Claude Code's TUI sends the prompt; the answer settles over the limit; it freezes.
    async def frozen() -> bool:
        if NAME not in {f.agent for f in await freeze_rig.fleet.frozen()}:
            return False
        states = processes(handle)
        return handle.pid in states and pauses(states) == {True}

    async def screen() -> str:
        return await freeze_rig.backend.snapshot(handle)

    try:
        await eventually(frozen, f"{NAME} frozen, every process paused")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{processes(handle)}\n{await screen()}") from None
    states = processes(handle)
    assert handle.pid in states, states  # Claude Code itself, and what it started: the
    # tool's shell, or the sleep it runs (the freeze may catch the shell before its exec)
    started = {pid: cmdline(pid) for pid in states}
    assert any(SLEEP in " ".join(line) for line in started.values()), started
    # Frozen with its group, or waiting: never stopped by a signal, as tmux would continue all
    assert shim(handle) != "T"
    known = {pid: process_start_ticks(pid) for pid in [*states, handle.pgid]}
    assert model_requests(freeze_rig.fake) == 2
    await freeze_rig.proxy.recorder.flush()
    spent = [
        e
        for e in await freeze_rig.ledger.metering.usage_events(agent=NAME)
        if e.outcome is Outcome.OK
    ]
    assert sum(e.tokens.total for e in spent) >= LIMIT
    (freeze,) = await freeze_rig.fleet.frozen()
    assert (freeze.agent, freeze.budget) == (NAME, f"agent:{NAME}")
    (status,) = await freeze_rig.fleet.ps()
    assert status.frozen is not None and "reached its limit" in status.frozen

    async def told() -> bool:  # the board is told after the freeze, on its own
        return any("reached its limit" in text for text in freeze_rig.board.posted)

    await eventually(told, f"the board told of {NAME}'s freeze")
    # Still paused on a second look: nothing (tmux included) continued any of them.
    assert pauses(processes(handle)) == {True}

    # resume NAME: every process continues, in the same tmux session.
    assert await freeze_rig.fleet.thaw(NAME)
    assert await freeze_rig.fleet.frozen() == []

    async def running() -> bool:
        states = processes(handle)
        return bool(states) and True not in pauses(states)

    await eventually(running, f"every process of {NAME} continued")
    assert NAME in await freeze_rig.backend.sessions()
    assert (await freeze_rig.fleet.ps())[0].frozen is None

    # The budget is still out: its next request is refused by the proxy, never forwarded.
    async def refused() -> bool:
        await freeze_rig.proxy.recorder.flush()
        events = await freeze_rig.ledger.metering.usage_events(agent=NAME)
        return any(e.outcome is Outcome.REFUSED and e.status == 429 for e in events)

    await freeze_rig.fleet.send(NAME, "say more")
    await eventually(refused, "a further request of the thawed agent refused with 429")
    assert model_requests(freeze_rig.fake) == 2

    # stop: nothing of the run is left.
    await freeze_rig.fleet.stop_agent(NAME)

    async def gone() -> bool:
        return not alive(known)

    await eventually(gone, f"every process of {NAME} gone")
    assert NAME not in await freeze_rig.backend.sessions()
