"""The ledger: Fleetwarden's durable store (SQLite or PostgreSQL), one store per concern —
agents, runs, lines, forge, approvals, budgets, metering, chat, audit, schedules and more."""

from __future__ import annotations

from fleet.ledger.database.migrations import LATEST_VERSION, MIGRATIONS, Migration, migrate
from fleet.ledger.records.budgets import Freeze
from fleet.ledger.records.chat import REPLACEABLE, AnswerState, ChatAnswer, Confirmation
from fleet.ledger.records.rows import AgentEvent, AgentRecord, AuditEntry, AuditOutcome, RunRecord
from fleet.ledger.store import Ledger
from fleet.ledger.stores.running.schedules import ScheduleRecord
from fleet.ledger.stores.running.spawn_queue import QueuedSpawn, SpawnAsk
from fleet.ledger.stores.spend.budgets import StepRecord
from fleet.ledger.stores.spend.usage_rows import UsageTotal

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
