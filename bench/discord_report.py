"""What ``discord_roundtrip`` found: the run's :class:`Result` — each bot's latencies and
their ratio, the split of a round, the long replies, CPU and memory — and its report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.discord_rounds import Sample
from bench.harness import latency_table, percentile, resource_lines, summary

BOTS = ("fleetwarden", "echo")


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
