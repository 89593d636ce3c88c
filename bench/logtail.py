"""Reading the end of a huge agent log: the old ``tail_lines`` against the new one, side by
side in one run, on the same files.

Run from the repository root::

    python -m bench.logtail [--size-mb 33] [--lines 40] [--repeat 5] [--old-repeat 1]
        [--json out.json] [--keep]

**Logs** (written into a temporary directory, ``--size-mb`` each): *lines*, short lines
ending in ``\\n`` (a chatty CLI); *crlf*, the same ending in ``\\r\\n``; *progress*, a
``\\r``-only progress bar that never wrote a ``\\n`` (the log that froze the heartbeat
endpoint for 7.6 s); *one line*, one line with no break at all.

**Old** is the function as it was (copied below: it read 64 KiB blocks backwards and
prepended each to what it had, ``data = block + data``, until it had seen ``count``
``\\n``, then decoded everything and split it). **New** is
:func:`fleet.transcript.logtail.tail_lines`.
Each is timed ``--repeat`` times per log (``--old-repeat`` for the old one on the logs
where it reads the whole file) and the median reported, with the bytes the new one read.

**On the event loop.** The supervisor's ``snapshot`` called the old function on the event
loop; it now runs the new one in a worker thread. Both are timed that way once per log
while a task sleeps 5 ms at a time and records the longest gap between its wake-ups:
how long everything else on the loop (the heartbeat endpoint, chat) waited.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import execute
from fleet.transcript import logtail

MIB = 1024 * 1024
TICK = 0.005


def old_tail_lines(path: Path, count: int) -> list[str]:
    """``fleet.transcript.logtail.tail_lines`` before it was bounded, verbatim."""
    if count <= 0:
        return []
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, seeks backwards
    except FileNotFoundError:
        return []
    with fh:
        end = fh.seek(0, os.SEEK_END)
        pos = end
        data = b""
        while pos > 0 and data.count(b"\n") <= count:
            step = min(64 * 1024, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    return lines[-count:]


def write_logs(root: Path, size: int) -> dict[str, Path]:
    """The four logs, ``size`` bytes each (about)."""
    numbered = [b"step %8d: reading src/module_%d.py\n" % (i, i % 97) for i in range(size // 30)]
    lines = b"".join(numbered)[:size]
    bars = [b"downloading %8d/%d [%-20s]\r" % (i, size, b"#" * (i % 21)) for i in range(size // 40)]
    logs = {
        "lines": lines,
        "crlf": lines.replace(b"\n", b"\r\n")[:size],
        "progress": b"".join(bars)[:size] + b"\rdownloading done\r",
        "one line": b"x" * size,
    }
    paths = {}
    for name, data in logs.items():
        paths[name] = root / f"{name.replace(' ', '-')}.log"
        paths[name].write_bytes(data)
    return paths


@dataclass
class LogResult:
    name: str
    size: int
    old_ms: float
    new_ms: float
    new_bytes_read: int
    old_lines: int
    new_lines: int
    old_loop_gap_ms: float
    new_loop_gap_ms: float
    old_samples: list[float] = field(default_factory=list)
    new_samples: list[float] = field(default_factory=list)


@dataclass
class Result:
    count: int
    logs: list[LogResult]


def timed(
    read: Callable[[Path, int], list[str]], path: Path, count: int, times: int
) -> tuple[list[float], list[str]]:
    """``times`` timings of ``read(path, count)`` in ms, and what it read."""
    samples, lines = [], []
    for _ in range(times):
        start = time.perf_counter()
        lines = read(path, count)
        samples.append((time.perf_counter() - start) * 1000)
    return samples, lines


def bytes_read(path: Path, count: int) -> int:
    """What the new tail reads from ``path`` (its ``os.pread`` calls, counted)."""
    real = os.pread
    total = 0

    def counting(fd: int, length: int, offset: int) -> bytes:
        nonlocal total
        data = real(fd, length, offset)
        total += len(data)
        return data

    os.pread = counting
    try:
        logtail.tail_lines(path, count)
    finally:
        os.pread = real
    return total


async def loop_gap(read: Callable[[], object], *, in_thread: bool) -> float:
    """The longest wait, in ms, of a task that sleeps 5 ms at a time while ``read`` runs on
    the loop (``in_thread`` false) or in a worker thread."""
    loop = asyncio.get_running_loop()
    longest = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal longest
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(TICK)
            now = loop.time()
            longest = max(longest, now - last - TICK)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(2 * TICK)
    if in_thread:
        await asyncio.to_thread(read)
    else:
        read()
    await asyncio.sleep(2 * TICK)
    done.set()
    await task
    return longest * 1000


def measure(root: Path, args: argparse.Namespace) -> Result:
    paths = write_logs(root, int(args.size_mb * 1_000_000))
    results = []
    for name, path in paths.items():
        old_times = args.old_repeat if name in ("progress", "one line") else args.repeat
        old, old_lines = timed(old_tail_lines, path, args.lines, old_times)
        new, new_lines = timed(logtail.tail_lines, path, args.lines, args.repeat)
        results.append(
            LogResult(
                name=name,
                size=path.stat().st_size,
                old_ms=statistics.median(old),
                new_ms=statistics.median(new),
                new_bytes_read=bytes_read(path, args.lines),
                old_lines=len(old_lines),
                new_lines=len(new_lines),
                old_loop_gap_ms=0.0,
                new_loop_gap_ms=0.0,
                old_samples=old,
                new_samples=new,
            )
        )
    return Result(args.lines, results)


async def work(root: Path, args: argparse.Namespace) -> Result:
    result = measure(root, args)
    for entry in result.logs:
        path = root / f"{entry.name.replace(' ', '-')}.log"
        entry.old_loop_gap_ms = await loop_gap(
            functools.partial(old_tail_lines, path, args.lines), in_thread=False
        )
        entry.new_loop_gap_ms = await loop_gap(
            functools.partial(logtail.tail_lines, path, args.lines), in_thread=True
        )
    return result


def report(result: Result) -> str:
    lines = [
        f"tail of {result.count} lines; median ms (old / new), bytes the new one read, "
        "and the longest stall of the event loop while it ran (old on the loop, new in a "
        "worker thread)",
        f"{'log':<10}{'size MB':>9}{'old ms':>11}{'new ms':>9}{'speed-up':>10}"
        f"{'new read':>11}{'lines old/new':>15}{'loop stall old':>16}{'new':>8}",
    ]
    for e in result.logs:
        lines.append(
            f"{e.name:<10}{e.size / 1e6:>9.1f}{e.old_ms:>11.1f}{e.new_ms:>9.2f}"
            f"{e.old_ms / e.new_ms:>9.0f}x{e.new_bytes_read / MIB:>7.2f} MiB"
            f"{f'{e.old_lines} / {e.new_lines}':>15}"
            f"{e.old_loop_gap_ms:>14.1f}ms{e.new_loop_gap_ms:>6.1f}ms"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.logtail", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=33.0, help="size of each log (MB)")
    parser.add_argument("--lines", type=int, default=40, help="lines asked for (watch: 40)")
    parser.add_argument("--repeat", type=int, default=5, help="timed reads per log")
    parser.add_argument(
        "--old-repeat", type=int, default=1, help="timed reads of the old one of a break-less log"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    async def run(root: Path) -> Result:
        return await work(root, args)

    return execute(run, report, keep=args.keep, json_path=args.json, prefix="fw-logtail-")


if __name__ == "__main__":
    raise SystemExit(main())
