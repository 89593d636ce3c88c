"""The ledger's ``run_reports`` table (migration 11): for each run, where it worked (its
host, its directory and the git HEAD there before and after), why it started, and how it
went as its own output tells — the facts a run's summary and ``runs NAME`` show beside
the metered usage."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from fleet.ledger.access import Store
from fleet.ledger.engine import Row, replace_into
from fleet.ledger.rows import RunRecord, to_epoch

_MESSAGE_CAP = 4000  # the last message is kept for a summary, not as a transcript


@dataclass(frozen=True, slots=True)
class RunStart:
    """What is known of a run when it starts."""

    trigger: str  # "spawned by @alice:hs", "restart 1 by the watchdog: …"
    accounts: tuple[str, ...]  # the accounts that pay for it ("" when none)
    workdir: str | None
    git_before: str | None
    log_offset: int  # where its output begins in the agent's log
    runtime: str | None = None  # the CLI it ran, and the model asked of it (None: its own)
    model: str | None = None


@dataclass(frozen=True, slots=True)
class RunEnd:
    """What is known of a run when it has ended."""

    outcome: str  # a :class:`fleet.transcript.story.Outcome` value
    why: str  # in words, naming the fix when there is one
    git_after: str | None = None
    turns: int | None = None
    cli_duration_ms: int | None = None
    cli_cost_usd: float | None = None
    last_message: str | None = None
    tool_calls: int = 0
    unreadable_lines: int = 0


@dataclass(frozen=True, slots=True)
class RunReport:
    """A run as its summary tells it: the ledger's run, how it started, and how it ended
    (``None`` while it runs, or for runs from before reports were kept)."""

    run: RunRecord
    host: str | None
    start: RunStart | None
    end: RunEnd | None


_RECORD_START: Final = replace_into(
    "run_reports",
    ("run_id",),
    [
        "run_id",
        "agent",
        "host",
        "trigger",
        "accounts",
        "workdir",
        "git_before",
        "log_offset",
        "runtime",
        "model",
    ],
    # What a run's end records, from an earlier start of the same run id, is gone.
    reset={
        **dict.fromkeys(
            [
                "git_after",
                "outcome",
                "why",
                "turns",
                "cli_duration_ms",
                "cli_cost_usd",
                "last_message",
            ],
            "NULL",
        ),
        "tool_calls": "0",
        "unreadable_lines": "0",
    },
)


class RunReportsLedger:
    """The run report queries of :class:`~fleet.ledger.store.Ledger`."""

    async def record_run_start(self: Store, run: RunRecord, start: RunStart) -> None:
        async with self._transaction(f"record how run {run.id} started") as conn:
            await conn.execute(
                _RECORD_START,
                (
                    run.id,
                    run.agent,
                    # The machine it ran on: its host's name, or this one's.
                    self._hosts.get(run.agent) or socket.gethostname(),
                    start.trigger,
                    ",".join(start.accounts),
                    start.workdir,
                    start.git_before,
                    start.log_offset,
                    start.runtime,
                    start.model,
                ),
            )

    async def record_run_end(self: Store, run_id: int, end: RunEnd) -> None:
        """Record how run ``run_id`` went; a run without a start report gets none."""
        message = end.last_message
        if message is not None and len(message) > _MESSAGE_CAP:
            message = message[: _MESSAGE_CAP - 1] + "…"
        async with self._transaction(f"record how run {run_id} ended") as conn:
            await conn.execute(
                "UPDATE run_reports SET outcome = ?, why = ?, git_after = ?, turns = ?,"
                " cli_duration_ms = ?, cli_cost_usd = ?, last_message = ?, tool_calls = ?,"
                " unreadable_lines = ? WHERE run_id = ?",
                (
                    end.outcome,
                    end.why,
                    end.git_after,
                    end.turns,
                    end.cli_duration_ms,
                    end.cli_cost_usd,
                    message,
                    end.tool_calls,
                    end.unreadable_lines,
                    run_id,
                ),
            )

    async def run_start(self: Store, run_id: int) -> RunStart | None:
        row = await self._one("SELECT * FROM run_reports WHERE run_id = ?", (run_id,))
        return None if row is None else _start(row)

    async def run_report(self: Store, run_id: int) -> RunReport | None:
        rows = await self._all(f"{_JOINED} WHERE r.id = ?", (run_id,))
        return _report(rows[0]) if rows else None

    async def run_reports(self: Store, agent: str, limit: int = 5) -> list[RunReport]:
        """``agent``'s latest ``limit`` runs, newest first."""
        rows = await self._all(
            f"{_JOINED} WHERE r.agent = ? ORDER BY r.id DESC LIMIT ?", (agent, limit)
        )
        return [_report(row) for row in rows]

    async def run_costs(
        self: Store,
        agent: str,
        runtime: str,
        model: str | None,
        limit: int = 100,
        *,
        before: datetime | None = None,
    ) -> list[tuple[int, float | None]]:
        """What ``agent``'s latest ``limit`` finished runs on ``runtime`` with ``model``
        spent: each run's tokens and priced dollars (``None`` when none of its requests had
        a price), from the usage metered while it ran. ``before``: only runs started before
        then (the history of a run started then, without the run itself)."""
        since = "" if before is None else " AND r.started_at < ?"
        rows = await self._all(
            f"""SELECT (SELECT COALESCE(SUM({_TOKENS}), 0) FROM usage u
                      WHERE u.agent = r.agent AND u.at >= r.started_at AND u.at <= r.ended_at),
                    (SELECT SUM(CASE WHEN u.priced = 1 THEN u.cost_usd END) FROM usage u
                      WHERE u.agent = r.agent AND u.at >= r.started_at AND u.at <= r.ended_at)
                FROM runs r JOIN run_reports p ON p.run_id = r.id
                WHERE r.agent = ? AND r.ended_at IS NOT NULL AND p.runtime = ?
                    AND p.model IS ?{since} ORDER BY r.id DESC LIMIT ?""",
            (agent, runtime, model, *([] if before is None else [to_epoch(before)]), limit),
        )
        return [(int(row[0]), None if row[1] is None else float(row[1])) for row in rows]

    async def spent_since(self: Store, agent: str, since: datetime) -> tuple[int, float]:
        """The tokens and priced dollars ``agent``'s requests used from ``since`` on (what a
        run still going has spent, when Fleetwarden starts again)."""
        row = await self._one(
            f"SELECT COALESCE(SUM({_TOKENS}), 0),"
            " COALESCE(SUM(CASE WHEN priced = 1 THEN cost_usd END), 0.0)"
            " FROM usage WHERE agent = ? AND at >= ?",
            (agent, to_epoch(since)),
        )
        return (0, 0.0) if row is None else (int(row[0]), float(row[1]))


_TOKENS = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"
_JOINED = (
    "SELECT r.*, p.host AS p_host, p.trigger AS p_trigger, p.accounts AS p_accounts,"
    " p.workdir AS p_workdir, p.git_before AS p_git_before, p.git_after AS p_git_after,"
    " p.log_offset AS p_log_offset, p.outcome AS p_outcome, p.why AS p_why, p.turns AS p_turns,"
    " p.cli_duration_ms AS p_cli_duration_ms, p.cli_cost_usd AS p_cli_cost_usd,"
    " p.last_message AS p_last_message, p.tool_calls AS p_tool_calls,"
    " p.unreadable_lines AS p_unreadable_lines"
    " FROM runs r LEFT JOIN run_reports p ON p.run_id = r.id"
)


def _start(row: Row, prefix: str = "") -> RunStart:
    accounts = str(row[f"{prefix}accounts"] or "")
    return RunStart(
        trigger=str(row[f"{prefix}trigger"]),
        accounts=tuple(a for a in accounts.split(",") if a),
        workdir=row[f"{prefix}workdir"],
        git_before=row[f"{prefix}git_before"],
        log_offset=int(row[f"{prefix}log_offset"]),
    )


def _report(row: Row) -> RunReport:
    run = RunRecord.from_row(row)
    if row["p_trigger"] is None:
        return RunReport(run, None, None, None)
    end = None
    if row["p_outcome"] is not None:
        end = RunEnd(
            outcome=str(row["p_outcome"]),
            why=str(row["p_why"] or ""),
            git_after=row["p_git_after"],
            turns=row["p_turns"],
            cli_duration_ms=row["p_cli_duration_ms"],
            cli_cost_usd=row["p_cli_cost_usd"],
            last_message=row["p_last_message"],
            tool_calls=int(row["p_tool_calls"]),
            unreadable_lines=int(row["p_unreadable_lines"]),
        )
    return RunReport(run, str(row["p_host"]), _start(row, "p_"), end)
