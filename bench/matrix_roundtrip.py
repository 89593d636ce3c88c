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
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    execute,
    latency_table,
    percentile,
    resource_lines,
    round_trip_parser,
    summary,
)
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
    ]
    lines += latency_table(lat, ratio, "(goal: ratio <= 1.2)")
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
    lines += [
        "",
        *resource_lines(
            result.cpu_ms_per_round, result.rss_mib, "a bot per round of its own, Synapse per round"
        ),
    ]
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------


def fleetwarden_config(
    workdir: Path, homeserver: str, bot: str, room: str, operator: str, args: argparse.Namespace
) -> Path:
    """Matrix only, empty fleet: the config of
    tests/integration/connectors/matrix/test_matrix_bot.py."""
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
    parser = round_trip_parser("python -m bench.matrix_roundtrip", __doc__.splitlines()[0])
    parser.add_argument("--sync-timeout", type=float, default=30.0, help="both bots' long-poll, s")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup not negative")

    return execute(
        lambda root: run(args, root),
        report,
        keep=args.keep,
        json_path=args.json,
        prefix="fw-bench-",
    )


if __name__ == "__main__":
    sys.exit(main())
