"""``fleet_scale --trace``: the orchestrator run with timing wrappers around the ``ps`` and
watchdog paths and ``gc.callbacks``, each call written to a JSON-lines file, and where each
``ps`` round's time went, read back from it. No product code changes."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

TRACED = "_traced-orchestrator"
"""The first argument that makes ``python -m bench.fleet_scale`` the traced orchestrator."""


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
        ("bot.commands.routing.router", "Router.handle"),
        ("bot.commands.routing.threads", "Threads.deliver"),
        ("bot.commands.routing.router", "Router._run"),
        ("bot.commands.parsing.grammar", "Grammar.parse"),
        ("connectors.console.connector", "ConsoleConnector.send"),
        ("fleet.ledger.stores.operators.chat", "ChatStore.claim_event"),
        ("bot.commands.handlers.agents.control", "Handlers.ps"),
        ("bot.render.fleet", "ps", "render.ps"),
        ("connectors.console.connector", "to_plain"),
        ("fleet.supervisor.fleet", "Fleet.ps"),
        ("fleet.supervisor.fleet", "Fleet.drift"),
        ("fleet.supervisor.fleet", "Fleet.watchdog_snapshot"),
        ("fleet.supervisor.fleet", "Fleet.apply_watchdog"),
        ("fleet.ledger.stores.running.agents", "AgentsStore.list_agents"),
        ("fleet.ledger.stores.running.runs", "RunsStore.last_run"),
        ("fleet.ledger.stores.running.heartbeats", "HeartbeatsStore.last_heartbeat"),
        ("fleet.ledger.stores.operators.audit", "AuditStore.record_audit"),
        ("fleet.ledger.stores.running.heartbeats", "HeartbeatsStore.record_heartbeat"),
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
        from bot.commands.routing.router import Router

        handle = Router.handle

        async def handle_then_freeze(self: Any, *a: Any, **k: Any) -> Any:
            if not getattr(Router, "_bench_frozen", False):
                Router._bench_frozen = True  # type: ignore[attr-defined]
                gc.collect()
                gc.freeze()
                note(f"gc.freeze({gc.get_freeze_count()} objects)", time.perf_counter())
            return await handle(self, *a, **k)

        Router.handle = handle_then_freeze  # type: ignore[method-assign]
    from bot.cli.command import main as cli_main

    cli_main(argv)


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
