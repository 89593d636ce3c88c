"""The ledger's runs: the ``runs`` table, each process launched for an agent and how it
ended, and the ``run_reports`` table (migration 11): for each run, where it worked (its
host, its directory and the git HEAD there before and after), why it started, and how it
went as its own output tells — the facts a run's summary and ``runs NAME`` show beside
the metered usage."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from fleet.errors import LedgerError
from fleet.ledger.database.access import Access, Store
from fleet.ledger.database.engine import Database, Row, insert_id, replace_into
from fleet.ledger.records.epoch import to_epoch
from fleet.ledger.records.rows import Parsed, RunRecord
from fleet.ledger.stores.running.agents import agent_in
from fleet.model import ExitInfo, RunHandle

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


class RunsStore(Store):
    """Runs: each process launched for an agent and how it ended, and its report (where
    it worked, why it started, how it went)."""

    def __init__(self, access: Access) -> None:
        super().__init__(access)
        self._last_runs = Parsed(RunRecord.from_row)  # by agent name

    async def start_run(
        self, name: str, handle: RunHandle, at: datetime | None = None
    ) -> RunRecord:
        """Record that a process was launched for ``name`` (on the agent's host)."""
        when = self._epoch(at)
        async with self._transaction(f"record a run of {name}") as conn:
            agent = await agent_in(conn, name)
            run_id = await insert_id(
                conn,
                "INSERT INTO runs (agent, backend, pid, pgid, start_ticks, session, run_dir,"
                " log_path, started_at, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    handle.backend,
                    handle.pid,
                    handle.pgid,
                    handle.start_ticks,
                    handle.session,
                    str(handle.run_dir),
                    str(handle.log_path),
                    when,
                    agent.host,
                ),
            )
            return await _run_in(conn, run_id)

    async def end_run(self, run_id: int, exit: ExitInfo, at: datetime | None = None) -> RunRecord:
        """Record how run ``run_id`` ended; a run that already ended keeps its first result."""
        when = self._epoch(at)
        async with self._transaction(f"end run {run_id}") as conn:
            await conn.execute(
                "UPDATE runs SET ended_at = ?, exit_code = ?, reason = ?"
                " WHERE id = ? AND ended_at IS NULL",
                (when, exit.exit_code, exit.reason, run_id),
            )
            return await _run_in(conn, run_id)

    async def open_runs(self) -> list[RunRecord]:
        """Runs not yet ended, oldest first: the processes to re-adopt after a restart."""
        rows = await self._all("SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id", ())
        return [RunRecord.from_row(row) for row in rows]

    async def open_sessions(self) -> set[str]:
        """The backend sessions (tmux's) of the runs not yet ended."""
        rows = await self._all(
            "SELECT session FROM runs WHERE ended_at IS NULL AND session IS NOT NULL", ()
        )
        return {str(row[0]) for row in rows}

    async def last_run(self, name: str) -> RunRecord | None:
        """The most recent run of ``name``, open or ended."""
        row = await self._one(
            "SELECT * FROM runs WHERE agent = ? ORDER BY id DESC LIMIT 1", (name,)
        )
        return None if row is None else RunRecord.from_row(row)

    async def last_runs(self) -> dict[str, RunRecord]:
        """Every agent's most recent run, in one query (for ``ps`` and the watchdog)."""
        rows = await self._all(
            "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY agent)", ()
        )
        runs = {str(row["agent"]): self._last_runs(str(row["agent"]), row) for row in rows}
        self._last_runs.keep_only(runs)
        return runs

    # -- reports ----------------------------------------------------------------------------

    async def record_run_start(self, run: RunRecord, start: RunStart) -> None:
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

    async def record_run_end(self, run_id: int, end: RunEnd) -> None:
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

    async def run_start(self, run_id: int) -> RunStart | None:
        row = await self._one("SELECT * FROM run_reports WHERE run_id = ?", (run_id,))
        return None if row is None else _start(row)

    async def run_report(self, run_id: int) -> RunReport | None:
        rows = await self._all(f"{_JOINED} WHERE r.id = ?", (run_id,))
        return _report(rows[0]) if rows else None

    async def run_reports(self, agent: str, limit: int = 5) -> list[RunReport]:
        """``agent``'s latest ``limit`` runs, newest first."""
        rows = await self._all(
            f"{_JOINED} WHERE r.agent = ? ORDER BY r.id DESC LIMIT ?", (agent, limit)
        )
        return [_report(row) for row in rows]

    async def run_costs(
        self,
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
        found = await self.run_basis(agent, runtime, model, limit, before=before)
        return [(tokens, usd) for _, tokens, usd in found]

    async def run_basis(
        self,
        agent: str,
        runtime: str,
        model: str | None,
        limit: int = 100,
        *,
        before: datetime | None = None,
    ) -> list[tuple[int, int, float | None]]:
        """:meth:`run_costs` with each run's id first: ``(run id, tokens, dollars)``,
        newest first."""
        since = "" if before is None else " AND r.started_at < ?"
        rows = await self._all(
            f"""SELECT r.id,
                    (SELECT COALESCE(SUM({_TOKENS}), 0) FROM usage u
                      WHERE u.agent = r.agent AND u.at >= r.started_at AND u.at <= r.ended_at),
                    (SELECT SUM(CASE WHEN u.priced = 1 THEN u.cost_usd END) FROM usage u
                      WHERE u.agent = r.agent AND u.at >= r.started_at AND u.at <= r.ended_at)
                FROM runs r JOIN run_reports p ON p.run_id = r.id
                WHERE r.agent = ? AND r.ended_at IS NOT NULL AND p.runtime = ?
                    AND p.model IS ?{since} ORDER BY r.id DESC LIMIT ?""",
            (agent, runtime, model, *([] if before is None else [to_epoch(before)]), limit),
        )
        return [
            (int(row[0]), int(row[1]), None if row[2] is None else float(row[2])) for row in rows
        ]

    async def spent_since(self, agent: str, since: datetime) -> tuple[int, float]:
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


async def _run_in(conn: Database, run_id: int) -> RunRecord:
    rows = list(await conn.execute_fetchall("SELECT * FROM runs WHERE id = ?", (run_id,)))
    if not rows:
        raise LedgerError(f"no run with id {run_id}")
    return RunRecord.from_row(rows[0])
