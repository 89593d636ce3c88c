"""Forge intake and the forge door: what a webhook delivery and an agent's ``fw-forge read``
cost, each against a bare aiohttp handler (the floor) in one interleaved run.

    python -m bench.forge [--runs 5] [--rounds 10] [--burst1 50] [--burst16 160]
        [--door-calls 300] [--cli-runs 5] [--profile] [--profile-deliveries 300]
        [--json out.json] [--keep]

All in this process, on one event loop, on 127.0.0.1: the servers and the aiohttp client
posting to them (keep-alive: the handling is measured, not TCP set-up). Logging is the
app's (``setup_logging``: a file at info through the redacting filter).

**Webhook intake.** The real :class:`~fleet.forge.events.endpoint.WebhookEndpoint` for a GitHub
forge (signature, parse, staleness, the real SQLite ledger's ``take_delivery``, refusals
audited into the ledger as the app does, a ``receive`` that only counts) against a handler
that reads the body and answers 202. Real signed GitHub deliveries (``issues labeled``,
``issue_comment created``, 9–12 KB, from ``tests/fakes/forge/webhook_sender.py``), built before
each burst. Modes: *new* (fresh delivery ids: 202) and *redelivery* (ids recorded before:
200 "already had it"). Each round, per mode, posts a burst of ``--burst1`` one at a time
and one of ``--burst16`` with 16 in flight to each party in turn (who goes first
alternating). The whole is measured ``--runs`` times over (each run its own rounds, on the
same ledger). Reported for each run: p50/p95 per delivery, deliveries per second, ratios to
the floor; then issue 73's goals for new deliveries (p50 ≤ 2× the floor's one at a time,
≥ 2,000 a second 16 in flight), each met only if met on every run, with its figure in each;
and — when one is missed, or with ``--profile`` — where the time goes
(:mod:`bench.forge_stages`).

**The forge door.** The real :class:`~fleet.forge.door.door.ForgeDoor` on an aiohttp app with a
real ``AgentSecrets``, reading from an in-memory ``ForgeApi`` double (one issue, a 1.1 KB
markdown body), cleaning with :func:`fleet.markdown.hidden.clean`, auditing into the ledger (as
the desk does, without the run's activity update), against a handler that reads the body
and answers the same JSON. The call is ``fw-forge read 7``'s, with the agent's token;
calls alternate, one at a time, after 20 warm-up calls each. Then ``--cli-runs`` runs of
the real ``fw-forge read 7`` (the system's python3, as in an agent), each beside the bare
interpreter with the command's imports, and without them.

The intake is :mod:`bench.forge_intake`'s, the door :mod:`bench.forge_door`'s, the two
parties served side by side :mod:`bench.forge_parties`'; this module runs both and reports.
"""

from __future__ import annotations

import argparse
import functools
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.forge_door import DoorResult, door
from bench.forge_intake import Cell, goal_figures, stages, webhooks
from bench.forge_stages import Stages, goal_lines, met, stage_lines
from bench.harness import execute
from bot.app.logs import setup_logging
from fleet.ledger import Ledger
from fleet.redaction.redactor import Redactor
from fleet.timing.clock import SystemClock


@dataclass
class Result:
    rounds: int
    webhooks: list[list[Cell]]
    """Each run's cells."""
    door: DoorResult
    stages: Stages | None = None


async def measure(root: Path, args: argparse.Namespace) -> Result:
    """Both measurements, with the app's logging into ``root`` and a ledger there."""
    setup_logging("info", root / "fleetwarden.log", Redactor())
    stderr = (root / "stderr.log").open("a", encoding="utf-8")
    handlers = logging.getLogger().handlers
    for handler in handlers:
        if type(handler) is logging.StreamHandler:
            handler.setStream(stderr)  # the warnings the terminal would show, kept aside
    ledger = await Ledger.open(root / "ledger.db", SystemClock())
    try:
        sizes = {1: args.burst1, 16: args.burst16}
        runs = [await webhooks(ledger, args.rounds, sizes) for _ in range(args.runs)]
        result = Result(args.rounds, runs, await door(root, ledger, args.door_calls, args.cli_runs))
        if args.profile or not all(met(*goal_figures(cells)) for cells in runs):
            result.stages = await stages(ledger, args.profile_deliveries)
        return result
    finally:
        await ledger.close()
        for handler in list(handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
        stderr.close()


def report(result: Result) -> str:
    """The tables: webhook intake by mode and concurrency (its goals, and where its time
    goes when one is missed), then the door."""
    lines = [
        f"webhook intake, {len(result.webhooks)} runs of {result.rounds} rounds (ms; deliveries/s)",
        f"{'run':<4}{'mode':<11}{'conc':>5}  {'FW p50':>7}{'p95':>7}{'/s':>7}  "
        f"{'floor p50':>9}{'p95':>7}{'/s':>7}  {'ratio p50':>9}{'p95':>6}{'/s':>6}",
    ]
    for run, c in ((n, c) for n, cells in enumerate(result.webhooks, 1) for c in cells):
        fw, fl = c.latency["fleetwarden"], c.latency["floor"]
        lines.append(
            f"{run:<4}{c.mode:<11}{c.concurrency:>5}  {fw['p50']:>7.2f}{fw['p95']:>7.2f}"
            f"{c.per_second['fleetwarden']:>7.0f}  {fl['p50']:>9.2f}{fl['p95']:>7.2f}"
            f"{c.per_second['floor']:>7.0f}  {c.ratio['p50']:>9.2f}{c.ratio['p95']:>6.2f}"
            f"{c.ratio['per_second']:>6.2f}"
        )
    lines += goal_lines([goal_figures(cells) for cells in result.webhooks])
    if result.stages is not None:
        lines += stage_lines(result.stages)
    d = result.door
    lines += [
        "",
        f"forge door, fw-forge read ({d.answer_chars} characters answered; ms)",
        f"{'':<12}{'p50':>7}{'p95':>7}{'mean':>7}{'max':>7}",
        *(
            f"{p:<12}{s['p50']:>7.2f}{s['p95']:>7.2f}{s['mean']:>7.2f}{s['max']:>7.2f}"
            for p, s in d.latency.items()
        ),
    ]
    lines.append(f"{'ratio':<12}{d.ratio['p50']:>7.2f}{d.ratio['p95']:>7.2f}")
    for name, runs in d.processes.items():
        if runs:
            lines.append(f"{name}: median of {len(runs)} {statistics.median(runs):.0f} ms")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.forge", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="whole intake measurements")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of bursts")
    parser.add_argument("--burst1", type=int, default=50, help="deliveries a burst, 1 in flight")
    parser.add_argument("--burst16", type=int, default=160, help="deliveries a burst, 16 in flight")
    parser.add_argument("--door-calls", type=int, default=300, help="measured door calls each")
    parser.add_argument("--cli-runs", type=int, default=5, help="fw-forge processes run")
    parser.add_argument(
        "--profile", action="store_true", help="show where the intake's time goes, goals met or not"
    )
    parser.add_argument(
        "--profile-deliveries", type=int, default=300, help="deliveries timed step by step"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    work = functools.partial(measure, args=args)
    return execute(work, report, keep=args.keep, json_path=args.json, prefix="fw-forge-")


if __name__ == "__main__":
    raise SystemExit(main())
