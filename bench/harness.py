"""What the benchmarks share: percentiles, the latency-versus-floor table, the resource
lines, and running one with Ctrl-C, SIGTERM, its temporary directory and ``--json``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.processes import BenchError

R = TypeVar("R")
COLUMNS = ("p50", "p95", "p99", "mean", "min", "max")


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
    """Percentiles, mean and extremes of ``values`` (not empty)."""
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": sum(values) / len(values),
        "min": min(values),
        "max": max(values),
    }


def stats(samples: list[float]) -> dict[str, float]:
    """Count, extremes, median, mean and p95 of ``samples`` (not empty), p95 by nearest rank:
    the fleet benchmarks' summary, where :func:`summary` interpolates."""
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


def latency_table(
    latency: Mapping[str, Mapping[str, float]], ratio: Mapping[str, float], note: str = ""
) -> list[str]:
    """Fleetwarden's and the echo floor's latency summaries (ms) and their ratio."""
    lines = [f"{'ms':<14}" + "".join(f"{k:>8}" for k in COLUMNS)]
    for bot, label in (("fleetwarden", "fleetwarden"), ("echo", "echo floor")):
        lines.append(f"{label:<14}" + "".join(f"{latency[bot][k]:>8.1f}" for k in COLUMNS))
    lines.append(f"{'ratio':<14}" + "".join(f"{ratio[k]:>8.2f}" for k in ("p50", "p95", "p99")))
    lines.append(f"{'':<14}{note + '  ' if note else ''}mean ratio {ratio['mean']:.2f}")
    return lines


def resource_lines(
    cpu_ms_per_round: Mapping[str, float], rss_mib: Mapping[str, float | None], cpu_note: str
) -> list[str]:
    """CPU per round and RSS at the end, one line each."""
    return [
        f"CPU per round (ms; {cpu_note}): "
        + ", ".join(f"{k} {v:.1f}" for k, v in cpu_ms_per_round.items()),
        "RSS at the end (MiB): "
        + ", ".join(f"{k} {'?' if v is None else f'{v:.1f}'}" for k, v in rss_mib.items()),
    ]


def run_until_sigterm(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` (a bot serving) until it ends or SIGTERM cancels it."""

    async def run() -> None:
        task = asyncio.ensure_future(work)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())


def round_trip_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every chat round-trip benchmark takes; a benchmark adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--rounds", type=int, default=200, help="measured rounds per bot")
    parser.add_argument("--warmup", type=int, default=10, help="uncounted rounds per bot first")
    parser.add_argument("--json", type=Path, help="also write the results (and samples) here")
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
    return parser


def execute(
    work: Callable[[Path], Awaitable[R]],
    report: Callable[[R], str],
    *,
    keep: bool,
    json_path: Path | None,
    prefix: str = "fw-bench-",
) -> int:
    """Run ``work(root)`` in a fresh temporary directory, Ctrl-C and SIGTERM cancelling it
    (its ``finally`` blocks stop every process); print ``report(result)``, write the result
    (a dataclass) to ``json_path``. The directory is removed unless ``keep``, or the run
    failed: its logs are the evidence. Returns the exit status."""
    root = Path(tempfile.mkdtemp(prefix=prefix))

    async def guarded() -> R:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        # SIGINT too: a job started in the background by a non-interactive shell ignores it.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        return await work(root)

    remove = not keep
    try:
        result = asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; every process was stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        remove = False
        print(f"benchmark failed: {exc}\n(files kept in {root})", file=sys.stderr)
        return 1
    finally:
        if remove:
            shutil.rmtree(root, ignore_errors=True)
    print(report(result))
    if json_path is not None:
        data: Any = (
            asdict(result) if is_dataclass(result) and not isinstance(result, type) else result
        )
        json_path.write_text(json.dumps(data, indent=2) + "\n")
    if keep:
        print(f"files kept in {root}", file=sys.stderr)
    return 0
