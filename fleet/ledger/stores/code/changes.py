"""The ledger's read of changes: each line (``branches``, migration 21) some run worked on,
with the runs that worked on it, what they spent and the approvals they asked, and how the
pull requests of its forge runs (``forge_runs``, ``forge_audit``, migration 22) ended — the
facts the cost of a merged change is reckoned from (:mod:`fleet.budgets.changes`).

Which runs worked on a line. A run works on the line that was its agent's newest live line
when it started (:meth:`fleet.repos.service.Repos.started` binds it), and the ledger keeps
each line's first and last run. Runs go to the newest live line, so a line cut while an
older one is live takes every run of the agent until it ends, and the older one none:
the spans from first to last run of one agent's lines nest. A run of the agent belongs to
the innermost span that holds it — the one that began last. (A run launched without a
repository inside a span, by a spawn naming none while the agent's branch was live, is
counted with that branch: the ledger keeps no run's line apart from these spans.)

Which usage a run spent. The usage rows of its agent metered from its start to its end (to
now while it runs), as :meth:`fleet.ledger.stores.running.runs.RunsStore.run_costs` reads them —
one agent runs one run at a time. Tokens are input, output, cache read and cache write;
dollars are those of priced rows. A row's model is the one that served it
(:data:`fleet.ledger.stores.spend.usage_rows.MODEL`).

Which approvals its runs asked: the asks put to people — not those a rule or the policy
answered at once (``how`` ``rule`` or ``policy``, :meth:`fleet.approvals.service.Approvals.open`).

How a forge run's pull request ended: the ``end`` the forge audit keeps when a pull
request closes (``PR #N merged`` or ``PR #N closed``, written by
:mod:`fleet.forge.runs.work`), as its status comment reads it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.records.changes import ChangeFacts, ChangeUse, ForgeEnd
from fleet.ledger.records.epoch import from_epoch, optional_epoch, to_epoch
from fleet.ledger.records.lines import LineState
from fleet.ledger.stores.spend.usage_rows import MODEL, TOTAL_TOKENS

_CHOSEN = """chosen AS (
    SELECT b.id FROM branches b WHERE b.first_run IS NOT NULL AND (b.state = 'live'
        OR b.ended_at >= ?
        OR EXISTS (SELECT 1 FROM forge_runs f WHERE f.line_id = b.id AND f.ended_at >= ?)))"""
"""The lines a report since a time may show: some run worked on them, and they are live,
or ended (here, or their forge run) since then."""

_WORKED = """worked AS (
    SELECT r.id AS run_id, b.id AS line_id FROM runs r
    JOIN branches b ON b.agent = r.agent AND r.id BETWEEN b.first_run AND b.last_run
    WHERE b.id IN (SELECT id FROM chosen) AND NOT EXISTS (
        SELECT 1 FROM branches c WHERE c.agent = r.agent
            AND r.id BETWEEN c.first_run AND c.last_run AND c.first_run > b.first_run))"""
"""Each run of a chosen line: the innermost span of its agent's lines that holds it."""

_SPENT = f"""SELECT w.line_id, p.runtime, s.model, COALESCE(SUM(s.tokens), 0) AS tokens,
        COALESCE(SUM(s.cost), 0) AS cost_usd,
        COALESCE(SUM(CASE WHEN s.priced = 0 AND s.tokens > 0 THEN 1 ELSE 0 END), 0) AS unpriced
    FROM worked w
    LEFT JOIN run_reports p ON p.run_id = w.run_id
    LEFT JOIN (
        SELECT r.id AS run_id, {MODEL} AS model, {TOTAL_TOKENS} AS tokens,
            CASE WHEN priced = 1 THEN cost_usd END AS cost, priced
        FROM runs r JOIN usage u ON u.agent = r.agent
            AND u.at >= r.started_at AND u.at <= COALESCE(r.ended_at, ?)
        WHERE r.id IN (SELECT run_id FROM worked)
    ) s ON s.run_id = w.run_id
    GROUP BY w.line_id, p.runtime, s.model"""

_LINES = """SELECT b.id, b.agent, b.repo, b.state, b.created_at, b.ended_at,
        (SELECT started_at FROM runs WHERE id = b.last_run) AS last_run_at,
        (SELECT COUNT(*) FROM worked w WHERE w.line_id = b.id) AS runs,
        (SELECT COUNT(*) FROM approvals a JOIN worked w ON w.run_id = a.run_id
            WHERE w.line_id = b.id AND (a.how IS NULL OR a.how NOT IN ('rule', 'policy'))
        ) AS approvals
    FROM branches b WHERE b.id IN (SELECT id FROM chosen) ORDER BY b.id"""

_FORGE = """SELECT f.line_id, f.state, f.ended_at, e.detail, e.at FROM forge_runs f
    LEFT JOIN forge_audit e ON e.forge_run = f.id AND e.op = 'end' AND e.allowed = 1
        AND (e.detail LIKE 'PR #% merged' OR e.detail LIKE 'PR #% closed')
    WHERE f.line_id IN (SELECT id FROM chosen) ORDER BY f.id, e.id"""


class ChangesStore(Store):
    """Changes: lines, the runs that worked on them and what those spent."""

    async def changes(self, since: datetime) -> list[ChangeFacts]:
        """Every line some run worked on that is live, or ended since ``since`` (merged or
        discarded here, or its forge run ended), oldest first, with its runs' spending
        summed by runtime and model (all of it, before ``since`` too)."""
        at, now = to_epoch(since), self._epoch(None)
        head = f"WITH {_CHOSEN}, {_WORKED} "
        lines = await self._all(head + _LINES, (at, at))
        if not lines:
            return []
        use: dict[int, list[ChangeUse]] = defaultdict(list)
        for row in await self._all(head + _SPENT, (at, at, now)):
            use[int(row["line_id"])].append(
                ChangeUse(
                    runtime=row["runtime"],
                    model=row["model"],
                    tokens=int(row["tokens"]),
                    cost_usd=float(row["cost_usd"]),
                    unpriced=int(row["unpriced"]),
                )
            )
        forge: dict[int, list[ForgeEnd]] = defaultdict(list)
        for row in await self._all(f"WITH {_CHOSEN} {_FORGE}", (at, at)):
            detail = str(row["detail"] or "")
            forge[int(row["line_id"])].append(
                ForgeEnd(
                    state=str(row["state"]),
                    ended_at=optional_epoch(row["ended_at"]),
                    pull_end=detail.rpartition(" ")[2] or None,
                    pull_end_at=optional_epoch(row["at"]),
                )
            )
        return [
            ChangeFacts(
                line_id=int(row["id"]),
                agent=str(row["agent"]),
                repo=str(row["repo"]),
                state=LineState(row["state"]),
                created_at=from_epoch(row["created_at"]),
                ended_at=optional_epoch(row["ended_at"]),
                last_run_at=optional_epoch(row["last_run_at"]),
                runs=int(row["runs"]),
                approvals=int(row["approvals"]),
                use=tuple(use.get(int(row["id"]), ())),
                forge=tuple(forge.get(int(row["id"]), ())),
            )
            for row in lines
        ]
