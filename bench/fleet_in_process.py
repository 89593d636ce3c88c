"""``fleet_scale``'s second measurement, in process: a new :class:`~fleet.supervisor.fleet.Fleet`
on the same ledger reattaches the agents the bot left running, and one watchdog sweep is
timed, then its parts and the ledger queries ``ps`` makes per agent, then both again under
the heartbeat writes of a running app."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from bench.fleet_procs import proc_status_kb
from bench.harness import stats

BULK_LAST_RUNS = "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY agent)"
BULK_LAST_HEARTBEAT = "SELECT agent, MAX(at) FROM heartbeats GROUP BY agent"
HEARTBEAT_INTERVAL = 5.0  # the stub's default


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = await fn()
    return (time.perf_counter() - t0) * 1000, result


async def in_process(state_dir: Path, agents: int, rounds: int) -> dict[str, Any]:
    from fleet.ledger import Ledger
    from fleet.runs.launch.launch_kit import LaunchKit
    from fleet.runs.layout import AgentPaths, mtime
    from fleet.runtimes import default_registry
    from fleet.supervisor.fleet import FleetSettings
    from fleet.timing.clock import SystemClock
    from fleet.watchdog.decisions import sweep
    from scheduler.context import JobContext
    from scheduler.watchdog_job import watchdog_tick
    from tests.fakes.doubles.launches import real_fleet
    from tests.fakes.doubles.stores import fleet_stores

    clock = SystemClock()
    ledger = await Ledger.open(state_dir / "ledger.db", clock)
    backends = _backends(state_dir)  # as bot.app.assembly.default_backends builds them
    kit = LaunchKit(
        runtimes=default_registry(),
        backends=backends,
        settings=FleetSettings(state_dir=state_dir),
        environ=dict(os.environ),
    )
    fleet = real_fleet(stores=fleet_stores(ledger), clock=clock, kit=kit)
    try:
        t0 = time.perf_counter()
        await fleet.start()
        reattach_ms = (time.perf_counter() - t0) * 1000
        statuses = await fleet.ps()
        live = sum(1 for s in statuses if s.state.is_live)
        if live != agents:
            raise RuntimeError(f"reattached fleet has {live} live agents, expected {agents}")
        # The watchdog job reads only the fleet from its context.
        ctx = cast(JobContext, SimpleNamespace(fleet=fleet))

        warm_ms, warm_actions = await timed(lambda: watchdog_tick(ctx))
        tick_ms: list[float] = []
        actions_seen = 0
        for _ in range(rounds):
            ms, actions = await timed(lambda: watchdog_tick(ctx))
            tick_ms.append(ms)
            actions_seen += len(actions)

        # The parts, for the findings.
        snap_ms: list[float] = []
        decide_ms: list[float] = []
        for _ in range(rounds):
            ms, snap = await timed(fleet.watchdog_snapshot)
            snap_ms.append(ms)
            t0 = time.perf_counter()
            sweep(snap.views, snap.now, snap.defaults)
            decide_ms.append((time.perf_counter() - t0) * 1000)

        names = [r.name for r in await ledger.agents.list_agents()]
        parts: dict[str, list[float]] = {
            k: []
            for k in (
                "list_agents",
                "last_heartbeats",
                "last_run_x_n",
                "last_heartbeat_x_n",
                "log_mtime_x_n",
                "one_query",
                "fleet_ps",
                "fleet_drift",
                "render_ps",
                "console_to_plain",
                "alt_bulk_last_runs",
                "alt_bulk_last_heartbeat",
            )
        }
        from bot.render import fleet as render
        from connectors.markdown import to_plain

        for _ in range(rounds):
            parts["list_agents"].append((await timed(ledger.agents.list_agents))[0])
            parts["last_heartbeats"].append((await timed(ledger.heartbeats.last_heartbeats))[0])

            async def runs() -> None:
                for n in names:
                    await ledger.runs.last_run(n)

            async def beats() -> None:
                for n in names:
                    await ledger.heartbeats.last_heartbeat(n)

            parts["last_run_x_n"].append((await timed(runs))[0])
            parts["last_heartbeat_x_n"].append((await timed(beats))[0])
            t0 = time.perf_counter()
            for n in names:
                mtime(AgentPaths.of(state_dir, n).log)
            parts["log_mtime_x_n"].append((time.perf_counter() - t0) * 1000)
            parts["one_query"].append((await timed(lambda: ledger.runs.last_run(names[0])))[0])
            ms, sts = await timed(fleet.ps)
            parts["fleet_ps"].append(ms)
            parts["fleet_drift"].append((await timed(fleet.drift))[0])
            # What one query each would cost instead of N (not product code: a what-if,
            # through the ledger's own connection and lock).
            parts["alt_bulk_last_runs"].append(
                (await timed(lambda: ledger.runs._all(BULK_LAST_RUNS, ())))[0]
            )
            parts["alt_bulk_last_heartbeat"].append(
                (await timed(lambda: ledger.heartbeats._all(BULK_LAST_HEARTBEAT, ())))[0]
            )
            t0 = time.perf_counter()
            markdown = render.ps(sts, clock.now(), ())
            parts["render_ps"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            to_plain(markdown)
            parts["console_to_plain"].append((time.perf_counter() - t0) * 1000)

        # Sweep and ps again while heartbeats are written to the ledger as the running
        # app does (one record_heartbeat transaction per beat, N/5 beats per second).
        loaded_tick: list[float] = []
        loaded_ps: list[float] = []
        beats_written = 0

        async def beat_load() -> None:
            # Each beat its own task, as each is its own request in the app: beats that
            # arrive while one is written wait for the next (group) write together.
            nonlocal beats_written
            interval = HEARTBEAT_INTERVAL / len(names)
            writing: set[asyncio.Task[None]] = set()
            i = 0
            try:
                while True:
                    beat = ledger.heartbeats.record_heartbeat(names[i % len(names)], "waiting")
                    task = asyncio.create_task(beat)
                    writing.add(task)
                    task.add_done_callback(writing.discard)
                    beats_written += 1
                    i += 1
                    await asyncio.sleep(interval)
            finally:
                await asyncio.gather(*writing, return_exceptions=True)

        load = asyncio.create_task(beat_load())
        try:
            t_load = time.perf_counter()
            for _ in range(rounds):
                loaded_tick.append((await timed(lambda: watchdog_tick(ctx)))[0])
                loaded_ps.append((await timed(fleet.ps))[0])
                await asyncio.sleep(0.05)
            beat_rate = beats_written / (time.perf_counter() - t_load)
        finally:
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)

        return {
            "reattach_ms": reattach_ms,
            "warmup_sweep_ms": warm_ms,
            "warmup_actions": len(warm_actions),
            "sweep_ms": stats(tick_ms),
            "sweep_samples_ms": tick_ms,
            "steady_actions": actions_seen,
            "snapshot_ms": stats(snap_ms),
            "decide_ms": stats(decide_ms),
            "parts_p50_ms": {k: statistics.median(v) for k, v in parts.items()},
            "sweep_under_beats_ms": stats(loaded_tick),
            "fleet_ps_under_beats_ms": stats(loaded_ps),
            "beats_per_s": beat_rate,
            "rss_bench_process_mb": proc_status_kb(os.getpid(), "VmRSS") / 1024,
        }
    finally:
        await fleet.stop()
        await ledger.close()


def _backends(state_dir: Path) -> dict[str, Any]:
    import hashlib

    from fleet.backends.process import SubprocessBackend
    from fleet.backends.tmux import TmuxBackend

    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
    return {"subprocess": SubprocessBackend(), "tmux": TmuxBackend(f"fleetwarden-{digest}")}
