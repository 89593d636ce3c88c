"""What the metering benchmark found: each path at each concurrency level (:class:`Block`),
the run's :class:`Result`, the ratios between the paths and the report printed from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.metering_paths import LITELLM_PATHS, PATHS


@dataclass
class Block:
    """One path at one concurrency level."""

    path: str
    concurrency: int
    requests: int
    wall_s: float
    rps: float
    ttfb_ms: dict[str, float]
    total_ms: dict[str, float]
    cpu_ms_per_request: dict[str, float]
    pieces: float = 0.0  # reads per answer at the client: about the proxy's writes of it


@dataclass
class Result:
    started: str
    machine: dict[str, Any]
    request: dict[str, Any]
    requests: dict[int, int]
    warmup: int
    rounds: int
    blocks: list[Block] = field(default_factory=list)
    memory_mib: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    ledger_usage_rows: int | None = None
    app_usage: dict[str, int] | None = None  # the app's ledger: rows, rows with exact tokens
    app_pg_usage: dict[str, int] | None = None  # the same in the app's PostgreSQL ledger
    ratios: dict[str, float] = field(default_factory=dict)

    def block(self, path: str, concurrency: int) -> Block | None:
        return next(
            (b for b in self.blocks if b.path == path and b.concurrency == concurrency), None
        )


def ratios(result: Result, high: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for level in (1, high):
        direct = result.block("direct", level)
        fw = result.block("fleetwarden", level)
        held = result.block("fleetwarden-accounts", level)
        if fw is not None and held is not None:
            out[f"accounts_over_plain_ttfb_p50_ms_c{level}"] = (
                held.ttfb_ms["p50"] - fw.ttfb_ms["p50"]
            )
            out[f"accounts_over_plain_rps_c{level}"] = held.rps / fw.rps
        if direct is not None and fw is not None:
            out[f"fleetwarden_ttfb_p50_overhead_ms_c{level}"] = (
                fw.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
            )
            out[f"fleetwarden_total_p50_overhead_ms_c{level}"] = (
                fw.total_ms["p50"] - direct.total_ms["p50"]
            )
        app = result.block("fleetwarden-app", level)
        app_pg = result.block("fleetwarden-app-pg", level)
        floor = result.block("passthrough", level)
        if direct is not None and app is not None:
            out[f"app_ttfb_p50_overhead_ms_c{level}"] = app.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
        if direct is not None and app_pg is not None:
            out[f"app_pg_ttfb_p50_overhead_ms_c{level}"] = (
                app_pg.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
            )
        if app is not None and app_pg is not None:
            # PostgreSQL ÷ SQLite; for the latencies their inverse too (a speed: ≥ 0.9 is
            # the goal's "at least 0.9×", a TTFB at most 1/0.9 of SQLite's).
            out[f"app_pg_over_app_rps_c{level}"] = app_pg.rps / app.rps
            out[f"app_pg_over_app_ttfb_p50_c{level}"] = app_pg.ttfb_ms["p50"] / app.ttfb_ms["p50"]
            out[f"app_over_app_pg_ttfb_p50_c{level}"] = app.ttfb_ms["p50"] / app_pg.ttfb_ms["p50"]
            out[f"app_pg_over_app_total_p50_c{level}"] = (
                app_pg.total_ms["p50"] / app.total_ms["p50"]
            )
            out[f"app_pg_over_app_cpu_c{level}"] = (
                app_pg.cpu_ms_per_request["proxy"] / app.cpu_ms_per_request["proxy"]
            )
            out[f"app_pg_with_server_over_app_cpu_c{level}"] = (
                app_pg.cpu_ms_per_request["proxy"] + app_pg.cpu_ms_per_request.get("postgres", 0)
            ) / app.cpu_ms_per_request["proxy"]
        if direct is not None and floor is not None:
            out[f"passthrough_ttfb_p50_overhead_ms_c{level}"] = (
                floor.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
            )
        if app is not None and floor is not None:
            out[f"app_over_passthrough_rps_c{level}"] = app.rps / floor.rps
            out[f"app_over_passthrough_cpu_c{level}"] = (
                app.cpu_ms_per_request["proxy"] / floor.cpu_ms_per_request["proxy"]
            )
        for name in LITELLM_PATHS:
            litellm = result.block(name, level)
            key = name.replace("-", "_")
            if app is not None and litellm is not None:
                out[f"app_over_{key}_rps_c{level}"] = app.rps / litellm.rps
            if direct is not None and litellm is not None:
                out[f"{key}_ttfb_p50_overhead_ms_c{level}"] = (
                    litellm.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
                )
            if fw is not None and litellm is not None:
                out[f"fleetwarden_over_{key}_rps_c{level}"] = fw.rps / litellm.rps
                out[f"{key}_over_fleetwarden_cpu_c{level}"] = (
                    litellm.cpu_ms_per_request["proxy"] / fw.cpu_ms_per_request["proxy"]
                )
    return out


CPU_GOAL = 1.1  # the app's proxy CPU per request, at most this many times the pass-through's
TTFB_GOAL_MS = 0.5  # the app's TTFB p50, at most this much over the pass-through's


def goals(result: Result, high: int) -> list[str]:
    """Issue 73's goals (issue 57's before) for the whole app beside the minimal pass-through,
    each with its figure and met or missed: proxy CPU per request at 1 and ``high`` streams,
    TTFB p50 at one stream, and every request counted to the token in each ledger."""
    lines: list[str] = []
    floor_1 = result.block("passthrough", 1)
    for name in ("fleetwarden-app", "fleetwarden-app-pg"):
        for level in (1, high):
            app, floor = result.block(name, level), result.block("passthrough", level)
            if app is None or floor is None:
                continue
            ratio = app.cpu_ms_per_request["proxy"] / floor.cpu_ms_per_request["proxy"]
            lines.append(
                f"goal: {name} proxy CPU per request <= {CPU_GOAL}x passthrough's at "
                f"{level} stream{'s' if level > 1 else ''} — "
                f"{app.cpu_ms_per_request['proxy']:.2f} / "
                f"{floor.cpu_ms_per_request['proxy']:.2f} ms = {ratio:.2f}x "
                f"{'met' if ratio <= CPU_GOAL else 'MISSED'}"
            )
        app_1 = result.block(name, 1)
        if app_1 is not None and floor_1 is not None:
            over = app_1.ttfb_ms["p50"] - floor_1.ttfb_ms["p50"]
            lines.append(
                f"goal: {name} TTFB p50 <= passthrough's + {TTFB_GOAL_MS} ms at 1 stream — "
                f"{app_1.ttfb_ms['p50']:.2f} vs {floor_1.ttfb_ms['p50']:.2f} ms = "
                f"{over:+.2f} ms {'met' if over <= TTFB_GOAL_MS else 'MISSED'}"
            )
    sent = 1 + sum(result.warmup + count for count in result.requests.values())
    for name, usage in (
        ("fleetwarden-app", result.app_usage),
        ("fleetwarden-app-pg", result.app_pg_usage),
    ):
        if usage is not None:
            exact = usage["rows"] == usage["exact"] == sent
            lines.append(
                f"goal: {name} metering exact (every request's row with the fake's four token "
                f"counts) — {usage['exact']} of {sent} {'met' if exact else 'MISSED'}"
            )
    return lines


def where_the_time_goes(result: Result, high: int) -> list[str]:
    """Per proxy beside the floor: the pieces an answer reached the client in (each about one
    write of the proxy's, one send) and how much of its CPU was the kernel's (the sends and
    receives themselves) and the rest (Python: the server, the relay, the metering)."""
    lines = []
    for level in (1, high):
        for name in ("passthrough", "fleetwarden", "fleetwarden-app", "fleetwarden-app-pg"):
            b = result.block(name, level)
            if b is None or "proxy_kernel" not in b.cpu_ms_per_request:
                continue
            cpu = b.cpu_ms_per_request
            lines.append(
                f"where the time goes, {name}, concurrency {level}: {b.pieces:.1f} pieces per "
                f"answer; proxy CPU {cpu['proxy']:.2f} ms = kernel {cpu['proxy_kernel']:.2f}"
                f" + user {cpu['proxy'] - cpu['proxy_kernel']:.2f}"
            )
    return lines


def report(result: Result, high: int) -> str:
    req = result.request
    lines = [
        f"Streamed Anthropic Messages request, the same for every path: POST …/v1/messages, "
        f"stream: true, {req['body_bytes']} B request; answer {req['answer_bytes']} B of SSE "
        f"({req['deltas']} text deltas) from the fake provider (own process). "
        f"{result.warmup} warm-up requests per path and level not counted; the paths take "
        f"turns in {result.rounds} rounds.",
    ]
    for level in (1, high):
        lines += [
            "",
            f"concurrency {level}: {result.requests[level]} requests per path (ms)",
            f"{'':<21}{'TTFB p50':>9}{'p99':>8}{'total p50':>11}{'p99':>8}{'req/s':>9}"
            f"   CPU ms/request: client / fake / proxy (+ its PostgreSQL server)",
        ]
        for path in PATHS:
            b = result.block(path, level)
            if b is None:
                continue
            cpu = b.cpu_ms_per_request
            proxy_cpu = f"{cpu['proxy']:.2f}" if "proxy" in cpu else "-"
            if "postgres" in cpu:
                proxy_cpu += f" (+ {cpu['postgres']:.2f})"
            lines.append(
                f"{path:<21}{b.ttfb_ms['p50']:>9.2f}{b.ttfb_ms['p99']:>8.2f}"
                f"{b.total_ms['p50']:>11.2f}{b.total_ms['p99']:>8.2f}{b.rps:>9.1f}"
                f"   {cpu['client']:.2f} / {cpu['fake']:.2f} / {proxy_cpu}"
            )
    if result.memory_mib:
        lines += ["", "proxy memory (MiB): VmRSS idle / VmRSS at the end / VmHWM (peak)"]
        for path, mem in result.memory_mib.items():
            lines.append(f"{path:<21}{mem['idle']:.1f} / {mem['end']:.1f} / {mem['peak']:.1f}")
    r = result.ratios
    lines.append("")
    for level in (1, high):
        key = f"fleetwarden_ttfb_p50_overhead_ms_c{level}"
        if key in r:
            goal = "   (goal <= 1 ms)" if level == 1 else ""
            lines.append(
                f"Fleetwarden over direct, concurrency {level}: TTFB p50 {r[key]:+.2f} ms, "
                f"total p50 {r[f'fleetwarden_total_p50_overhead_ms_c{level}']:+.2f} ms{goal}"
            )
        for name in LITELLM_PATHS:
            key = f"{name.replace('-', '_')}_ttfb_p50_overhead_ms_c{level}"
            if key in r:
                lines.append(f"{name} over direct, concurrency {level}: TTFB p50 {r[key]:+.2f} ms")
    lines += where_the_time_goes(result, high)
    lines += goals(result, high)
    for level in (1, high):
        key = f"app_over_passthrough_rps_c{level}"
        if key in r:
            lines.append(
                f"fleetwarden-app / passthrough, concurrency {level}: throughput {r[key]:.3f}x; "
                f"TTFB p50 over direct: app "
                f"{r.get(f'app_ttfb_p50_overhead_ms_c{level}', float('nan')):+.2f} ms, "
                f"passthrough {r[f'passthrough_ttfb_p50_overhead_ms_c{level}']:+.2f} ms"
            )
        for name in LITELLM_PATHS:
            key = f"app_over_{name.replace('-', '_')}_rps_c{level}"
            if key in r:
                goal = "   (goal >= 25x)" if name == "litellm-messages" else ""
                lines.append(
                    f"fleetwarden-app / {name} throughput, concurrency {level}: {r[key]:.2f}x{goal}"
                )
    for level in (1, high):
        key = f"app_pg_over_app_rps_c{level}"
        if key in r:
            lines.append(
                f"fleetwarden-app-pg / fleetwarden-app (PostgreSQL / SQLite ledger), concurrency "
                f"{level}: throughput {r[key]:.3f}x (goal >= 0.9x); TTFB p50 "
                f"{r[f'app_pg_over_app_ttfb_p50_c{level}']:.3f}x (as a speed "
                f"{r[f'app_over_app_pg_ttfb_p50_c{level}']:.3f}x, goal >= 0.9x); total p50 "
                f"{r[f'app_pg_over_app_total_p50_c{level}']:.3f}x; app CPU per request "
                f"{r[f'app_pg_over_app_cpu_c{level}']:.3f}x, with its PostgreSQL server's "
                f"{r[f'app_pg_with_server_over_app_cpu_c{level}']:.3f}x"
            )
    for level in (1, high):
        key = f"accounts_over_plain_rps_c{level}"
        if key in r:
            lines.append(
                f"Credential injection (fleetwarden-accounts / fleetwarden), concurrency "
                f"{level}: TTFB p50 {r[f'accounts_over_plain_ttfb_p50_ms_c{level}']:+.2f} ms, "
                f"throughput {r[key]:.3f}x   (goal: within 5 %)"
            )
    for name in LITELLM_PATHS:
        key = name.replace("-", "_")
        for level in (1, high):
            rps = f"fleetwarden_over_{key}_rps_c{level}"
            if rps in r:
                goal = "   (goal >= 5x)" if level == high else ""
                lines.append(
                    f"Fleetwarden / {name} throughput, concurrency {level}: {r[rps]:.2f}x{goal}; "
                    f"{name} / Fleetwarden proxy CPU per request "
                    f"{r[f'{key}_over_fleetwarden_cpu_c{level}']:.2f}x"
                )
    if result.ledger_usage_rows is not None:
        sent = 1 + sum(result.warmup + count for count in result.requests.values())
        lines.append(
            f"Fleetwarden's ledger: {result.ledger_usage_rows} usage rows for the {sent} "
            "requests sent through it (probe and warm-ups included)"
        )
    for name, usage in (
        ("fleetwarden-app", result.app_usage),
        ("fleetwarden-app-pg", result.app_pg_usage),
    ):
        if usage is None:
            continue
        sent = 1 + sum(result.warmup + count for count in result.requests.values())
        rows, exact = usage["rows"], usage["exact"]
        verdict = "exact" if rows == exact == sent else "NOT EXACT"
        engine = "PostgreSQL" if name == "fleetwarden-app-pg" else "SQLite"
        lines.append(
            f"{name}'s ledger ({engine}): {rows} usage rows for the {sent} requests sent "
            f"through it, {exact} with exactly the fake's tokens: {verdict}"
        )
    if result.versions:
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in result.versions.items()))
    for path, reason in result.skipped.items():
        lines.append(f"SKIPPED {path}: {reason}")
    return "\n".join(lines)
