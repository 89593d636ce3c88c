"""Benchmark: operator ``!ps`` in Discord → the bot's reply stored, Fleetwarden vs. a floor.

Discord is not reachable from here: one run starts two fake Discords
(tests/fakes/discord/server.py, REST + gateway websocket on 127.0.0.1, in this process;
one per bot, as each serves one bot token), the real ``fleetwarden run --config`` process
(Discord connector only, empty fleet) logged in to the first, and the minimal discord.py
echo bot of :mod:`bench.discord_echo_bot` (the floor) logged in to the second. Both
clients have the same intents, mention policy and guild-ready timeout.

One round: t0 = just before the operator's ``post_user_message("!ps")`` (the fake stores
the message and writes its MESSAGE_CREATE to the bot's gateway socket before it returns);
t1 = when the fake has stored the bot's message whose ``message_reference`` is that
command — taken in the fake itself, right after it stores the message and before it
echoes MESSAGE_CREATE back and answers the bot's POST (an event, not a poll). Rounds
alternate Fleetwarden, echo, Fleetwarden, … one at a time, with ``--pause-ms`` of quiet
before each; ``--warmup`` rounds per bot come first and are not counted.

Also reported: the split of each round into post (t0 → ``post_user_message`` returned:
the command stored and dispatched) and bot (→ reply stored: the bot's gateway read, its
work, its REST POST); the CPU time per round of each process; the bots' RSS at the end.

Then, for Fleetwarden only, longer replies, timed until their LAST part is stored (a
part counts as the last once none followed for ``--quiet-ms``): ``--help-rounds`` rounds
of ``!help`` in the control channel, and ``--logs-rounds`` rounds of
``!logs bench-logs --lines 250`` in the thread of a stub agent that printed 400 lines
(spawned for it afterwards; its reply comes in several 2000-character parts).

Where the time goes: ``--trace`` runs Fleetwarden's own entry point with timing wrappers around the
stages of a command (gateway frame, queue, claim, handler, audit, markdown, REST call;
:data:`bench.discord_trace.TRACE_POINTS`) and the echo bot with the same gateway and REST wrappers,
and reports the medians per round; ``--profile FILE`` runs Fleetwarden under cProfile instead.
Neither changes product code; both slow Fleetwarden down a little.

    python -m bench.discord_roundtrip [--rounds 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.discord_fake import TimedDiscord
from bench.discord_report import BOTS, Result, analyse, report
from bench.discord_rounds import (
    AGENT,
    OPERATOR,
    START_TIMEOUT,
    Sample,
    one_round,
    stub_agent,
    stub_exit,
)
from bench.discord_trace import TRACED, read_trace, trace_split, traced_fleetwarden
from bench.fleet_procs import kill_agents
from bench.harness import execute, round_trip_parser
from bench.processes import BenchError, Child, cpu_seconds, rss_mib
from tests.fakes.discord.server import FakeDiscord
from tests.integration.console_bot import FLEETWARDEN, clean_env

REPO_ROOT = Path(__file__).resolve().parents[1]
FW_TOKEN_ENV = "FW_DISCORD_TOKEN"
ECHO_TOKEN_ENV = "FW_ECHO_TOKEN"  # bench.discord_echo_bot's
LOGS_LINES = 250  # `!logs` shows this many of the stub's lines: several 2000-character parts


def fleetwarden_config(workdir: Path, fake: FakeDiscord, args: argparse.Namespace) -> Path:
    """Discord only, empty fleet: the config of
    tests/integration/connectors/discord/test_discord_bot.py."""
    path = workdir / "fleetwarden.yaml"
    path.write_text(
        "state_dir: ./state\n"
        f"log_level: {args.log_level}\n"
        "operators:\n"
        f"  - {{id: '{fake.user_id(OPERATOR)}', role: operator}}\n"
        "connectors:\n"
        "  discord:\n"
        f"    token_env: {FW_TOKEN_ENV}\n"
        f"    guild_id: '{fake.guild_id}'\n"
        f"    channel_id: '{fake.control_channel_id}'\n"
        f"    guild_ready_timeout_seconds: {args.guild_ready_timeout:g}\n"
    )
    return path


async def watch(children: Sequence[Child], fakes: Sequence[TimedDiscord]) -> None:
    """Fail the waits as soon as a process dies."""
    while True:
        try:
            for child in children:
                child.check()
        except BenchError as exc:
            for fake in fakes:
                fake.fail(exc)
            return
        await asyncio.sleep(0.5)


def _logged(log: Path, needle: str) -> bool:
    return log.exists() and needle in log.read_text(errors="replace")


async def until_logged(child: Child, log: Path, needle: str, within: float) -> None:
    """Wait for ``needle`` in ``log``, the child's log file."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        child.check()
        if _logged(log, needle):  # a small file, read at start-up only
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"{child.name} did not log {needle!r} within {within:.0f} s")


async def stop_all(children: Sequence[Child]) -> None:
    # In a thread: the fakes in this loop must answer the bots' goodbyes meanwhile.
    await asyncio.gather(*(asyncio.to_thread(child.stop) for child in children))


async def run(args: argparse.Namespace, root: Path) -> Result:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    fw_fake = TimedDiscord(token="fw-bench-token", bot_name="fleetwarden")
    echo_fake = TimedDiscord(token="echo-bench-token", bot_name="echo")
    fakes = (fw_fake, echo_fake)
    children: list[Child] = []
    watcher: asyncio.Task[None] | None = None
    spawned = False
    workdir = root / "fleetwarden"
    try:
        for fake in fakes:
            await fake.start()  # 127.0.0.1, a free port
        workdir.mkdir()
        config = fleetwarden_config(workdir, fw_fake, args)
        fw_env = clean_env(
            **{
                FW_TOKEN_ENV: fw_fake.token,
                "FLEETWARDEN_DISCORD_API_BASE": fw_fake.api_base,
                "FLEETWARDEN_DISCORD_GATEWAY_URL": fw_fake.gateway_url,
            }
        )
        if args.fleetwarden_src is not None:  # a scratch copy's packages shadow the installed
            fw_env["PYTHONPATH"] = str(args.fleetwarden_src.resolve())
        fw_argv = [str(FLEETWARDEN), "run", "--config", str(config)]
        trace_file = root / "trace.jsonl"
        if args.trace:  # the same entry point, with timing wrappers put in first
            fw_env["PYTHONPATH"] = os.pathsep.join(
                p for p in (fw_env.get("PYTHONPATH"), str(REPO_ROOT)) if p
            )
            fw_argv = [sys.executable, "-m", "bench.discord_roundtrip", TRACED, str(trace_file)]
            fw_argv += ["run", "--config", str(config)]
        if args.profile is not None:
            profile = str(args.profile.resolve())
            fw_argv = [sys.executable, "-m", "cProfile", "-o", profile, *fw_argv]
        children.append(
            Child("fleetwarden", fw_argv, cwd=workdir, env=fw_env, log=workdir / "stderr.log")
        )
        echo_trace = root / "echo-trace.jsonl"
        echo_argv = [
            sys.executable,
            "-m",
            "bench.discord_echo_bot",
            echo_fake.api_base,
            echo_fake.gateway_url,
            str(echo_fake.control_channel_id),
            f"--guild-ready-timeout={args.guild_ready_timeout:g}",
        ]
        if args.trace:
            echo_argv.append(f"--trace={echo_trace}")
        echo_env = clean_env(**{ECHO_TOKEN_ENV: echo_fake.token})
        echo_env["PYTHONPATH"] = str(REPO_ROOT)
        children.append(
            Child(
                "echo bot",
                echo_argv,
                cwd=REPO_ROOT,
                env=echo_env,
                log=root / "echo.stderr.log",
            )
        )
        fw, echo = children
        watcher = asyncio.create_task(watch(children, fakes), name="watch")
        # Fleetwarden serves once it has checked the channel and read back recent history.
        fw_log = workdir / "state" / "fleetwarden.log"
        await until_logged(fw, fw_log, "discord: serving channel", START_TIMEOUT)
        line = await echo.read_line(START_TIMEOUT)
        if line != "ready":
            raise BenchError(f"echo bot said {line!r} instead of 'ready'")

        targets = {"fleetwarden": fw_fake, "echo": echo_fake}

        async def one(bot: str, within: float) -> Sample:
            if args.pause_ms:
                await asyncio.sleep(args.pause_ms / 1000)
            return await one_round(bot, targets[bot], "!ps", within)

        for index in range(args.warmup):
            for bot in BOTS:
                await one(bot, START_TIMEOUT if index == 0 else args.round_timeout)
        pids = {"fleetwarden": fw.pid, "echo": echo.pid, "fakes": os.getpid()}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        samples: list[Sample] = []
        for index in range(args.rounds):
            for bot in BOTS:
                samples.append(await one(bot, args.round_timeout))
            if args.progress and (index + 1) % 50 == 0:
                print(f"  {index + 1}/{args.rounds} rounds", file=sys.stderr, flush=True)
        # Each bot works on its own rounds only; the fakes (this process) on every round.
        per = {"fleetwarden": args.rounds, "echo": args.rounds, "fakes": 2 * args.rounds}
        cpu = {
            name: (cpu_seconds(pid) - cpu_before[name]) * 1000 / per[name]
            for name, pid in pids.items()
        }
        rss = {"fleetwarden": rss_mib(fw.pid), "echo": rss_mib(echo.pid)}

        longs: list[Sample] = []

        async def long_replies(
            label: str, command: str, rounds: int, channel: int | None = None
        ) -> None:
            quiet = args.quiet_ms / 1000
            await one_round(label, fw_fake, command, START_TIMEOUT, quiet, channel)  # warm-up
            before = cpu_seconds(fw.pid)
            for _ in range(rounds):
                if args.pause_ms:
                    await asyncio.sleep(args.pause_ms / 1000)
                longs.append(
                    await one_round(label, fw_fake, command, args.round_timeout, quiet, channel)
                )
            # Between the parts and after the last the bot idles: its CPU is the reply's.
            cpu[label] = (cpu_seconds(fw.pid) - before) * 1000 / rounds

        if args.help_rounds:
            await long_replies("fleetwarden !help", "!help", args.help_rounds)
        if args.logs_rounds:
            spawned = True
            thread = await stub_agent(fw_fake, START_TIMEOUT)
            command = f"!logs {AGENT} --lines {LOGS_LINES}"
            await long_replies("fleetwarden !logs", command, args.logs_rounds, thread)
            await stub_exit(fw_fake, thread)

        result = Result(
            rounds=args.rounds,
            warmup=args.warmup,
            pause_ms=args.pause_ms,
            help_rounds=args.help_rounds,
            logs_rounds=args.logs_rounds,
            quiet_ms=args.quiet_ms,
            started=started,
            machine={
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "load_average_at_start": os.getloadavg(),
            },
            fleetwarden_src=None if args.fleetwarden_src is None else str(args.fleetwarden_src),
            profile=None if args.profile is None else str(args.profile),
            traced=args.trace,
            cpu_ms_per_round=cpu,
            rss_mib=rss,
        )
        analyse(result, samples, longs)
        if args.trace:
            fw_trace = read_trace(trace_file)
            result.trace_p50 = {
                "fleetwarden": trace_split(fw_trace, samples, "fleetwarden"),
                "echo": trace_split(read_trace(echo_trace), samples, "echo"),
            }
            for label in dict.fromkeys(s.bot for s in longs):
                result.trace_p50[label] = trace_split(fw_trace, longs, label)
        return result
    finally:
        if watcher is not None:
            watcher.cancel()
        await stop_all(children)
        if spawned:  # the stub outlives Fleetwarden, by design, if it did not exit
            await asyncio.to_thread(kill_agents, workdir / "state")
        for fake in fakes:
            await fake.stop()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [TRACED]:
        traced_fleetwarden(argv[1], argv[2:])
        return 0
    parser = round_trip_parser("python -m bench.discord_roundtrip", __doc__.splitlines()[0])
    parser.add_argument(
        "--help-rounds", type=int, default=20, help="Fleetwarden `!help` rounds after (0: none)"
    )
    parser.add_argument(
        "--logs-rounds",
        type=int,
        default=20,
        help="then `!logs` rounds in a stub agent's thread (0: none, and no agent)",
    )
    parser.add_argument(
        "--quiet-ms",
        type=float,
        default=300.0,
        help="a long reply is complete after this long without a new part",
    )
    parser.add_argument(
        "--guild-ready-timeout", type=float, default=0.2, help="both clients' guild_ready_timeout"
    )
    parser.add_argument(
        "--profile", type=Path, help="run Fleetwarden under cProfile, writing its stats here"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="run Fleetwarden with timing wrappers and report where its `!ps` time goes",
    )
    args = parser.parse_args(argv)
    if args.trace and args.profile is not None:
        parser.error("--trace and --profile do not go together")
    if args.rounds < 1 or min(args.warmup, args.help_rounds, args.logs_rounds) < 0:
        parser.error("--rounds must be at least 1; --warmup, --*-rounds not negative")

    return execute(
        lambda root: run(args, root),
        report,
        keep=args.keep,
        json_path=args.json,
        prefix="fw-bench-",
    )


if __name__ == "__main__":
    sys.exit(main())
