"""The ledger's schema steps: every numbered migration, oldest first.

Never edit a shipped step; append a new one (the machinery that applies them is
:mod:`fleet.ledger.database.migrations`). Conventions: times are ``REAL`` unix epoch seconds in UTC,
agents are referenced by ``agents(name)``, runs by ``runs(id)``. Metering rows (step 4) are
the exception: they keep the agent's name as plain text, because usage must outlive the agent
and a refused request may name an agent that never existed. Every step is SQL that both
engines speak (:mod:`fleet.ledger.database.engine`; PostgreSQL's spelling of it is
:func:`fleet.ledger.database.pg_sql.translate`'s).

The steps are kept in modules by era: :mod:`.foundation` (1-8: the fleet, chat,
metering, budgets, schedules, accounts, cutoffs), :mod:`.operations` (9 on: the spawn
queue, roster membership, run reports, chat answers, refusals, levers, approvals, hosts,
repositories), :mod:`.forges` (22 on: work from the forge),
:mod:`.spend` (26 on: quotes and the asks at a cap), :mod:`.work` (28 on: tasks and
missions), :mod:`.peers` (29 on: messages between agents, reviews by a second agent) and
:mod:`.register` (30 on: the register's texts redacted as they are stored, and for
which secrets), :mod:`.mcp` (32 on: the calls through the MCP door) and
:mod:`.pipelines` (33 on: the stages of pipelines; 35: the line and commit a gate
judged) and :mod:`.confirming` (34 on: what a confirmation's command decided).
"""

from __future__ import annotations

from fleet.ledger.database.steps.confirming import CONFIRMING
from fleet.ledger.database.steps.forges import FORGES
from fleet.ledger.database.steps.foundation import FOUNDATION
from fleet.ledger.database.steps.mcp import MCP
from fleet.ledger.database.steps.migration import Migration
from fleet.ledger.database.steps.operations import OPERATIONS
from fleet.ledger.database.steps.peers import PEERS
from fleet.ledger.database.steps.pipelines import GATES, PIPELINES
from fleet.ledger.database.steps.register import REGISTER
from fleet.ledger.database.steps.spend import SPEND
from fleet.ledger.database.steps.work import WORK

__all__ = ["MIGRATIONS", "Migration"]

MIGRATIONS: tuple[Migration, ...] = (
    *FOUNDATION,
    *OPERATIONS,
    *FORGES,
    *SPEND,
    *WORK,
    *PEERS,
    *REGISTER,
    *MCP,
    *PIPELINES,
    *CONFIRMING,
    *GATES,
)
