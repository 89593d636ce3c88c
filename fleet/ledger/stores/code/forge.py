"""The ledger's forge tables (migration 22): forge runs, the webhook deliveries taken (so a
redelivery never starts a second run), the forge operations audited, and where the poller
got to.

A delivery's take and an audit line are claims group-committed
(:class:`~fleet.ledger.database.claims.ClaimGroup`): those that come while one is being
written go in the next transaction together, each caller answered once its own is committed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fleet.ledger.database.access import Access, Store
from fleet.ledger.database.claims import ClaimGroup
from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch, optional_epoch
from fleet.ledger.records.forge import (
    DeliveryRecord,
    ForgeAuditLine,
    ForgeRunRecord,
    ForgeRunState,
    NewForgeRun,
    Slug,
)

_RUN_FIELDS = frozenset(
    {
        "title",
        "state",
        "pull",
        "pull_url",
        "comment_id",
        "check_id",
        "run_id",
        "line_id",
        "done_signal",
        "done_status",
        "summary",
        "activity_at",
        "ended_at",
        "branch",
    }
)
_TIMES = frozenset({"activity_at", "ended_at"})
DETAIL_CAP = 500
_TAKE = (
    "INSERT INTO forge_deliveries (forge, delivery, event, received_at, kept)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING delivery"
)
_AUDIT_LINE = (
    "INSERT INTO forge_audit (forge_run, agent, at, op, allowed, detail) VALUES (?, ?, ?, ?, ?, ?)"
)
_AUDIT = f"{_AUDIT_LINE} RETURNING id"  # a claim is answered by the row it wrote


def _run(row: Row) -> ForgeRunRecord:
    return ForgeRunRecord(
        id=int(row["id"]),
        forge=row["forge"],
        repo=row["repo"],
        slug=Slug.parse(row["slug"]),
        issue=int(row["issue"]),
        title=row["title"],
        agent=row["agent"],
        branch=row["branch"],
        state=row["state"],
        requester=row["requester"],
        pull=row["pull"],
        pull_url=row["pull_url"],
        issue_url=row["issue_url"],
        comment_id=row["comment_id"],
        check_id=row["check_id"],
        run_id=row["run_id"],
        line_id=row["line_id"],
        done_signal=row["done_signal"],
        done_status=row["done_status"],
        summary=row["summary"],
        started_at=from_epoch(row["started_at"]),
        activity_at=optional_epoch(row["activity_at"]),
        ended_at=optional_epoch(row["ended_at"]),
    )


class ForgeStore(Store):
    """Forge runs, webhook deliveries, the forge audit and poll cursors."""

    def __init__(self, access: Access) -> None:
        super().__init__(access)
        self._claims = ClaimGroup(access, "forge deliveries and audit lines")

    # -- deliveries --------------------------------------------------------------------

    async def take_delivery(
        self, forge: str, delivery: str, event: str, kept: str = "", digest: str = ""
    ) -> bool:
        """Record delivery ``delivery`` of ``forge`` (with ``kept``, the event it carries,
        until its outcome is written); False when it was had before. With ``digest`` (its
        body's, as a key of its own) the digest is recorded first, in the same
        transaction: False when it was had before (the body replayed under another id),
        and then the delivery id is not recorded. Returns once committed."""
        at = self._epoch(None)
        take = [(_TAKE, (forge, delivery, event, at, kept))]
        if digest:
            take.insert(0, (_TAKE, (forge, digest, event, at, "")))
        return await self._claims.claim(take)

    async def unsettled_deliveries(self, since: datetime) -> list[tuple[str, str, str]]:
        """``(forge, delivery, kept)`` of each delivery taken since ``since`` with its event
        kept and no outcome yet (Fleetwarden stopped before acting on it), oldest first."""
        rows = await self._all(
            "SELECT forge, delivery, kept FROM forge_deliveries"
            " WHERE outcome = '' AND kept != '' AND received_at >= ? ORDER BY received_at",
            [self._epoch(since)],
        )
        return [(r["forge"], r["delivery"], r["kept"]) for r in rows]

    async def set_delivery_outcome(self, forge: str, delivery: str, outcome: str) -> None:
        async with self._transaction("record what a forge delivery did") as conn:
            await conn.execute(
                "UPDATE forge_deliveries SET outcome = ?, kept = ''"
                " WHERE forge = ? AND delivery = ?",
                (outcome[:DETAIL_CAP] or "-", forge, delivery),
            )

    async def deliveries(self, forge: str | None = None, limit: int = 50) -> list[DeliveryRecord]:
        """The newest deliveries (of ``forge``), newest first."""
        where, params = ("WHERE forge = ?", [forge]) if forge else ("", [])
        rows = await self._all(
            f"SELECT * FROM forge_deliveries {where} ORDER BY received_at DESC LIMIT ?",
            [*params, limit],
        )
        return [
            DeliveryRecord(
                forge=r["forge"],
                delivery=r["delivery"],
                event=r["event"],
                received_at=from_epoch(r["received_at"]),
                outcome=r["outcome"],
            )
            for r in rows
        ]

    # -- forge runs --------------------------------------------------------------------

    async def add_forge_run(self, run: NewForgeRun) -> ForgeRunRecord | None:
        """Forge run ``run`` begun: kept as it is now (with its ``start`` in the forge audit,
        when it says how it was given) in one transaction; None when the issue already has
        a live one (a race lost)."""
        at = self._epoch(None)
        async with self._transaction("record a forge run") as conn:
            rows = await conn.execute_fetchall(
                "SELECT id FROM forge_runs WHERE forge = ? AND slug = ? AND issue = ?"
                " AND ended_at IS NULL",
                (run.forge, str(run.slug), run.issue),
            )
            if rows:
                return None
            rows = await conn.execute_fetchall(
                "INSERT INTO forge_runs (forge, repo, slug, issue, title, agent, branch, state,"
                " requester, issue_url, started_at, activity_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (run.forge, run.repo, str(run.slug), run.issue, run.title, run.agent, run.branch,
                 run.state.value, run.requester, run.issue_url, at, at),
            )  # fmt: skip
            record = _run(rows[0])
            if run.given:
                audited = (record.id, run.agent, at, "start", 1, run.given[:DETAIL_CAP])
                await conn.execute(_AUDIT_LINE, audited)
            return record

    async def update_forge_run(self, run: int, **fields: Any) -> None:
        """Set some of a forge run's fields (see :data:`_RUN_FIELDS`)."""
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise ValueError(f"not a field of a forge run: {sorted(unknown)}")
        if isinstance(fields.get("state"), ForgeRunState):
            fields["state"] = fields["state"].value
        for name in _TIMES & set(fields):
            if fields[name] is not None:
                fields[name] = self._epoch(fields[name])
        names = sorted(fields)
        if not names:
            return
        sets = ", ".join(f"{name} = ?" for name in names)
        async with self._transaction("update a forge run") as conn:
            await conn.execute(
                f"UPDATE forge_runs SET {sets} WHERE id = ?",
                (*(fields[name] for name in names), run),
            )

    async def forge_run(self, run: int) -> ForgeRunRecord | None:
        row = await self._one("SELECT * FROM forge_runs WHERE id = ?", (run,))
        return None if row is None else _run(row)

    async def live_forge_run(
        self, forge: str, slug: Slug, number: int, *, pull: bool | None = None
    ) -> ForgeRunRecord | None:
        """The live forge run of issue ``number`` — or of the pull request ``number`` it
        opened — of ``slug`` on ``forge``: of the issue only (``pull`` False) or the pull
        request only (True), where the forge numbers them apart (GitLab's ``#3`` and
        ``!3`` are two things)."""
        match = {None: "(issue = ? OR pull = ?)", False: "issue = ?", True: "pull = ?"}[pull]
        numbers = (number, number) if pull is None else (number,)
        row = await self._one(
            "SELECT * FROM forge_runs WHERE forge = ? AND slug = ? AND ended_at IS NULL"
            f" AND {match} ORDER BY id DESC LIMIT 1",
            (forge, str(slug), *numbers),
        )
        return None if row is None else _run(row)

    async def agent_forge_run(self, agent: str) -> ForgeRunRecord | None:
        """``agent``'s live forge run that is not queued (the one it works on), if any."""
        row = await self._one(
            "SELECT * FROM forge_runs WHERE agent = ? AND ended_at IS NULL AND state <> ?"
            " ORDER BY id DESC LIMIT 1",
            (agent, ForgeRunState.QUEUED.value),
        )
        return None if row is None else _run(row)

    async def forge_runs(
        self, *, live: bool = True, agent: str | None = None, limit: int = 200
    ) -> list[ForgeRunRecord]:
        """Forge runs (live ones only with ``live``; of ``agent``), oldest first."""
        where, params = [], []
        if live:
            where.append("ended_at IS NULL")
        if agent is not None:
            where.append("agent = ?")
            params.append(agent)
        sql = "SELECT * FROM forge_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._all(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [_run(row) for row in reversed(rows)]

    # -- audit ---------------------------------------------------------------------------

    async def audit_forge(
        self, forge_run: int | None, agent: str, op: str, allowed: bool, detail: str
    ) -> None:
        """Keep one forge operation (``op``: read, comment, …), allowed or refused.
        Returns once committed."""
        at = self._epoch(None)
        row = (forge_run, agent, at, op[:40], int(allowed), detail[:DETAIL_CAP])
        await self._claims.claim([(_AUDIT, row)])

    async def forge_audit(
        self, forge_run: int | None = None, limit: int = 200
    ) -> list[ForgeAuditLine]:
        """The audit of ``forge_run`` (every forge run's: None), oldest first."""
        where, params = ("WHERE forge_run = ?", [forge_run]) if forge_run is not None else ("", [])
        rows = await self._all(
            f"SELECT * FROM forge_audit {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [
            ForgeAuditLine(
                forge_run=r["forge_run"],
                agent=r["agent"],
                at=from_epoch(r["at"]),
                op=r["op"],
                allowed=bool(r["allowed"]),
                detail=r["detail"],
            )
            for r in reversed(rows)
        ]

    # -- the poller's cursor -------------------------------------------------------------

    async def forge_cursor(self, forge: str, slug: Slug) -> str | None:
        row = await self._one(
            "SELECT cursor FROM forge_cursors WHERE forge = ? AND slug = ?", (forge, str(slug))
        )
        return None if row is None else str(row["cursor"])

    async def set_forge_cursor(self, forge: str, slug: Slug, cursor: str) -> None:
        async with self._transaction("keep where the forge poller got to") as conn:
            await conn.execute(
                "INSERT INTO forge_cursors (forge, slug, cursor) VALUES (?, ?, ?)"
                " ON CONFLICT (forge, slug) DO UPDATE SET cursor = excluded.cursor",
                (forge, str(slug), cursor),
            )
