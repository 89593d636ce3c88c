"""``discord_roundtrip --trace``: Fleetwarden's own entry point run with timing wrappers
around the stages of a command (:data:`TRACE_POINTS`), and each round's time split by stage
from what they wrote. No product code changes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.discord_echo_bot import trace_calls
from bench.discord_rounds import Sample
from bench.harness import percentile

TRACED = "_traced-fleetwarden"
TRACE_POINTS = (  # (module, attribute, label): wrapped in the Fleetwarden process
    ("discord.gateway", "DiscordWebSocket.received_message", "gateway frame"),
    ("connectors.discord.connector", "DiscordConnector._on_message", "connector _on_message"),
    ("bot.app.serving", "Serving._handle", "Serving._handle"),
    ("bot.commands.routing.router", "Router.handle", "Router.handle"),
    ("fleet.ledger.stores.operators.chat", "ChatStore.claim_event", "ChatStore.claim_event"),
    ("bot.commands.parsing.grammar", "Grammar.parse", "Grammar.parse"),
    ("bot.commands.handlers.agents.control", "Handlers.ps", "Handlers.ps"),
    ("bot.commands.handlers.agents.control", "Handlers.help", "Handlers.help"),
    ("bot.commands.handlers.agents.control", "Handlers.logs", "Handlers.logs"),
    ("fleet.supervisor.fleet", "Fleet.ps", "Fleet.ps"),
    ("fleet.supervisor.fleet", "Fleet.drift", "Fleet.drift"),
    ("bot.render.fleet", "ps", "render.ps"),
    ("fleet.ledger.stores.operators.audit", "AuditStore.record_audit", "AuditStore.record_audit"),
    ("bot.commands.routing.threads", "Threads.deliver", "Threads.deliver"),
    ("connectors.discord.outbound", "parts", "outbound.parts (markdown)"),
    ("discord.http", "HTTPClient.request", "discord REST call"),
)


def traced_fleetwarden(trace_file: str, argv: list[str]) -> None:
    """``fleetwarden ARGV`` as its console script runs it, with timing wrappers around
    :data:`TRACE_POINTS` (bench only; no product code changes)."""
    trace_calls(trace_file, TRACE_POINTS)
    from bot.cli.command import main as fleetwarden_main

    sys.argv = ["fleetwarden", *argv]
    fleetwarden_main(argv)


def read_trace(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


GAPS = (  # (label, from, to): stages of a round, by the first call of each in it
    ("command dispatched -> gateway frame read", "posted", "gateway frame"),
    ("frame read -> Serving._handle (parse, queue)", "gateway frame", "Serving._handle"),
    ("Serving._handle -> Router.handle (lock)", "Serving._handle", "Router.handle"),
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
