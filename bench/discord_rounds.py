"""One round of ``discord_roundtrip``: a command posted as the operator, timed until the
reply to it is stored (its last part too, for a long reply) — and the steps that set a run
up, never timed: an answer awaited, the stub agent whose log ``!logs`` shows."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bench.discord_fake import T, TimedDiscord
from bench.processes import BenchError

OPERATOR = "operator"
START_TIMEOUT = 60.0
AGENT = "bench-logs"  # the stub agent of the `!logs` rounds
AGENT_LINES = 400  # it prints this many numbered lines


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
