"""Fleet scale: N stub agents under one Fleetwarden — ``ps`` latency, watchdog sweep, RSS.

Run from the repository root::

    python -m bench.fleet_scale [--agents 20,200,1000] [--rounds 20] [--json out.json]
        [--trace] [--gc-freeze] [--keep]

Each fleet size in ``--agents`` is measured in turn, in a temp dir of its own, and the
sizes are reported side by side: per agent, what a ``ps`` and a sweep cost at the largest
against the smallest, and the goals at the largest (:data:`SCALE_GOALS`). 1,000 sandboxed
stub agents take about 17 GB of memory on the host.

Two measurements, both against the real code, in a temporary directory:

1. End to end. The real ``fleetwarden run`` (console connector, pipes on stdin and
   stdout, a config with ``defaults: {send_reply_wait_seconds: 0}`` so that ``spawn``
   does not wait for the agent's first output) spawns N stub agents one after the other
   (``spawn a001 --prompt hi`` ...), each awaited until "Agent aNNN started". Then ``ps``
   is typed ``--rounds`` times, each timed from the line written to the arrival of its
   final "N of N agents running" line; and the orchestrator's VmRSS / VmHWM are read
   from ``/proc/<pid>/status``. Stub agents heartbeat every 5 s, so the orchestrator is
   also taking N/5 heartbeats per second while ``ps`` is timed, as it would in service.
2. In process. The bot is ended with EOF (agents keep running, as designed); a real
   :class:`fleet.supervisor.fleet.Fleet` on the same ledger reattaches them, and one watchdog
   sweep — ``watchdog_snapshot()`` + ``fleet.watchdog.decisions.sweep`` + ``apply_watchdog``,
   i.e. :func:`scheduler.watchdog_job.watchdog_tick` — is timed ``--rounds`` times (after one
   warm-up sweep, which may mark waiting agents idle). For the findings, the same
   process also times the parts: the ledger queries ``ps`` and the sweep make per agent.

``--trace`` runs the orchestrator through this module with timing wrappers around the
``ps`` and watchdog paths and ``gc.callbacks``, and reports where each ``ps`` round's
time went; ``--gc-freeze`` (a what-if, implies ``--trace``) also calls ``gc.freeze()``
in it after start-up. Neither changes product code.

Every agent's process group is killed at the end, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

GOALS = {"ps_ms": 200.0, "sweep_ms": 100.0, "rss_mb": 150.0}
# At the largest fleet of a run (1,000 agents), against its smallest (20).
SCALE_GOALS = {
    "ps_p95_ms": 250.0,  # the `ps` reply, p95
    "per_agent_ratio": 1.5,  # a `ps`'s and a sweep's cost per agent, largest over smallest
    "idle_cpu_pct": 10.0,  # the orchestrator's CPU with agents only heartbeating
    "rss_mb_per_agent": 0.5,  # the orchestrator's RSS growth per agent
}
FLEETWARDEN = Path(sys.executable).with_name("fleetwarden")
REPO = Path(__file__).resolve().parent.parent
TRACED = "_traced-orchestrator"
CONFIG = "defaults:\n  send_reply_wait_seconds: 0\n"
SUMMARY = re.compile(r"^(\d+) of (\d+) agents? running\s*$")
BULK_LAST_RUNS = "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY agent)"
BULK_LAST_HEARTBEAT = "SELECT agent, MAX(at) FROM heartbeats GROUP BY agent"
HEARTBEAT_INTERVAL = 5.0  # the stub's default
STARTED = re.compile(r"Agent \**(a\d+)\** started")


# --- the console driver ----------------------------------------------------------------


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


# --- helpers -------------------------------------------------------------------------------


def proc_status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        # nearest rank: the smallest sample with at least p % of them at or below it
        k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
        return ordered[k]

    return {
        "n": len(ordered),
        "min": ordered[0],
        "p50": statistics.median(ordered),
        "p95": pct(95),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid``, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def agent_groups(state_dir: Path) -> set[int]:
    """The process groups of the agents under ``state_dir`` that still exist."""
    groups: set[int] = set()
    own = os.getpgid(0)
    pids: set[int] = set()
    # Find them in /proc by their command line (the shim names its run dir) or working
    # directory (the agent) — never by the pids in agent.pid files: a stale one may by
    # now belong to an unrelated process, whose group would be killed.
    marker = str(state_dir)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
            if marker in cmdline or cwd == marker or cwd.startswith(marker + os.sep):
                pids.add(int(entry))
    for pid in pids:
        with contextlib.suppress(OSError):
            pgid = os.getpgid(pid)
            if pgid > 1 and pgid != own:
                groups.add(pgid)
    return groups


def kill_agents(state_dir: Path) -> int:
    """SIGKILL every agent's process group found under ``state_dir``; how many groups."""
    groups = agent_groups(state_dir)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGCONT)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    time.sleep(0.5)  # a launch under way may still fork; sweep once more
    late = agent_groups(state_dir) - groups
    for pgid in late:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return len(groups | late)


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = await fn()
    return (time.perf_counter() - t0) * 1000, result


# --- 1: end to end -------------------------------------------------------------------------


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
                    [c["ms"] for c in calls if c["what"] == "Ledger.record_heartbeat"] or [0.0]
                ),
            }
        return {
            **({"trace": traced} if traced else {}),
            "spawn_ms": stats(spawn_ms),
            "spawn_total_s": spawn_total,
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


def proc_status_kb_threads(pid: int) -> int:
    return proc_status_kb(pid, "Threads")


def window_parts(calls: list[dict[str, Any]], windows: list[tuple[float, float]]) -> dict[str, Any]:
    """Per traced function: p50 over the rounds of its total time (and calls) per round."""
    per: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for t0, t1 in windows:
        inside = [c for c in calls if t0 <= c["start"] <= t1]
        for name in {c["what"] for c in calls}:
            mine = [c["ms"] for c in inside if c["what"] == name]
            per.setdefault(name, []).append(sum(mine))
            counts.setdefault(name, []).append(len(mine))
    return {
        name: {"ms": round(statistics.median(v), 2), "calls": statistics.median(counts[name])}
        for name, v in sorted(per.items())
    }


def full_gc_in(calls: list[dict[str, Any]], windows: list[tuple[float, float]]) -> dict[str, Any]:
    """How many ``ps`` rounds had a full (generation 2) collection inside, and its times."""
    hit = [
        sum(c["ms"] for c in calls if c["what"] == "gc.gen2" and t0 <= c["start"] <= t1)
        for t0, t1 in windows
    ]
    ms = [x for x in hit if x > 0]
    return {"rounds": len(windows), "with_full_gc": len(ms), "ms": ms}


def traced_orchestrator(trace_file: str, freeze: str, argv: list[str]) -> None:
    """``fleetwarden`` as its console script runs it, with timing wrappers (bench only)."""
    import functools
    import importlib

    out = open(trace_file, "a", buffering=1)  # noqa: SIM115  (lives as long as the process)

    def note(what: str, start: float, result: Any = None, **extra: Any) -> None:
        ms = (time.perf_counter() - start) * 1000
        entry: dict[str, Any] = {"what": what, "start": start, "ms": ms, **extra}
        if isinstance(result, list):
            entry["n"] = len(result)  # the watchdog's actions
        out.write(json.dumps(entry) + "\n")

    def wrap(module: str, attr: str, label: str | None = None) -> None:
        owner_name, _, name = attr.rpartition(".")
        owner: Any = importlib.import_module(module)
        if owner_name:
            owner = getattr(owner, owner_name)
        original = getattr(owner, name)
        what = label or attr
        if asyncio.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed_async(*a: Any, **k: Any) -> Any:
                start = time.perf_counter()
                result = None
                try:
                    result = await original(*a, **k)
                    return result
                finally:
                    note(what, start, result)

            setattr(owner, name, timed_async)
        else:

            @functools.wraps(original)
            def timed_sync(*a: Any, **k: Any) -> Any:
                start = time.perf_counter()
                try:
                    return original(*a, **k)
                finally:
                    note(what, start)

            setattr(owner, name, timed_sync)

    for module, attr, *label in (
        ("bot.commands.router", "Router.handle"),
        ("bot.chat.threads", "Threads.deliver"),
        ("bot.commands.router", "Router._run"),
        ("bot.commands.grammar", "Grammar.parse"),
        ("connectors.console", "ConsoleConnector.send"),
        ("fleet.ledger.store", "Ledger.claim_event"),
        ("bot.commands.handlers.agents", "Handlers.ps"),
        ("bot.render.fleet", "ps", "render.ps"),
        ("connectors.console", "to_plain"),
        ("fleet.supervisor.fleet", "Fleet.ps"),
        ("fleet.supervisor.fleet", "Fleet.drift"),
        ("fleet.supervisor.fleet", "Fleet.watchdog_snapshot"),
        ("fleet.supervisor.fleet", "Fleet.apply_watchdog"),
        ("fleet.ledger.store", "Ledger.list_agents"),
        ("fleet.ledger.store", "Ledger.last_run"),
        ("fleet.ledger.store", "Ledger.last_heartbeat"),
        ("fleet.ledger.store", "Ledger.record_audit"),
        ("fleet.ledger.store", "Ledger.record_heartbeat"),
        ("scheduler.watchdog_job", "watchdog_tick"),
    ):
        wrap(module, attr, *label)
    import gc

    gc_started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started.append(time.perf_counter())
        elif gc_started:
            generation = info["generation"]
            # After a full collection: how many objects the collector tracks.
            tracked = len(gc.get_objects()) if generation == 2 else None
            note(f"gc.gen{generation}", gc_started.pop(), tracked=tracked)

    gc.callbacks.append(on_gc)
    if freeze == "gc-freeze":
        # What-if: move everything alive after start-up out of the collector's view, at
        # the first command (the app is up by then), so full collections skip it.
        from bot.commands.router import Router

        handle = Router.handle

        async def handle_then_freeze(self: Any, *a: Any, **k: Any) -> Any:
            if not getattr(Router, "_bench_frozen", False):
                Router._bench_frozen = True  # type: ignore[attr-defined]
                gc.collect()
                gc.freeze()
                note(f"gc.freeze({gc.get_freeze_count()} objects)", time.perf_counter())
            return await handle(self, *a, **k)

        Router.handle = handle_then_freeze  # type: ignore[method-assign]
    from bot.cli.main import main as cli_main

    cli_main(argv)


# --- 2: in process -------------------------------------------------------------------------


async def in_process(state_dir: Path, agents: int, rounds: int) -> dict[str, Any]:
    from fleet.clock import SystemClock
    from fleet.ledger import Ledger
    from fleet.runs.layout import AgentPaths, mtime
    from fleet.runtimes import default_registry
    from fleet.supervisor.fleet import Fleet, FleetSettings
    from fleet.watchdog.decisions import sweep
    from scheduler.context import JobContext
    from scheduler.watchdog_job import watchdog_tick

    clock = SystemClock()
    ledger = await Ledger.open(state_dir / "ledger.db", clock)
    backends = _backends(state_dir)  # as bot.app.assembly.default_backends builds them
    fleet = Fleet(
        ledger=ledger,
        runtimes=default_registry(),
        backends=backends,
        settings=FleetSettings(state_dir=state_dir),
        clock=clock,
        environ=dict(os.environ),
    )
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

        names = [r.name for r in await ledger.list_agents()]
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
            parts["list_agents"].append((await timed(ledger.list_agents))[0])
            parts["last_heartbeats"].append((await timed(ledger.last_heartbeats))[0])

            async def runs() -> None:
                for n in names:
                    await ledger.last_run(n)

            async def beats() -> None:
                for n in names:
                    await ledger.last_heartbeat(n)

            parts["last_run_x_n"].append((await timed(runs))[0])
            parts["last_heartbeat_x_n"].append((await timed(beats))[0])
            t0 = time.perf_counter()
            for n in names:
                mtime(AgentPaths.of(state_dir, n).log)
            parts["log_mtime_x_n"].append((time.perf_counter() - t0) * 1000)
            parts["one_query"].append((await timed(lambda: ledger.last_run(names[0])))[0])
            ms, sts = await timed(fleet.ps)
            parts["fleet_ps"].append(ms)
            parts["fleet_drift"].append((await timed(fleet.drift))[0])
            # What one query each would cost instead of N (not product code: a what-if,
            # through the ledger's own connection and lock).
            parts["alt_bulk_last_runs"].append(
                (await timed(lambda: ledger._all(BULK_LAST_RUNS, ())))[0]
            )
            parts["alt_bulk_last_heartbeat"].append(
                (await timed(lambda: ledger._all(BULK_LAST_HEARTBEAT, ())))[0]
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
            nonlocal beats_written
            interval = HEARTBEAT_INTERVAL / len(names)
            i = 0
            while True:
                await ledger.record_heartbeat(names[i % len(names)], "waiting")
                beats_written += 1
                i += 1
                await asyncio.sleep(interval)

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


# --- main ------------------------------------------------------------------------------------


def verdict(value: float, goal: float) -> str:
    return "met" if value <= goal else "MISSED"


def report(result: dict[str, Any]) -> str:
    e2e, inp = result["end_to_end"], result["in_process"]
    n = result["agents"]
    rows = [
        ("`ps` reply, p50", e2e["ps_ms"]["p50"], "ms", GOALS["ps_ms"]),
        ("`ps` reply, p95", e2e["ps_ms"]["p95"], "ms", GOALS["ps_ms"]),
        ("`ps` reply, max", e2e["ps_ms"]["max"], "ms", GOALS["ps_ms"]),
        ("watchdog sweep, p50", inp["sweep_ms"]["p50"], "ms", GOALS["sweep_ms"]),
        ("watchdog sweep, max", inp["sweep_ms"]["max"], "ms", GOALS["sweep_ms"]),
        ("orchestrator RSS (VmRSS)", e2e["rss_mb"], "MB", GOALS["rss_mb"]),
        ("orchestrator peak RSS (VmHWM)", e2e["hwm_mb"], "MB", GOALS["rss_mb"]),
    ]
    out = [
        f"{n} stub agents, {result['cpus']} CPUs, {result['rounds']} rounds; load average "
        f"{result['loadavg_start']} at the start, {result['loadavg_end']} at the end",
        "",
        "| measure | result | goal | |",
        "|---|---:|---:|---|",
    ]
    for label, value, unit, goal in rows:
        out.append(
            f"| {label} | {value:.1f} {unit} | ≤ {goal:.0f} {unit} | {verdict(value, goal)} |"
        )
    out += [
        "",
        f"spawn: {e2e['spawn_per_s']:.1f} agents/s ({e2e['spawn_total_s']:.1f} s for {n}; "
        f"per spawn p50 {e2e['spawn_ms']['p50']:.1f} ms, max {e2e['spawn_ms']['max']:.1f} ms)",
        f"RSS: idle {e2e['rss_idle_mb']:.1f} MB, "
        f"after spawning {e2e['rss_after_spawn_mb']:.1f} MB, "
        f"after the ps rounds {e2e['rss_mb']:.1f} MB; {e2e['threads']} threads",
        f"reattach of {n} agents by a new Fleet: {inp['reattach_ms']:.0f} ms; warm-up sweep "
        f"{inp['warmup_sweep_ms']:.1f} ms with {inp['warmup_actions']} action(s), then "
        f"{inp['steady_actions']} action(s) in {result['rounds']} sweeps",
        f"sweep parts (p50): snapshot {inp['snapshot_ms']['p50']:.1f} ms, "
        f"decide (pure sweep) {inp['decide_ms']['p50']:.2f} ms",
        f"`ps` with all agents paused (SIGSTOP: no heartbeats, no agent CPU): p50 "
        f"{e2e['ps_agents_paused_ms']['p50']:.1f} ms, "
        f"p95 {e2e['ps_agents_paused_ms']['p95']:.1f} ms, "
        f"max {e2e['ps_agents_paused_ms']['max']:.1f} ms; orchestrator CPU per `ps` "
        f"{e2e['ps_cpu_ms_agents_paused']:.0f} ms",
        "orchestrator CPU with agents only heartbeating: "
        f"{e2e['orchestrator_cpu_pct_heartbeats_only']:.1f} % of a core",
        f"in process under {inp['beats_per_s']:.0f} ledger heartbeat writes/s: sweep p50 "
        f"{inp['sweep_under_beats_ms']['p50']:.1f} / "
        f"max {inp['sweep_under_beats_ms']['max']:.1f} ms; "
        f"Fleet.ps p50 {inp['fleet_ps_under_beats_ms']['p50']:.1f} / max "
        f"{inp['fleet_ps_under_beats_ms']['max']:.1f} ms",
        "ledger parts, in process, p50 ms: "
        + ", ".join(f"{k} {v:.2f}" for k, v in inp["parts_p50_ms"].items()),
    ]
    return "\n".join(out)


def trace_report(trace: dict[str, Any]) -> str:
    out = [
        "",
        "traced orchestrator, per `ps` round (p50 of per-round totals; nested times overlap):",
    ]
    out.append("| function | with heartbeats: ms (calls) | agents paused: ms (calls) |")
    out.append("|---|---:|---:|")
    live, quiet = trace["ps_parts_p50_ms"], trace["ps_parts_paused_p50_ms"]
    for name in live:
        a, b = live[name], quiet.get(name, {"ms": 0, "calls": 0})
        if a["calls"] or b["calls"]:
            out.append(
                f"| {name} | {a['ms']:.1f} ({a['calls']:g}) | {b['ms']:.1f} ({b['calls']:g}) |"
            )
    full = trace["full_gc_in_ps_rounds"]
    if full["ms"]:
        out.append(
            f"full GC (gen 2) inside {full['with_full_gc']} of {full['rounds']} `ps` rounds: "
            f"median {statistics.median(full['ms']):.0f} ms, max {max(full['ms']):.0f} ms"
        )
    hb = trace["heartbeat_write_ms"]
    out.append(
        f"heartbeat ledger write (incl. waiting for the ledger lock): p50 {hb['p50']:.2f} ms, "
        f"max {hb['max']:.1f} ms over {hb['n']} beats"
    )
    sweeps = (
        ", ".join(f"{x['ms']:.1f} ms ({x['actions']} actions)" for x in trace["live_sweeps"])
        or "none"
    )
    out.append(f"watchdog sweeps in the live bot (every 30 s): {sweeps}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [TRACED]:
        traced_orchestrator(argv[1], argv[2], argv[3:])
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet_scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--agents",
        default="20,200,1000",
        help="fleet sizes, comma-separated, each measured in turn (default 20,200,1000)",
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="run the orchestrator with timing wrappers and report where ps time goes",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="what-if (implies --trace): gc.freeze() in the orchestrator after start-up",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (agents are still killed)"
    )
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(n) for n in args.agents.split(",")})
    except ValueError:
        parser.error(f"--agents: comma-separated whole numbers, not {args.agents!r}")
    if not FLEETWARDEN.exists():
        print(f"no {FLEETWARDEN}; run with the project's venv python", file=sys.stderr)
        return 2

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so that the finally below still kills the agents

    signal.signal(signal.SIGTERM, interrupted)
    results = []
    for agents in sizes:
        results.append(one_size(agents, args, log))
        print(report(results[-1]))
        if "trace" in results[-1]["end_to_end"]:
            print(trace_report(results[-1]["end_to_end"]["trace"]))
        print()
    if len(results) > 1:
        print(scaling_report(results))
    if args.json:
        args.json.write_text(json.dumps({"sizes": results, "goals": SCALE_GOALS}, indent=2) + "\n")
    return 0


def one_size(agents: int, args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Both measurements with ``agents`` stub agents, in a temp dir of their own."""
    workdir = Path(tempfile.mkdtemp(prefix=f"fleet-scale-{agents}-"))
    state_dir = workdir / ".fleetwarden"
    load_start = loadavg()
    try:
        log(f"workdir {workdir}; 1/2: end to end with {agents} agents")
        trace = workdir / "trace.jsonl" if args.trace or args.gc_freeze else None
        e2e = end_to_end(workdir, agents, args.rounds, log, trace, args.gc_freeze)
        log("2/2: in process (a new Fleet reattaching the agents)")
        inp = asyncio.run(in_process(state_dir, agents, args.rounds))
        return {
            "agents": agents,
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
            # Other work on the machine skews every figure: note how busy it was.
            "loadavg_start": load_start,
            "loadavg_end": loadavg(),
            "goals": GOALS,
            "end_to_end": e2e,
            "in_process": inp,
        }
    finally:
        killed = kill_agents(state_dir)
        log(f"killed {killed} agent process group(s)")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def per_agent(result: dict[str, Any]) -> dict[str, float]:
    """What one agent adds to a `ps` (the orchestrator's CPU, agents paused; its reply's
    p50) and to a watchdog sweep (p50), and to the orchestrator's RSS."""
    e2e, inp, n = result["end_to_end"], result["in_process"], result["agents"]
    return {
        "ps_cpu_ms": e2e["ps_cpu_ms_agents_paused"] / n,
        "ps_p50_ms": e2e["ps_ms"]["p50"] / n,
        "sweep_p50_ms": inp["sweep_ms"]["p50"] / n,
        "rss_mb": (e2e["rss_mb"] - e2e["rss_idle_mb"]) / n,
    }


def scaling_report(results: list[dict[str, Any]]) -> str:
    """The sizes side by side, and the goals at the largest against the smallest."""
    small, large = results[0], results[-1]
    rows: list[tuple[str, Callable[[dict[str, Any]], float]]] = [
        ("`ps` reply p50 (ms)", lambda r: r["end_to_end"]["ps_ms"]["p50"]),
        ("`ps` reply p95 (ms)", lambda r: r["end_to_end"]["ps_ms"]["p95"]),
        (
            "orchestrator CPU per `ps` (ms, agents paused)",
            lambda r: r["end_to_end"]["ps_cpu_ms_agents_paused"],
        ),
        ("watchdog sweep p50 (ms)", lambda r: r["in_process"]["sweep_ms"]["p50"]),
        (
            "idle CPU, agents heartbeating (% of a core)",
            lambda r: r["end_to_end"]["orchestrator_cpu_pct_heartbeats_only"],
        ),
        ("orchestrator RSS (MB)", lambda r: r["end_to_end"]["rss_mb"]),
        ("RSS per agent (MB)", lambda r: per_agent(r)["rss_mb"]),
        ("spawn rate (agents/s)", lambda r: r["end_to_end"]["spawn_per_s"]),
        ("CPU per `ps` per agent (ms)", lambda r: per_agent(r)["ps_cpu_ms"]),
        ("sweep per agent (ms)", lambda r: per_agent(r)["sweep_p50_ms"]),
    ]
    head = "| measure | " + " | ".join(f"{r['agents']} agents" for r in results) + " |"
    out = [head, "|---|" + "---:|" * len(results)]
    for label, get in rows:
        out.append(f"| {label} | " + " | ".join(f"{get(r):.3g}" for r in results) + " |")
    a, b = per_agent(small), per_agent(large)
    n = large["agents"]
    goals = [
        (f"`ps` p95 at {n}", large["end_to_end"]["ps_ms"]["p95"], SCALE_GOALS["ps_p95_ms"], "ms"),
        (
            f"CPU per `ps` per agent, {n} over {small['agents']}",
            b["ps_cpu_ms"] / a["ps_cpu_ms"],
            SCALE_GOALS["per_agent_ratio"],
            "×",
        ),
        (
            f"sweep per agent, {n} over {small['agents']}",
            b["sweep_p50_ms"] / a["sweep_p50_ms"],
            SCALE_GOALS["per_agent_ratio"],
            "×",
        ),
        (
            f"idle CPU at {n}",
            large["end_to_end"]["orchestrator_cpu_pct_heartbeats_only"],
            SCALE_GOALS["idle_cpu_pct"],
            "%",
        ),
        (f"RSS per agent at {n}", b["rss_mb"], SCALE_GOALS["rss_mb_per_agent"], "MB"),
    ]
    out += ["", "| goal | result | target | |", "|---|---:|---:|---|"]
    for label, value, goal, unit in goals:
        out.append(f"| {label} | {value:.3g} {unit} | ≤ {goal:g} {unit} | {verdict(value, goal)} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
