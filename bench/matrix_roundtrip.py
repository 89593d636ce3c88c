"""Benchmark: operator ``!ps`` → the bot's reply seen by the operator, Fleetwarden vs. a floor.

One run starts its own Synapse (tests/synapse_server.py) in a temporary directory,
registers two bots and an operator, makes one room per bot, and starts the real
``fleetwarden run --config`` process (Matrix only, empty fleet) and the minimal
matrix-nio echo bot of :mod:`bench.echo_bot` (the floor). Both use the same sync filter
and long-poll timeout (``--sync-timeout``, Fleetwarden's default 30 s).

One round: t0 = just before the operator's ``room_send`` of ``!ps``; t1 = when the
operator's own long-poll ``/sync`` (a task that is always syncing, timeout 30 000 ms)
returns the bot's event whose ``m.relates_to.m.in_reply_to`` is that command.
Rounds alternate Fleetwarden, echo, Fleetwarden, … one at a time, with ``--pause-ms``
of quiet before each; ``--warmup`` rounds per bot come first and are not counted.

Also reported, from Synapse's ``origin_server_ts`` (1 ms resolution, same clock as
ours): the split of each round into send (t0 → command stored), bot (command stored →
reply stored) and delivery (reply stored → t1); the CPU time per round of each
process; Fleetwarden's and the echo bot's RSS at the end.

    python -m bench.matrix_roundtrip [--rounds 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.probe import Operator, Sample
from bench.processes import BenchError, Child, cpu_seconds, rss_mib
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.matrix_user import MatrixUser
from tests.synapse_server import SynapseServer

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"
BOTS = ("fleetwarden", "echo")
START_TIMEOUT = 60.0


# -- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": sum(values) / len(values),
        "min": min(values),
        "max": max(values),
    }


@dataclass
class Result:
    rounds: int
    warmup: int
    pause_ms: float
    sync_timeout_s: float
    started: str
    machine: dict[str, Any]
    fleetwarden_src: str | None = None
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    ratio: dict[str, float] = field(default_factory=dict)
    breakdown_p50: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_ms_per_round: dict[str, float] = field(default_factory=dict)
    rss_mib: dict[str, float | None] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)


def analyse(result: Result, samples: list[Sample]) -> None:
    for bot in BOTS:
        mine = [s for s in samples if s.bot == bot]
        result.latency[bot] = summary([s.latency_ms for s in mine])
        result.breakdown_p50[bot] = {
            part: percentile([getattr(s, part) for s in mine], 50)
            for part in ("send_call_ms", "send_ms", "bot_ms", "delivery_ms")
        }
    fw, echo = result.latency["fleetwarden"], result.latency["echo"]
    result.ratio = {k: fw[k] / echo[k] for k in ("p50", "p95", "p99", "mean")}
    result.samples = [asdict(s) for s in samples]


def report(result: Result) -> str:
    lat, ratio = result.latency, result.ratio
    lines = [
        f"Matrix round trip, operator `!ps` -> reply seen by the operator: {result.rounds} "
        f"rounds per bot, interleaved, after {result.warmup} warm-up rounds each "
        f"(sync timeout {result.sync_timeout_s:g} s, {result.pause_ms:g} ms pause per round)",
        "",
        f"{'ms':<14}{'p50':>8}{'p95':>8}{'p99':>8}{'mean':>8}{'min':>8}{'max':>8}",
    ]
    for bot, label in (("fleetwarden", "fleetwarden"), ("echo", "echo floor")):
        s = lat[bot]
        lines.append(
            f"{label:<14}"
            + "".join(f"{s[k]:>8.1f}" for k in ("p50", "p95", "p99", "mean", "min", "max"))
        )
    lines.append(f"{'ratio':<14}" + "".join(f"{ratio[k]:>8.2f}" for k in ("p50", "p95", "p99")))
    lines.append(f"{'':<14}(goal: ratio <= 1.2)  mean ratio {ratio['mean']:.2f}")
    lines += ["", "median split (ms; Synapse timestamps, 1 ms resolution):"]
    lines.append(
        f"{'':<14}{'send call':>10}{'send':>8}{'bot':>8}{'delivery':>10}"
        "   (send: t0 -> command stored; bot: command stored -> reply stored)"
    )
    for bot in BOTS:
        b = result.breakdown_p50[bot]
        lines.append(
            f"{bot:<14}{b['send_call_ms']:>10.1f}{b['send_ms']:>8.1f}{b['bot_ms']:>8.1f}"
            f"{b['delivery_ms']:>10.1f}"
        )
    cpu = result.cpu_ms_per_round
    lines += [
        "",
        "CPU per round (ms; a bot per round of its own, Synapse per round): "
        + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()),
        "RSS at the end (MiB): "
        + ", ".join(f"{k} {'?' if v is None else f'{v:.1f}'}" for k, v in result.rss_mib.items()),
    ]
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------


def fleetwarden_config(
    workdir: Path, homeserver: str, bot: str, room: str, operator: str, args: argparse.Namespace
) -> Path:
    """Matrix only, empty fleet: the config of tests/integration/test_matrix_bot.py."""
    path = workdir / "fleetwarden.yaml"
    path.write_text(
        "state_dir: ./state\n"
        f"log_level: {args.log_level}\n"
        "operators:\n"
        f"  - {{id: '{operator}', role: operator}}\n"
        "connectors:\n"
        "  matrix:\n"
        f"    homeserver: {homeserver}\n"
        f"    user_id: '{bot}'\n"
        "    password_env: FW_BOT_PASSWORD\n"
        f"    rooms: ['{room}']\n"
        f"    sync_timeout_seconds: {args.sync_timeout:g}\n"
    )
    return path


async def watch(children: Sequence[Child], synapse: SynapseServer, operator: Operator) -> None:
    """Fail the operator's waits as soon as a process dies."""
    while True:
        try:
            for child in children:
                child.check()
            if not synapse.running:
                raise BenchError("Synapse exited\n" + synapse._diagnostics())
        except BenchError as exc:
            operator.fail(exc)
            return
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, root: Path) -> Result:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    synapse = SynapseServer(root / "synapse")
    children: list[Child] = []
    operator: Operator | None = None
    user: MatrixUser | None = None
    watcher: asyncio.Task[None] | None = None
    try:
        synapse.start()  # the main thread: its parent-death signal follows this process
        fw_bot = await synapse.register_async("fleetwarden", PASSWORD)
        echo_bot = await synapse.register_async("echo", PASSWORD)
        op = await synapse.register_async("operator", PASSWORD)
        user = MatrixUser(synapse.base_url, op.user_id, op.device_id, op.access_token)
        fw_room = await user.create_room(invite=(fw_bot.user_id,))
        echo_room = await user.create_room(invite=(echo_bot.user_id,))
        await user.sync_once(timeout_ms=0)  # takes the token: history is not looked at
        operator = Operator(user.client, user.client.next_batch, int(args.sync_timeout * 1000))
        operator.start()

        workdir = root / "fleetwarden"
        workdir.mkdir()
        config = fleetwarden_config(
            workdir, synapse.base_url, fw_bot.user_id, fw_room, op.user_id, args
        )
        fw_env = clean_env(FW_BOT_PASSWORD=PASSWORD)
        if args.fleetwarden_src is not None:  # a scratch copy's packages shadow the installed
            fw_env["PYTHONPATH"] = str(args.fleetwarden_src.resolve())
        children.append(
            Child(
                "fleetwarden",
                [str(FLEETWARDEN), "run", "--config", str(config)],
                cwd=workdir,
                env=fw_env,
                log=workdir / "stderr.log",
            )
        )
        echo_env = clean_env(FW_ECHO_TOKEN=echo_bot.access_token)
        echo_env["PYTHONPATH"] = str(REPO_ROOT)
        children.append(
            Child(
                "echo bot",
                [
                    sys.executable,
                    "-m",
                    "bench.echo_bot",
                    synapse.base_url,
                    echo_bot.user_id,
                    echo_bot.device_id,
                    echo_room,
                    f"{args.sync_timeout:g}",
                ],
                cwd=REPO_ROOT,
                env=echo_env,
                log=root / "echo.stderr.log",
            )
        )
        fw, echo = children
        watcher = asyncio.create_task(watch(children, synapse, operator), name="watch")
        # The bot's join is its sign that it listens (it primes its sync token first).
        await operator.wait_until(
            lambda: operator.joined(fw_room, fw_bot.user_id), START_TIMEOUT, "Fleetwarden join"
        )
        line = await echo.read_line(START_TIMEOUT)
        if line != "ready":
            raise BenchError(f"echo bot said {line!r} instead of 'ready'")

        targets = {
            "fleetwarden": (fw_room, fw_bot.user_id),
            "echo": (echo_room, echo_bot.user_id),
        }

        async def one(bot: str) -> Sample:
            if args.pause_ms:
                await asyncio.sleep(args.pause_ms / 1000)
            room, bot_user = targets[bot]
            return await operator.round(bot, room, bot_user, args.round_timeout)

        for _ in range(args.warmup):
            for bot in BOTS:
                await one(bot)
        pids = {"fleetwarden": fw.pid, "echo": echo.pid, "synapse": synapse.pid}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        samples: list[Sample] = []
        for index in range(args.rounds):
            for bot in BOTS:
                samples.append(await one(bot))
            if args.progress and (index + 1) % 50 == 0:
                print(f"  {index + 1}/{args.rounds} rounds", file=sys.stderr, flush=True)
        # Each bot works on its own rounds only; Synapse on every round.
        per = {"fleetwarden": args.rounds, "echo": args.rounds, "synapse": 2 * args.rounds}
        cpu = {
            name: (cpu_seconds(pid) - cpu_before[name]) * 1000 / per[name]
            for name, pid in pids.items()
        }
        result = Result(
            rounds=args.rounds,
            warmup=args.warmup,
            pause_ms=args.pause_ms,
            sync_timeout_s=args.sync_timeout,
            started=started,
            machine={
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            fleetwarden_src=None if args.fleetwarden_src is None else str(args.fleetwarden_src),
            cpu_ms_per_round=cpu,
            rss_mib={"fleetwarden": rss_mib(fw.pid), "echo": rss_mib(echo.pid)},
        )
        analyse(result, samples)
        return result
    finally:
        if watcher is not None:
            watcher.cancel()
        for child in children:
            child.stop()
        if operator is not None:
            await operator.stop()
        if user is not None:
            await user.close()
        synapse.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.matrix_roundtrip", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=200, help="measured rounds per bot")
    parser.add_argument("--warmup", type=int, default=10, help="uncounted rounds per bot first")
    parser.add_argument("--json", type=Path, help="also write the results (and samples) here")
    parser.add_argument("--sync-timeout", type=float, default=30.0, help="both bots' long-poll, s")
    parser.add_argument("--pause-ms", type=float, default=100.0, help="quiet before each round")
    parser.add_argument("--round-timeout", type=float, default=30.0, help="max wait for a reply")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument(
        "--fleetwarden-src",
        type=Path,
        help="run Fleetwarden's packages from this checkout (e.g. a scratch copy) instead",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--progress", action="store_true", help="print progress on stderr")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup not negative")

    root = Path(tempfile.mkdtemp(prefix="fw-bench-"))

    async def guarded() -> Result:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        # SIGINT too: a job started in the background by a non-interactive shell ignores it.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        return await run(args, root)

    keep = args.keep
    try:
        result = asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; every process was stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        keep = True  # the bot's log and Synapse's are the evidence
        print(f"benchmark failed: {exc}\n(files kept in {root})", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    print(report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    if args.keep:
        print(f"files kept in {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
