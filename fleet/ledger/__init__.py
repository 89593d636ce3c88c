"""The ledger: Fleetwarden's durable store (SQLite or PostgreSQL), one store per concern —
agents, runs, lines, forge, approvals, budgets, metering, chat, audit, schedules and more."""

from __future__ import annotations

from fleet.ledger.budget_records import Freeze
from fleet.ledger.budgets import StepRecord
from fleet.ledger.chat_records import REPLACEABLE, AnswerState, ChatAnswer, Confirmation
from fleet.ledger.migrations import LATEST_VERSION, MIGRATIONS, Migration, migrate
from fleet.ledger.operator_schedules import ScheduleRecord
from fleet.ledger.rows import AgentEvent, AgentRecord, AuditEntry, AuditOutcome, RunRecord
from fleet.ledger.spawn_queue import QueuedSpawn, SpawnAsk
from fleet.ledger.store import Ledger
from fleet.ledger.usage_rows import UsageTotal

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "REPLACEABLE",
    "AgentEvent",
    "AgentRecord",
    "AnswerState",
    "AuditEntry",
    "AuditOutcome",
    "ChatAnswer",
    "Confirmation",
    "Freeze",
    "Ledger",
    "Migration",
    "QueuedSpawn",
    "RunRecord",
    "ScheduleRecord",
    "SpawnAsk",
    "StepRecord",
    "UsageTotal",
    "migrate",
]
