"""``/metrics`` in the Prometheus text format, by the official ``prometheus-client``.

Counters of model requests, tokens and cost are the ledger's own sums (all time, by agent,
model, provider and account), so they equal what ``usage`` says and survive a restart.
Agents by state and host, heartbeat ages and each budget's pace come from the running app
at each scrape; so do the changes that came to an end (all time, read from the ledger:
:mod:`bot.dashboard.pages.change_costs`), counted with what they cost, and the register's tasks
by state with the open ones' projected and actual spend (:mod:`bot.dashboard.pages.task_board`,
read at most once a minute), and the messages agents sent each other by kind and state
(:mod:`bot.dashboard.pages.messages`). The proxy's latency
histograms (time to first byte, total), chat send failures, chat events received but not
handled and the calls through the MCP door (by server and outcome) count in this process from
its start, as Prometheus expects of a process; ``fleetwarden_build_info`` names the build it
runs (:mod:`bot.build`).

Label values are bounded: agents, hosts, providers, accounts, runtimes and budgets are the
config's names, and models — a name an agent may choose — are at most :data:`MODEL_LABELS`,
the first seen (by the usage counters and the changes alike); the requests (and changes) of
any model past them count under :data:`OTHER`. A request
nobody served counts under ``(not served)`` (:data:`fleet.ledger.stores.spend.metering.NOT_SERVED`),
never under the name it asked for, and every model's name is guarded as the pages show it
(:mod:`fleet.redaction.guard`, by :meth:`bot.dashboard.pages.views.Views.usage_after`).

Whether each chat connector is up (``fleetwarden_connector_up``, labelled by the config's
connector names) is read from the running app at each scrape too.

The registry is this app's own, never the client's global one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from bot.dashboard.pages.shapes import Json
from bot.dashboard.pages.task_board import TaskGauges
from fleet.budgets.changes.report import OutcomeSum
from fleet.ledger.records.peers import MessageKind, MessageState
from fleet.ledger.stores.operators.dashboard import UsageSum
from fleet.metering.counting.events import QuotaSignal, UsageEvent

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_KINDS = ("input", "output", "cache_read", "cache_write")
Write = Callable[[Sequence[UsageEvent], Sequence[QuotaSignal]], Awaitable[None]]
UsageSource = Callable[[int], Awaitable[tuple[list[UsageSum], int]]]
"""The sums of the usage rows after a row id, and the last id (the ledger's
``usage_sums_after``)."""


@dataclass(slots=True)
class Snapshot:
    """What one scrape reports from the app (the usage counters are kept running)."""

    fleet: Json = field(default_factory=dict)
    budgets: Json = field(default_factory=dict)
    changes: list[OutcomeSum] = field(default_factory=list)
    tasks: TaskGauges | None = None
    messages: Mapping[tuple[MessageKind, MessageState], int] | None = None  # all time


UsageKey = tuple[str, str, str, str]  # agent, model, provider, account
MODEL_LABELS = 100
"""Models with a label of their own, at most: a scrape stays small whatever names agents
send."""
OTHER = "(other)"


class _Read(Collector):
    """The scrape's snapshot as metric families."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self.usage: dict[UsageKey, list[float]] = {}  # requests, 4 kinds of tokens, dollars
        self.after = 0  # the last usage row counted
        self._models: set[str] = set()  # the models with a label of their own

    def add(self, sums: Iterable[UsageSum], last: int) -> None:
        for u in sums:  # summed over hosts: an agent's host is a gauge's business
            key = (u.agent, self._model(u.model), u.provider, u.account)
            totals = self.usage.setdefault(key, [0.0] * 6)
            for i, value in enumerate(
                (u.requests, u.input, u.output, u.cache_read, u.cache_write, u.cost_usd)
            ):
                totals[i] += value
        self.after = last

    def _model(self, name: str) -> str:
        """``name`` as a label: itself while fewer than :data:`MODEL_LABELS` have one."""
        if name not in self._models:
            if len(self._models) >= MODEL_LABELS:
                return OTHER
            self._models.add(name)
        return name

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily]:
        snap = self.snapshot
        labels = ["agent", "model", "provider", "account"]
        requests = CounterMetricFamily(
            "fleetwarden_model_requests",
            "Model requests through the metering proxy.",
            labels=labels,
        )
        tokens = CounterMetricFamily(
            "fleetwarden_model_tokens",
            "Tokens of model requests, by kind (input, output, cache_read, cache_write).",
            labels=[*labels, "kind"],
        )
        cost = CounterMetricFamily(
            "fleetwarden_model_cost_usd",
            "Priced cost of model requests, in US dollars.",
            labels=labels,
        )
        for key, (n, *kinds, usd) in sorted(self.usage.items()):
            requests.add_metric(list(key), n)
            for kind, value in zip(_KINDS, kinds, strict=True):
                tokens.add_metric([*key, kind], value)
            cost.add_metric(list(key), usd)
        yield from (requests, tokens, cost)

        agents = snap.fleet.get("agents", [])
        states = GaugeMetricFamily(
            "fleetwarden_agents",
            "Agents the ledger knows, by state and host.",
            labels=["state", "host"],
        )
        counted: dict[tuple[str, str], int] = {}
        for agent in agents:
            where = (str(agent["state"]), str(agent["host"]))
            counted[where] = counted.get(where, 0) + 1
        for (state, host), n in sorted(counted.items()):
            states.add_metric([state, host], n)
        yield states
        beats = GaugeMetricFamily(
            "fleetwarden_agent_heartbeat_age_seconds",
            "Seconds since each live agent's last heartbeat.",
            labels=["agent", "host"],
        )
        for agent in agents:
            if agent["heartbeat_age_seconds"] is not None and agent["pid"] is not None:
                beats.add_metric([agent["name"], agent["host"]], agent["heartbeat_age_seconds"])
        yield beats

        pace = GaugeMetricFamily(
            "fleetwarden_budget_pace_ratio",
            "Each budget's use against its even spread so far (1 = on the line).",
            labels=["budget"],
        )
        left = GaugeMetricFamily(
            "fleetwarden_budget_remaining",
            "What each budget has left in its window, in its unit.",
            labels=["budget", "unit"],
        )
        for budget in snap.budgets.get("budgets", []):
            pace.add_metric([budget["key"]], budget["pace_ratio"])
            left.add_metric([budget["key"], budget["unit"]], budget["remaining"])
        yield from (pace, left)
        up = GaugeMetricFamily(
            "fleetwarden_connector_up",
            "Whether each chat connector is connected and logged in to its service (1) or not (0).",
            labels=["connector"],
        )
        for link in snap.fleet.get("connectors", []):
            up.add_metric([link["name"]], 1 if link["up"] else 0)
        yield up
        yield from self._changes(snap.changes)
        if snap.tasks is not None:
            yield from _tasks(snap.tasks)
        if snap.messages is not None:
            yield _messages(snap.messages)

    def _changes(
        self, sums: Iterable[OutcomeSum]
    ) -> Iterator[CounterMetricFamily | SummaryMetricFamily]:
        """Every change that came to an end, all time, per agent, runtime, model served and
        outcome: how many, and what they cost (a summary's count and sum)."""
        labels = ["agent", "runtime", "model", "outcome"]
        count = CounterMetricFamily(
            "fleetwarden_changes",
            "Changes (branches agents' runs worked on) that came to an end: merged, closed "
            "unmerged or abandoned, under the model that served most of their tokens.",
            labels=labels,
        )
        cost = SummaryMetricFamily(
            "fleetwarden_change_cost_usd",
            "The priced cost of the changes that came to an end, in US dollars.",
            labels=labels,
        )
        tokens = SummaryMetricFamily(
            "fleetwarden_change_tokens",
            "The tokens of the changes that came to an end.",
            labels=labels,
        )
        summed: dict[tuple[str, str, str, str], tuple[int, float, int]] = {}
        for s in sums:  # models past the labels' bound are summed under one
            key = (s.agent, s.runtime, self._model(s.model), s.outcome.value)
            n, usd, used = summed.get(key, (0, 0.0, 0))
            summed[key] = (n + s.changes, usd + s.cost_usd, used + s.tokens)
        for key, (n, usd, used) in sorted(summed.items()):
            count.add_metric(list(key), n)
            cost.add_metric(list(key), count_value=n, sum_value=usd)
            tokens.add_metric(list(key), count_value=n, sum_value=used)
        yield from (count, cost, tokens)


def _tasks(gauges: TaskGauges) -> Iterator[GaugeMetricFamily]:
    """The register's tasks in each state, and what the open ones were projected to cost
    (their medians summed) beside what their runs used so far."""
    count = GaugeMetricFamily(
        "fleetwarden_tasks", "Tasks in the register, by state (all time).", labels=["state"]
    )
    for state, n in gauges.by_state.items():
        count.add_metric([state], n)
    usd = GaugeMetricFamily(
        "fleetwarden_task_spend_usd",
        "The open tasks' spend in US dollars: projected (their projected medians summed) "
        "and actual (what their runs used so far, priced).",
        labels=["kind"],
    )
    usd.add_metric(["projected"], gauges.open_projected_usd)
    usd.add_metric(["actual"], gauges.open_actual_usd)
    tokens = GaugeMetricFamily(
        "fleetwarden_task_spend_tokens",
        "The open tasks' spend in tokens: projected (their projected medians summed) and "
        "actual (what their runs used so far).",
        labels=["kind"],
    )
    tokens.add_metric(["projected"], gauges.open_projected_tokens)
    tokens.add_metric(["actual"], gauges.open_actual_tokens)
    yield from (count, usd, tokens)


def _messages(counts: Mapping[tuple[MessageKind, MessageState], int]) -> GaugeMetricFamily:
    """The messages agents sent each other, by kind and state: every pair of the fixed
    sets, zero where there is none (an agent's words never make a label)."""
    gauge = GaugeMetricFamily(
        "fleetwarden_agent_messages",
        "Messages agents sent each other (all time), by kind (message, task, review) and "
        "state (queued, delivered, refused).",
        labels=["kind", "state"],
    )
    for kind in get_args(MessageKind):
        for state in get_args(MessageState):
            gauge.add_metric([kind, state], counts.get((kind, state), 0))
    return gauge


class Metrics:
    """This app's registry: the live histograms and counters, and the scrape's reading."""

    def __init__(self, version: str = "", commit: str | None = None) -> None:
        """``version``, ``commit``: the build this process runs (``fleetwarden_build_info``;
        an empty ``commit`` label where it is not known)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._read = _Read()
        self._scraping = asyncio.Lock()  # one scrape's snapshot at a time
        self.registry.register(self._read)
        self.ttfb = Histogram(
            "fleetwarden_proxy_ttfb_seconds",
            "Time from a model request to the provider's first byte, through the proxy.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.total = Histogram(
            "fleetwarden_proxy_request_seconds",
            "Time from a model request to its last byte, through the proxy.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.send_failures = Counter(
            "fleetwarden_chat_send_failures",
            "Chat posts (replies, notices, edits) a connector failed to deliver.",
            ["connector"],
            registry=self.registry,
        )
        self.receive_failures = Counter(
            "fleetwarden_chat_receive_failures",
            "Chat events a connector received and could not take or handle (each logged "
            "with its event id).",
            ["connector"],
            registry=self.registry,
        )

        Info(
            "fleetwarden_build",
            "The Fleetwarden this process runs: its version, and its commit from a checkout.",
            registry=self.registry,
        ).info({"version": version, "commit": commit or ""})
        self.mcp_calls = Counter(
            "fleetwarden_mcp_calls",
            "Calls agents made through the MCP door, by the config's server name and how "
            "each ended.",
            ["server", "outcome"],
            registry=self.registry,
        )

    def observe(self, usage: Iterable[UsageEvent]) -> None:
        """A batch the proxy metered: each request's latencies into the histograms."""
        for event in usage:
            if event.ttfb_ms is not None:
                self.ttfb.labels(event.provider).observe(event.ttfb_ms / 1000)
            if event.latency_ms is not None:
                self.total.labels(event.provider).observe(event.latency_ms / 1000)

    def send_failed(self, connector: str) -> None:
        self.send_failures.labels(connector).inc()

    def receive_failed(self, connector: str) -> None:
        self.receive_failures.labels(connector).inc()

    def mcp_called(self, server: str, outcome: str) -> None:
        """A call through the MCP door ended: ``server`` a config's name, ``outcome`` one of
        :class:`fleet.mcp.hooks.Outcome` (the caller keeps both so: never a tool's name)."""
        self.mcp_calls.labels(server, outcome).inc()

    async def render(self, snapshot: Snapshot, usage: UsageSource) -> bytes:
        """The text a scrape gets: ``snapshot``, the usage rows written since the last
        scrape added to the running counters, and the live histograms."""
        async with self._scraping:
            sums, last = await usage(self._read.after)
            self._read.add(sums, last)
            self._read.snapshot = snapshot
            return await asyncio.to_thread(generate_latest, self.registry)

    def sink(self, write: Write) -> ObservedSink:
        """``write`` (the metering proxy's ledger sink), its batches' latencies observed."""
        return ObservedSink(write, self)


class ObservedSink:
    """The proxy's sink to the ledger, with each batch's latencies observed on the way."""

    def __init__(self, write: Write, metrics: Metrics) -> None:
        self._write = write
        self._metrics = metrics

    async def __call__(self, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> None:
        self._metrics.observe(usage)
        await self._write(usage, signals)
