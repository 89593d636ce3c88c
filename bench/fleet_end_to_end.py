"""``fleet_scale``'s first measurement, end to end: the real ``fleetwarden run`` on console
pipes spawns N stub agents one after the other, then ``ps`` is timed as the operator sees it
(with the agents heartbeating, then paused), with the orchestrator's memory and CPU."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.console_driver import Console
from bench.fleet_procs import (
    agent_groups,
    cpu_seconds,
    launch_waits_ms,
    proc_status_kb,
    proc_status_kb_threads,
)
from bench.fleet_trace import full_gc_in, window_parts
from bench.harness import stats

CONFIG = "defaults:\n  send_reply_wait_seconds: 0\n"
SUMMARY = re.compile(r"^(\d+) of (\d+) agents? running\s*$")
STARTED = re.compile(r"Agent \**(a\d+)\** started")


def end_to_end(
    workdir: Path,
    agents: int,
    rounds: int,
    log: Callable[[str], None],
    trace: Path | None,
    gc_freeze: bool = False,
) -> dict[str, Any]:
    config = workdir / "fleetwarden.yaml"
    config.write_text(CONFIG)
    bot = Console(workdir, config, trace, gc_freeze)
    try:
        # Idle orchestrator first (after the bot answered once).
        bot.send("ps")
        bot.expect(re.compile(r"No agents yet"), 0)
        rss_idle = proc_status_kb(bot.pid, "VmRSS")

        spawn_ms: list[float] = []
        cpu_spawn0 = cpu_seconds(bot.pid)
        t_all = time.perf_counter()
        for i in range(1, agents + 1):
            name = f"a{i:03d}"
            since = bot.mark()
            t0 = bot.send(f"spawn {name} --prompt hi")
            at, found, _ = bot.expect(STARTED, since)
            if found.group(1) != name:
                raise RuntimeError(f"expected {name} to start, saw {found.group(0)}")
            spawn_ms.append((at - t0) * 1000)
            if i % 50 == 0:
                log(f"  spawned {i}/{agents}")
        spawn_total = time.perf_counter() - t_all
        # The orchestrator's own CPU per spawn: what a busy host's wait does not blur.
        spawn_cpu_ms = (cpu_seconds(bot.pid) - cpu_spawn0) / agents * 1000
        waits = launch_waits_ms(workdir / ".fleetwarden")

        rss_after_spawn = proc_status_kb(bot.pid, "VmRSS")
        # Let every agent heartbeat at least once (stub: every 5 s) before timing ps.
        time.sleep(6)

        ps_ms: list[float] = []
        windows: list[tuple[float, float]] = []
        summary = ""
        for _ in range(rounds):
            since = bot.mark()
            t0 = bot.send("ps")
            at, found, _ = bot.expect(SUMMARY, since)
            windows.append((t0, at))
            if int(found.group(1)) != agents or int(found.group(2)) != agents:
                raise RuntimeError(f"ps says {found.group(0)!r}, expected {agents} of {agents}")
            summary = found.group(0)
            ps_ms.append((at - t0) * 1000)
            time.sleep(0.2)
        ps_lines = bot.mark() - since

        rss = proc_status_kb(bot.pid, "VmRSS")
        hwm = proc_status_kb(bot.pid, "VmHWM")
        threads = proc_status_kb_threads(bot.pid)

        # What the heartbeats alone cost the orchestrator: its CPU over a quiet window.
        window = 10.0
        cpu0 = cpu_seconds(bot.pid)
        time.sleep(window)
        cpu1 = cpu_seconds(bot.pid)
        idle_cpu_pct = (cpu1 - cpu0) / window * 100

        # The same ps with every agent paused (SIGSTOP): no heartbeats, no agent CPU —
        # what ps costs the orchestrator by itself.
        groups = agent_groups(workdir / ".fleetwarden")
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGSTOP)
        try:
            time.sleep(1.0)
            cpu_quiet0 = cpu_seconds(bot.pid)
            quiet_ms: list[float] = []
            quiet_windows: list[tuple[float, float]] = []
            for _ in range(rounds):
                since = bot.mark()
                t0 = bot.send("ps")
                at, _found, _ = bot.expect(SUMMARY, since)
                quiet_windows.append((t0, at))
                quiet_ms.append((at - t0) * 1000)
                time.sleep(0.2)
            ps_cpu_ms = (cpu_seconds(bot.pid) - cpu_quiet0) / rounds * 1000
        finally:
            for pgid in groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGCONT)
        code = bot.close()
        if code != 0:
            raise RuntimeError(f"fleetwarden exited {code}; stderr:\n{bot.stderr[-3000:]}")
        traced: dict[str, Any] = {}
        if trace is not None:
            calls = [json.loads(line) for line in trace.read_text().splitlines() if line]
            traced = {
                "ps_parts_p50_ms": window_parts(calls, windows),
                "ps_parts_paused_p50_ms": window_parts(calls, quiet_windows),
                "full_gc_in_ps_rounds": full_gc_in(calls, windows + quiet_windows),
                "live_sweeps": [
                    {"ms": c["ms"], "actions": c.get("n")}
                    for c in calls
                    if c["what"] == "watchdog_tick"
                ],
                "live_snapshots_ms": [
                    c["ms"] for c in calls if c["what"] == "Fleet.watchdog_snapshot"
                ],
                "heartbeat_write_ms": stats(
                    [c["ms"] for c in calls if c["what"] == "HeartbeatsStore.record_heartbeat"]
                    or [0.0]
                ),
            }
        return {
            **({"trace": traced} if traced else {}),
            "spawn_ms": stats(spawn_ms),
            "spawn_samples_ms": spawn_ms,
            # Outside Fleetwarden: the shim and bubblewrap starting, per spawn.
            "spawn_sandbox_ready_ms": stats(waits["sandbox_ready_ms"] or [0.0]),
            "spawn_agent_pid_ms": stats(waits["agent_pid_ms"] or [0.0]),
            "spawn_total_s": spawn_total,
            "spawn_cpu_ms": spawn_cpu_ms,
            "spawn_per_s": agents / spawn_total,
            "ps_ms": stats(ps_ms),
            "ps_samples_ms": ps_ms,
            "ps_reply_lines": ps_lines,
            "ps_agents_paused_ms": stats(quiet_ms),
            "ps_agents_paused_samples_ms": quiet_ms,
            "orchestrator_cpu_pct_heartbeats_only": idle_cpu_pct,
            "ps_cpu_ms_agents_paused": ps_cpu_ms,
            "ps_summary": summary,
            "rss_idle_mb": rss_idle / 1024,
            "rss_after_spawn_mb": rss_after_spawn / 1024,
            "rss_mb": rss / 1024,
            "hwm_mb": hwm / 1024,
            "threads": threads,
        }
    finally:
        bot.kill()
