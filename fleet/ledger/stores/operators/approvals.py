"""The ledger's approval tables (migrations 15 and 20): every ask an agent made, its answer,
where it was shown in chat, and the rules an ``always`` answer taught an agent.

A request is answered once: the answer is an ``UPDATE … WHERE state = 'open'`` in one
transaction, so of two answers racing the first wins and the second learns who it lost to.
A request is keyed by its run, channel, the CLI's id of the ask *and* the digest of what it
showed (:func:`~fleet.ledger.records.approvals.ask_digest`): the CLI's id alone never finds it.
"""

from __future__ import annotations

import secrets
import socket
from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.records.approvals import (
    ApprovalPost,
    ApprovalRequest,
    ApprovalState,
    Ask,
    AskKind,
    Decision,
    LearnedRule,
    ask_digest,
)
from fleet.ledger.records.epoch import from_epoch, to_epoch

ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""Letters and digits of a request id: none that read alike (no ``i l 1 o 0``)."""
ID_LENGTH = 4


def new_request_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


class ApprovalsStore(Store):
    """Approval requests, their answers and posts, and the rules ``always`` taught."""

    async def open_approval(
        self,
        *,
        agent: str,
        run_id: int,
        channel: str,
        ask: Ask,
        deadline: datetime,
        starter: str | None,
        state: ApprovalState = ApprovalState.OPEN,
        how: str | None = None,
        reason: str | None = None,
    ) -> tuple[ApprovalRequest, bool]:
        """Record ``ask`` of ``run_id`` (or find it: the same ``native_id`` of the same run and
        channel asking the same thing is one request); whether it is new. ``state`` other
        than open records a request decided at once (``how``: ``policy``, ``rule``)."""
        now = self._clock.now()
        host = socket.gethostname()
        digest = ask_digest(ask)
        key = f"{ask.native_id}#{digest}"
        async with self._transaction("record an approval request") as conn:
            found = await conn.execute_fetchall(
                "SELECT * FROM approvals WHERE run_id = ? AND channel = ? AND native_id = ?",
                (run_id, channel, key),
            )
            if found:
                return _request(next(iter(found))), False
            decision = None
            if state is ApprovalState.ALLOWED:
                decision = Decision.ALLOW
            elif state is not ApprovalState.OPEN:
                decision = Decision.DENY
            for _ in range(20):
                request_id = new_request_id()
                # ON CONFLICT, not a caught error: PostgreSQL aborts the whole transaction
                # at the first error, so a retry after one could not run.
                cursor = await conn.execute(
                    "INSERT INTO approvals (id, agent, run_id, channel, native_id, cli_id,"
                    " digest, kind, tool, subject, detail, pattern, state, asked_at, deadline,"
                    " starter, host, answered_at, how, reason, decision)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (
                        request_id,
                        agent,
                        run_id,
                        channel,
                        key,
                        ask.native_id,
                        digest,
                        ask.kind.value,
                        ask.tool,
                        ask.subject,
                        ask.detail,
                        ask.pattern,
                        state.value,
                        to_epoch(now),
                        to_epoch(deadline),
                        starter,
                        host,
                        None if state is ApprovalState.OPEN else to_epoch(now),
                        how,
                        reason,
                        None if decision is None else decision.value,
                    ),
                )
                if cursor.rowcount == 1:
                    break  # else the id was taken: draw again
            else:  # pragma: no cover - 31**4 ids; only a ledger full of open asks gets here
                raise RuntimeError("no free approval id")
            rows = await conn.execute_fetchall(
                "SELECT * FROM approvals WHERE id = ?", (request_id,)
            )
        return _request(next(iter(rows))), True

    async def approval(self, request_id: str) -> ApprovalRequest | None:
        rows = await self._all("SELECT * FROM approvals WHERE id = ?", (request_id.lower(),))
        return _request(rows[0]) if rows else None

    async def approvals_by_native(
        self, run_id: int, channel: str, native_id: str
    ) -> list[ApprovalRequest]:
        """Every request of ``run_id`` the CLI asked under its id ``native_id``, oldest
        first (more than one when the same id asked different things)."""
        rows = await self._all(
            "SELECT * FROM approvals WHERE run_id = ? AND channel = ? AND cli_id = ?"
            " ORDER BY asked_at, id",
            (run_id, channel, native_id),
        )
        return [_request(row) for row in rows]

    async def withdrawn_since(self, agent: str, since: datetime) -> int:
        """How many of ``agent``'s requests its CLI withdrew since ``since``."""
        rows = await self._all(
            "SELECT COUNT(*) AS n FROM approvals WHERE agent = ? AND how = 'withdrawn'"
            " AND answered_at >= ?",
            (agent, to_epoch(since)),
        )
        return int(rows[0]["n"]) if rows else 0

    async def open_approvals(self, agent: str | None = None) -> list[ApprovalRequest]:
        """Open requests, oldest first (of one agent, when named)."""
        if agent is None:
            rows = await self._all(
                "SELECT * FROM approvals WHERE state = 'open' ORDER BY asked_at, id", ()
            )
        else:
            rows = await self._all(
                "SELECT * FROM approvals WHERE state = 'open' AND agent = ? ORDER BY asked_at, id",
                (agent,),
            )
        return [_request(row) for row in rows]

    async def recent_approvals(self, limit: int = 100) -> list[ApprovalRequest]:
        """The latest ``limit`` requests, open or answered, newest first."""
        rows = await self._all(
            "SELECT * FROM approvals ORDER BY asked_at DESC, id DESC LIMIT ?", (limit,)
        )
        return [_request(row) for row in rows]

    async def approvals_of_run(self, run_id: int) -> list[ApprovalRequest]:
        rows = await self._all(
            "SELECT * FROM approvals WHERE run_id = ? ORDER BY asked_at, id", (run_id,)
        )
        return [_request(row) for row in rows]

    async def answer_approval(
        self,
        request_id: str,
        *,
        state: ApprovalState,
        decision: Decision,
        by: str | None,
        how: str,
        reason: str | None,
    ) -> tuple[ApprovalRequest | None, bool]:
        """Answer request ``request_id`` if it is still open: the request as it is now
        (``None``: no such id), and whether this answer is the one that counts."""
        now = to_epoch(self._clock.now())
        # One statement decides it (the first answer wins): one trip, on the answer's path.
        rows = await self._write(
            "answer an approval request",
            "UPDATE approvals SET state = ?, decision = ?, answered_by = ?,"
            " answered_at = ?, how = ?, reason = ? WHERE id = ? AND state = 'open'"
            " RETURNING *",
            (state.value, decision.value, by, now, how, reason, request_id),
        )
        won = bool(rows)
        if not won:  # answered before (it stays so), or no such id: the row as it is
            rows = await self._all("SELECT * FROM approvals WHERE id = ?", (request_id,))
        found = list(rows)
        return (_request(found[0]) if found else None), won

    async def mark_approval_delivered(self, request_id: str) -> None:
        await self._write(
            "mark an approval delivered",
            "UPDATE approvals SET delivered_at = ? WHERE id = ?",
            (to_epoch(self._clock.now()), request_id),
        )

    async def record_approval_post(self, post: ApprovalPost) -> None:
        await self._write(
            "record where an approval was shown",
            "INSERT INTO approval_posts (request_id, connector, room, thread,"
            " event_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (post.request_id, post.connector, post.room, post.thread, post.event_id),
        )

    async def approval_posts(self, request_id: str) -> list[ApprovalPost]:
        rows = await self._all(
            "SELECT * FROM approval_posts WHERE request_id = ? ORDER BY connector, event_id",
            (request_id,),
        )
        return [_post(row) for row in rows]

    async def approval_shown_by(self, connector: str, event_id: str) -> ApprovalRequest | None:
        """The request that message ``event_id`` of ``connector`` shows, if it shows one."""
        rows = await self._all(
            "SELECT approvals.* FROM approval_posts JOIN approvals"
            " ON approvals.id = approval_posts.request_id"
            " WHERE approval_posts.connector = ? AND approval_posts.event_id = ?",
            (connector, event_id),
        )
        return _request(rows[0]) if rows else None

    async def add_approval_rule(self, agent: str, pattern: str, by: str) -> None:
        async with self._transaction("remember an always answer") as conn:
            await conn.execute(
                "INSERT INTO approval_rules (agent, pattern, added_by, added_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (agent, pattern, by, to_epoch(self._clock.now())),
            )

    async def approval_rules(self, agent: str) -> list[str]:
        rows = await self._all(
            "SELECT pattern FROM approval_rules WHERE agent = ? ORDER BY added_at, pattern",
            (agent,),
        )
        return [str(row["pattern"]) for row in rows]

    async def learned_rules(self, agent: str) -> list[LearnedRule]:
        """The rules ``always`` answers taught ``agent``, oldest first."""
        rows = await self._all(
            "SELECT * FROM approval_rules WHERE agent = ? ORDER BY added_at, pattern",
            (agent,),
        )
        return [
            LearnedRule(
                agent=str(row["agent"]),
                pattern=str(row["pattern"]),
                added_by=str(row["added_by"]),
                added_at=from_epoch(row["added_at"]),
            )
            for row in rows
        ]

    async def forget_approval_rules(self, agent: str, pattern: str | None = None) -> int:
        """Forget the rule ``pattern`` taught ``agent`` (``None``: all of them); how many."""
        async with self._transaction("forget learned approval rules") as conn:
            if pattern is None:
                cursor = await conn.execute("DELETE FROM approval_rules WHERE agent = ?", (agent,))
            else:
                cursor = await conn.execute(
                    "DELETE FROM approval_rules WHERE agent = ? AND pattern = ?",
                    (agent, pattern),
                )
            return max(int(cursor.rowcount), 0)


def _request(r: Row) -> ApprovalRequest:
    answered_at, delivered_at, decision = r["answered_at"], r["delivered_at"], r["decision"]
    return ApprovalRequest(
        id=r["id"],
        agent=r["agent"],
        run_id=r["run_id"],
        channel=r["channel"],
        native_id=r["cli_id"] if r["cli_id"] is not None else r["native_id"],
        kind=AskKind(r["kind"]),
        tool=r["tool"],
        subject=r["subject"],
        detail=r["detail"],
        pattern=r["pattern"],
        state=ApprovalState(r["state"]),
        asked_at=from_epoch(r["asked_at"]),
        deadline=from_epoch(r["deadline"]),
        starter=r["starter"],
        host=r["host"],
        answered_by=r["answered_by"],
        answered_at=None if answered_at is None else from_epoch(answered_at),
        how=r["how"],
        reason=r["reason"],
        decision=None if decision is None else Decision(decision),
        delivered_at=None if delivered_at is None else from_epoch(delivered_at),
        digest=r["digest"],
    )


def _post(row: Row) -> ApprovalPost:
    return ApprovalPost(
        request_id=row["request_id"],
        connector=row["connector"],
        room=row["room"],
        thread=row["thread"],
        event_id=row["event_id"],
    )
