"""Fleet scale: N stub agents under one Fleetwarden — ``ps`` latency, watchdog sweep, RSS.

Run from the repository root::

    python -m bench.fleet_scale [--agents 20,200,1000] [--rounds 20] [--runs 1]
        [--json out.json] [--trace] [--gc-freeze] [--keep]

Each fleet size in ``--agents`` is measured in turn, in a temp dir of its own, and the
sizes are reported side by side: per agent, what a ``ps`` and a sweep cost at the largest
against the smallest, and issue 73's goals at the largest (:data:`SCALE_GOALS`: ``ps`` p95
≤ 50 ms, idle CPU ≤ 5 % of a core while heartbeating, spawn ≥ 10 agents/s one after
another, RSS ≤ 0.06 MB per agent), each said met or missed. ``--runs N`` measures it all N
times and reports each run's goals and then the worst run's figure of each (a goal must
hold on every run, not the best). 1,000 sandboxed stub agents take about 19 GB of memory
on the host.

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

The two are :mod:`bench.fleet_end_to_end` and :mod:`bench.fleet_in_process`; this module
runs them for each size and reports. ``--trace`` runs the orchestrator through this module
with timing wrappers around the ``ps`` and watchdog paths and ``gc.callbacks``
(:mod:`bench.fleet_trace`), and reports where each ``ps`` round's time went;
``--gc-freeze`` (a what-if, implies ``--trace``) also calls ``gc.freeze()`` in it after
start-up. Neither changes product code.

Every agent's process group is killed at the end, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.console_driver import FLEETWARDEN
from bench.fleet_end_to_end import end_to_end
from bench.fleet_in_process import in_process
from bench.fleet_procs import kill_agents, loadavg
from bench.fleet_trace import TRACED, trace_report, traced_orchestrator

GOALS = {"ps_ms": 200.0, "sweep_ms": 100.0, "rss_mb": 150.0}
# Issue 73's goals, at the largest fleet of a run (1,000 agents), on every run.
SCALE_GOALS = {
    "ps_p95_ms": 50.0,  # the `ps` reply, p95: at most
    "idle_cpu_pct": 5.0,  # the orchestrator's CPU with agents only heartbeating: at most
    "spawn_per_s": 10.0,  # agents spawned one after another, per second: at least
    "rss_mb_per_agent": 0.06,  # the orchestrator's RSS growth per agent: at most
}
AT_LEAST = {"spawn_per_s"}


def verdict(value: float, goal: float, at_least: bool = False) -> str:
    return "met" if (value >= goal if at_least else value <= goal) else "MISSED"


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
        f"per spawn p50 {e2e['spawn_ms']['p50']:.1f} ms, max {e2e['spawn_ms']['max']:.1f} ms); "
        f"of which outside Fleetwarden, p50: {e2e['spawn_agent_pid_ms']['p50']:.1f} ms from "
        f"forking the shim to the sandbox's first process running "
        f"({e2e['spawn_sandbox_ready_ms']['p50']:.1f} ms to bubblewrap's sandbox set up)",
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
    parser.add_argument(
        "--runs", type=int, default=1, help="measure it all this many times; the worst is said"
    )
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
    runs: list[list[dict[str, Any]]] = []
    for run in range(1, max(1, args.runs) + 1):
        if args.runs > 1:
            print(f"## run {run} of {args.runs}\n", flush=True)
        results = []
        for agents in sizes:
            results.append(one_size(agents, args, log))
            print(report(results[-1]))
            if "trace" in results[-1]["end_to_end"]:
                print(trace_report(results[-1]["end_to_end"]["trace"]))
            print()
        print(scaling_report(results), flush=True)
        print()
        runs.append(results)
    if len(runs) > 1:
        print(worst_report([results[-1] for results in runs]))
    if args.json:
        out = {"sizes": runs[-1], "runs": runs, "goals": SCALE_GOALS}
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


def goal_figures(result: dict[str, Any]) -> dict[str, float]:
    """The figures :data:`SCALE_GOALS` are about, of one size's result."""
    e2e = result["end_to_end"]
    return {
        "ps_p95_ms": e2e["ps_ms"]["p95"],
        "idle_cpu_pct": e2e["orchestrator_cpu_pct_heartbeats_only"],
        "spawn_per_s": e2e["spawn_per_s"],
        "rss_mb_per_agent": per_agent(result)["rss_mb"],
    }


UNITS = {"ps_p95_ms": "ms", "idle_cpu_pct": "% of a core", "spawn_per_s": "agents/s",
         "rss_mb_per_agent": "MB"}  # fmt: skip


def worst_report(largest: list[dict[str, Any]]) -> str:
    """Each goal's figure on every run at the largest size, and the worst of them."""
    n = largest[0]["agents"]
    figures = [goal_figures(r) for r in largest]
    out = [
        f"issue 73's goals at {n} agents over {len(largest)} runs (the worst run's figure "
        "decides); load average at each run's start: "
        + ", ".join(str(r["loadavg_start"]) for r in largest),
        "",
        "| goal | "
        + " | ".join(f"run {i}" for i in range(1, len(largest) + 1))
        + " | worst | target | |",
        "|---|" + "---:|" * (len(largest) + 2) + "---|",
    ]
    for key, goal in SCALE_GOALS.items():
        at_least = key in AT_LEAST
        values = [f[key] for f in figures]
        worst = min(values) if at_least else max(values)
        out.append(
            f"| {key} | "
            + " | ".join(f"{v:.3g}" for v in values)
            + f" | {worst:.3g} {UNITS[key]} | {'≥' if at_least else '≤'} {goal:g} "
            f"| {verdict(worst, goal, at_least)} |"
        )
    return "\n".join(out)


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
        ("spawn p50 (ms)", lambda r: r["end_to_end"]["spawn_ms"]["p50"]),
        ("orchestrator CPU per spawn (ms)", lambda r: r["end_to_end"]["spawn_cpu_ms"]),
        (
            "of it, shim forked → sandbox's first process (ms, p50)",
            lambda r: r["end_to_end"].get("spawn_agent_pid_ms", {}).get("p50", float("nan")),
        ),
        ("CPU per `ps` per agent (ms)", lambda r: per_agent(r)["ps_cpu_ms"]),
        ("sweep per agent (ms)", lambda r: per_agent(r)["sweep_p50_ms"]),
    ]
    head = "| measure | " + " | ".join(f"{r['agents']} agents" for r in results) + " |"
    out = [head, "|---|" + "---:|" * len(results)]
    for label, get in rows:
        out.append(f"| {label} | " + " | ".join(f"{get(r):.3g}" for r in results) + " |")
    a, b = per_agent(small), per_agent(large)
    n, e2e = large["agents"], large["end_to_end"]
    goals = [
        (f"`ps` reply p95 at {n}", e2e["ps_ms"]["p95"], "ps_p95_ms", "ms"),
        (
            f"idle CPU at {n}, agents heartbeating",
            e2e["orchestrator_cpu_pct_heartbeats_only"],
            "idle_cpu_pct",
            "% of a core",
        ),
        (f"spawn rate at {n}", e2e["spawn_per_s"], "spawn_per_s", "agents/s"),
        (f"RSS per agent at {n}", b["rss_mb"], "rss_mb_per_agent", "MB"),
    ]
    out += ["", "issue 73's goals:", "", "| goal | result | target | |", "|---|---:|---:|---|"]
    for label, value, key, unit in goals:
        goal, at_least = SCALE_GOALS[key], key in AT_LEAST
        out.append(
            f"| {label} | {value:.3g} {unit} | {'≥' if at_least else '≤'} {goal:g} {unit} "
            f"| {verdict(value, goal, at_least)} |"
        )
    out += [
        "",
        f"per agent, {n} over {small['agents']}: CPU per `ps` "
        f"{b['ps_cpu_ms'] / a['ps_cpu_ms']:.2f}×, "
        f"sweep {b['sweep_p50_ms'] / a['sweep_p50_ms']:.2f}×"
        f"; spawn p50 {e2e['spawn_ms']['p50']:.0f} ms at {n} against "
        f"{small['end_to_end']['spawn_ms']['p50']:.0f} ms at {small['agents']}",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
