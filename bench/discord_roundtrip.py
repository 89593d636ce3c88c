"""Benchmark: operator ``!ps`` in Discord → the bot's reply stored, Fleetwarden vs. a floor.

Discord is not reachable from here: one run starts two fake Discords
(tests/fakes/discord_server.py, REST + gateway websocket on 127.0.0.1, in this process;
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

Where the time goes: ``--trace`` runs Fleetwarden's own entry point with timing wrappers
around the stages of a command (gateway frame, queue, claim, handler, audit, markdown,
REST call; :data:`TRACE_POINTS`) and the echo bot with the same gateway and REST
wrappers, and reports the medians per round; ``--profile FILE`` runs Fleetwarden under
cProfile instead. Neither changes product code; both slow Fleetwarden down a little.

    python -m bench.discord_roundtrip [--rounds 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.discord_echo_bot import trace_calls
from bench.fleet_scale import kill_agents
from bench.harness import (
    execute,
    latency_table,
    percentile,
    resource_lines,
    round_trip_parser,
    summary,
)
from bench.processes import BenchError, Child, cpu_seconds, rss_mib
from tests.fakes.discord_server import FakeDiscord
from tests.integration.console_bot import FLEETWARDEN, clean_env

REPO_ROOT = Path(__file__).resolve().parents[1]
BOTS = ("fleetwarden", "echo")
OPERATOR = "operator"
FW_TOKEN_ENV = "FW_DISCORD_TOKEN"
ECHO_TOKEN_ENV = "FW_ECHO_TOKEN"  # bench.discord_echo_bot's
START_TIMEOUT = 60.0
AGENT = "bench-logs"  # the stub agent of the `!logs` rounds
AGENT_LINES = 400  # it prints this many numbered lines
LOGS_LINES = 250  # and `!logs` shows this many of them: several 2000-character parts
T = TypeVar("T")


# -- the fake, timed ----------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    at: float  # perf_counter when the fake had stored it
    channel_id: int
    message_id: int
    reply_to: int | None  # message_reference.message_id
    chars: int


class TimedDiscord(FakeDiscord):
    """The fake Discord, noting when it stores each message the bot posts.

    Its MESSAGE_CREATE dispatch is the hook: the fake stores a message and then dispatches
    it (before answering the POST), so the time taken there is "stored".
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[Arrival] = []
        self._changed = asyncio.Event()
        self._failure: BaseException | None = None

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        if event == "MESSAGE_CREATE" and data["author"]["id"] == self.bot_user["id"]:
            reference = (data.get("message_reference") or {}).get("message_id")
            self.arrivals.append(
                Arrival(
                    time.perf_counter(),
                    int(data["channel_id"]),
                    int(data["id"]),
                    None if reference is None else int(reference),
                    len(data.get("content") or ""),
                )
            )
            self._changed.set()
        await super()._dispatch(event, data)

    def fail(self, exc: BaseException) -> None:
        """Make every current and future wait raise ``exc``."""
        if self._failure is None:
            self._failure = exc
        self._changed.set()

    async def wait_for(self, probe: Callable[[], T | None], within: float, what: str) -> T:
        """``probe()`` once it is not None, re-checked at every arrival."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self._failure is not None:
                raise self._failure
            found = probe()
            if found is not None:
                return found
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BenchError(f"no {what} within {within:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def quiet(self, since: int, channel: int, gap: float) -> list[Arrival]:
        """The arrivals in ``channel`` from index ``since`` on, once none came for ``gap`` s."""
        while True:
            if self._failure is not None:
                raise self._failure
            count = len(self.arrivals)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), gap)
            except TimeoutError:
                if len(self.arrivals) == count:
                    return [a for a in self.arrivals[since:] if a.channel_id == channel]


# -- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    bot: str
    command: int  # the command's message id
    t0: float  # perf_counter (CLOCK_MONOTONIC: the same clock in every process here)
    latency_ms: float  # t0 → first reply part stored
    post_ms: float  # t0 → post_user_message returned
    bot_ms: float  # post_user_message returned → reply stored
    parts: int = 1
    last_ms: float | None = None  # t0 → last part stored (long replies)
    chars: int | None = None  # of every part (long replies)


@dataclass
class Result:
    rounds: int
    warmup: int
    pause_ms: float
    help_rounds: int
    logs_rounds: int
    quiet_ms: float
    started: str
    machine: dict[str, Any]
    fleetwarden_src: str | None = None
    profile: str | None = None
    traced: bool = False
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    ratio: dict[str, float] = field(default_factory=dict)
    breakdown_p50: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_ms_per_round: dict[str, float] = field(default_factory=dict)
    rss_mib: dict[str, float | None] = field(default_factory=dict)
    long: dict[str, dict[str, Any]] = field(default_factory=dict)
    trace_p50: dict[str, dict[str, float]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)


def analyse(result: Result, samples: list[Sample], longs: list[Sample]) -> None:
    for bot in BOTS:
        mine = [s for s in samples if s.bot == bot]
        result.latency[bot] = summary([s.latency_ms for s in mine])
        result.breakdown_p50[bot] = {
            part: percentile([getattr(s, part) for s in mine], 50) for part in ("post_ms", "bot_ms")
        }
    fw, echo = result.latency["fleetwarden"], result.latency["echo"]
    result.ratio = {k: fw[k] / echo[k] for k in ("p50", "p95", "p99", "mean")}
    for label in dict.fromkeys(s.bot for s in longs):
        mine = [s for s in longs if s.bot == label]
        result.long[label] = {
            "rounds": len(mine),
            "parts": sorted({s.parts for s in mine}),
            "chars": sorted({s.chars or 0 for s in mine}),
            "first": summary([s.latency_ms for s in mine]),
            "last": summary([s.last_ms or 0.0 for s in mine]),
        }
    result.samples = [asdict(s) for s in samples + longs]


def report(result: Result) -> str:
    lat, ratio = result.latency, result.ratio
    lines = [
        f"Discord round trip (fake Discord on loopback), operator `!ps` -> reply stored: "
        f"{result.rounds} rounds per bot, interleaved, after {result.warmup} warm-up rounds "
        f"each ({result.pause_ms:g} ms pause per round)",
        "",
    ]
    lines += latency_table(lat, ratio)
    lines += ["", "median split (ms):"]
    lines.append(
        f"{'':<14}{'post':>8}{'bot':>8}"
        "   (post: t0 -> command stored and dispatched; bot: -> reply stored)"
    )
    for bot in BOTS:
        b = result.breakdown_p50[bot]
        lines.append(f"{bot:<14}{b['post_ms']:>8.2f}{b['bot_ms']:>8.2f}")
    if result.long:
        lines += [
            "",
            f"Fleetwarden's longer replies, until the first / the last part is stored (ms; "
            f"complete after {result.quiet_ms:g} ms without a new part):",
            f"{'':<34}{'parts':>6}{'chars':>7}{'first p50':>11}{'last p50':>10}"
            f"{'last p95':>10}{'last max':>10}",
        ]
        for label, got in result.long.items():
            first, last = got["first"], got["last"]
            parts = "/".join(str(p) for p in got["parts"])
            chars = "/".join(str(c) for c in got["chars"])
            lines.append(
                f"{label[len('fleetwarden ') :]:<34}{parts:>6}{chars:>7}{first['p50']:>11.1f}"
                + "".join(f"{last[k]:>10.1f}" for k in ("p50", "p95", "max"))
            )
    lines += [
        "",
        *resource_lines(
            result.cpu_ms_per_round,
            result.rss_mib,
            "a bot per round of its own, the fakes + driver per round",
        ),
    ]
    if result.trace_p50:
        traced = result.trace_p50
        heads = {"fleetwarden": "FW !ps", "echo": "echo !ps"}
        lines += [
            "",
            "Traced rounds (medians, ms; both bots ran with timing wrappers, which add a "
            "little; long replies: up to the last part):",
            f"  {'':<46}" + "".join(f"{heads.get(k, 'FW ' + k.split()[-1]):>10}" for k in traced),
        ]
        for what in dict.fromkeys(w for got in traced.values() for w in got):
            cells = (got.get(what) for got in traced.values())
            lines.append(
                f"  {what:<46}" + "".join(f"{'' if c is None else f'{c:.2f}':>10}" for c in cells)
            )
    if result.profile:
        lines.append(f"Fleetwarden ran under cProfile (slower): stats in {result.profile}")
    return "\n".join(lines)


# -- tracing (--trace) --------------------------------------------------------------------

TRACED = "_traced-fleetwarden"
TRACE_POINTS = (  # (module, attribute, label): wrapped in the Fleetwarden process
    ("discord.gateway", "DiscordWebSocket.received_message", "gateway frame"),
    ("connectors.discord.connector", "DiscordConnector._on_message", "connector _on_message"),
    ("bot.app.lifecycle", "App._handle", "App._handle"),
    ("bot.commands.router", "Router.handle", "Router.handle"),
    ("fleet.ledger.store", "Ledger.claim_event", "Ledger.claim_event"),
    ("bot.commands.grammar", "Grammar.parse", "Grammar.parse"),
    ("bot.commands.handlers.agents", "Handlers.ps", "Handlers.ps"),
    ("bot.commands.handlers.agents", "Handlers.help", "Handlers.help"),
    ("bot.commands.handlers.agents", "Handlers.logs", "Handlers.logs"),
    ("fleet.supervisor.fleet", "Fleet.ps", "Fleet.ps"),
    ("fleet.supervisor.fleet", "Fleet.drift", "Fleet.drift"),
    ("bot.render.fleet", "ps", "render.ps"),
    ("fleet.ledger.store", "Ledger.record_audit", "Ledger.record_audit"),
    ("bot.chat.threads", "Threads.deliver", "Threads.deliver"),
    ("connectors.discord.outbound", "parts", "outbound.parts (markdown)"),
    ("discord.http", "HTTPClient.request", "discord REST call"),
)


def traced_fleetwarden(trace_file: str, argv: list[str]) -> None:
    """``fleetwarden ARGV`` as its console script runs it, with timing wrappers around
    :data:`TRACE_POINTS` (bench only; no product code changes)."""
    trace_calls(trace_file, TRACE_POINTS)
    from bot.cli.main import main as fleetwarden_main

    sys.argv = ["fleetwarden", *argv]
    fleetwarden_main(argv)


def read_trace(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


GAPS = (  # (label, from, to): stages of a round, by the first call of each in it
    ("command dispatched -> gateway frame read", "posted", "gateway frame"),
    ("frame read -> App._handle (parse, queue)", "gateway frame", "App._handle"),
    ("App._handle -> Router.handle (lock)", "App._handle", "Router.handle"),
    ("Router.handle -> REST call", "Router.handle", "discord REST call"),
    ("frame read -> REST call", "gateway frame", "discord REST call"),
    ("REST call -> (first) reply stored", "discord REST call", "stored"),
)


def trace_split(trace: list[dict[str, Any]], samples: list[Sample], bot: str) -> dict[str, float]:
    """Over ``bot``'s measured rounds (calls that start between t0 and the reply stored):
    the median of each gap of :data:`GAPS` the trace has, as ``"= label"``, and of each
    wrapped function's time (its calls in the round summed; nested calls are also inside
    their callers')."""
    trace.sort(key=lambda e: e["start"])
    per: dict[str, list[float]] = {}
    for sample in samples:
        if sample.bot != bot:
            continue
        t0 = sample.t0
        t1 = t0 + sample.latency_ms / 1000
        last = t0 + (sample.last_ms or sample.latency_ms) / 1000
        inside = [e for e in trace if t0 <= e["start"] <= last]
        at = {"posted": t0 + sample.post_ms / 1000, "stored": t1}
        spent: dict[str, float] = {}
        for entry in inside:
            at.setdefault(entry["what"], entry["start"])
            spent[entry["what"]] = spent.get(entry["what"], 0.0) + entry["end"] - entry["start"]
        for label, start, end in GAPS:
            if start in at and end in at:
                per.setdefault(f"= {label}", []).append((at[end] - at[start]) * 1000)
        for what, seconds in spent.items():
            per.setdefault(what, []).append(seconds * 1000)
    return {what: percentile(values, 50) for what, values in per.items()}


# -- the run ------------------------------------------------------------------------------


def fleetwarden_config(workdir: Path, fake: FakeDiscord, args: argparse.Namespace) -> Path:
    """Discord only, empty fleet: the config of tests/integration/test_discord_bot.py."""
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


async def one_round(
    bot: str,
    fake: TimedDiscord,
    command: str,
    within: float,
    quiet_s: float | None = None,
    channel: int | None = None,
) -> Sample:
    """Post ``command`` in ``channel`` (default: the control channel) and wait for the
    reply to it there; with ``quiet_s``, for all its parts."""
    channel = fake.control_channel_id if channel is None else channel
    since = len(fake.arrivals)
    t0 = time.perf_counter()
    posted = await fake.post_user_message(channel, OPERATOR, command)
    t_posted = time.perf_counter()
    first = await fake.wait_for(
        lambda: next((a for a in fake.arrivals[since:] if a.reply_to == posted.id), None),
        within,
        f"{bot} reply",
    )
    sample = Sample(
        bot=bot,
        t0=t0,
        command=posted.id,
        latency_ms=(first.at - t0) * 1000,
        post_ms=(t_posted - t0) * 1000,
        bot_ms=(first.at - t_posted) * 1000,
    )
    if quiet_s is None:
        return sample
    every = await fake.quiet(since, channel, quiet_s)
    if every[0] is not first:
        raise BenchError(f"{bot}: the first message after {command!r} is not its reply")
    last_ms = (every[-1].at - t0) * 1000
    chars = sum(a.chars for a in every)
    return Sample(**{**asdict(sample), "parts": len(every), "last_ms": last_ms, "chars": chars})


async def poll(probe: Callable[[], T | None], within: float, what: str) -> T:
    """``probe()`` once it is not None, polled (for setting up, never for timing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (found := probe()) is None:
        if loop.time() > deadline:
            raise BenchError(f"no {what} within {within:.0f} s")
        await asyncio.sleep(0.05)
    return found


async def ask(fake: TimedDiscord, channel: int, text: str, quiet_s: float) -> list[str]:
    """Post ``text``; what the bot posted in ``channel`` until ``quiet_s`` passed without
    a new message (at least one; for setting up, never for timing)."""
    seen = len(fake.messages(channel))
    since = len(fake.arrivals)
    await fake.post_user_message(channel, OPERATOR, text)
    await fake.wait_for(
        lambda: len(fake.messages(channel)) > seen or None, START_TIMEOUT, f"answer to {text!r}"
    )
    await fake.quiet(since, channel, quiet_s)
    return [m.content for m in fake.messages(channel)[seen:]]


async def stub_agent(fake: TimedDiscord, within: float) -> int:
    """Spawn the stub agent :data:`AGENT` and have it print :data:`AGENT_LINES` numbered
    lines; its thread's id once ``!logs`` shows the last of them and the thread is quiet."""
    control = fake.control_channel_id
    await fake.post_user_message(control, OPERATOR, f"!spawn {AGENT} --runtime stub")
    thread = await poll(
        lambda: next((int(t["id"]) for t in fake.threads if t["name"] == AGENT), None),
        within,
        "thread of the stub agent",
    )
    # Fleetwarden relays what the agent prints in answer (in parts) to the thread.
    await ask(fake, thread, f"lines {AGENT_LINES}", 1.0)
    last = f"line {AGENT_LINES} of {AGENT_LINES}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not any(last in text for text in await ask(fake, thread, f"!logs {AGENT}", 1.0)):
        if loop.time() > deadline:
            raise BenchError(f"the stub agent did not print {last!r} within {within:.0f} s")
        await asyncio.sleep(0.2)
    return thread


async def stub_exit(fake: TimedDiscord, thread: int) -> None:
    """Tell the stub to exit and wait (a little) for Fleetwarden's notice that it did."""
    seen = len(fake.messages(thread))
    await fake.post_user_message(thread, OPERATOR, "exit")
    with contextlib.suppress(BenchError):
        await poll(
            lambda: next((m for m in fake.messages(thread)[seen:] if m.payload["embeds"]), None),
            10,
            "exit notice",
        )


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
