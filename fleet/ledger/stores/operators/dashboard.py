"""The ledger's side of the web dashboard (migration 19): one-time sign-in links and
browser sessions, each kept as the SHA-256 of its secret (the secret itself is only ever
in the chat message and the browser's cookie), and the usage sums its pages and
``/metrics`` read, and an agent's calls through the MCP door its page lists (read by the
table's own store, :class:`~fleet.ledger.stores.running.mcp_calls.McpCallsStore`).

State is here, not in the orchestrator's memory: a standby that takes over honours the
sessions of the one it replaced, and a link is used once whichever of them sees it.

"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch
from fleet.ledger.stores.running.mcp_calls import MCP_PROVIDER, McpCallRecord, McpCallsStore
from fleet.ledger.stores.spend.usage_rows import MODEL, SERVED

_SUMS = """COUNT(*) AS requests,
        COALESCE(SUM(input_tokens), 0) AS input,
        COALESCE(SUM(output_tokens), 0) AS output,
        COALESCE(SUM(cache_read_tokens), 0) AS cache_read,
        COALESCE(SUM(cache_write_tokens), 0) AS cache_write,
        COALESCE(SUM(CASE WHEN priced = 1 THEN cost_usd END), 0) AS cost_usd"""


@dataclass(frozen=True, slots=True)
class SignIn:
    """Whom a link or a session signs in: a chat user on a connector, with the role (and
    the service's groups) they had when they asked for the link."""

    connector: str
    user_id: str
    role: str
    groups: tuple[str, ...]
    expires_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> SignIn:
        groups = str(row["groups"])
        return cls(
            connector=str(row["connector"]),
            user_id=str(row["user_id"]),
            role=str(row["role"]),
            groups=tuple(groups.split("\n")) if groups else (),
            expires_at=from_epoch(row["expires_at"]),
        )


@dataclass(frozen=True, slots=True)
class UsageSum:
    """Requests of one agent, on one host, to one model of one provider through one
    account, summed: tokens by kind and the priced cost (0 when none was priced)."""

    agent: str
    host: str
    provider: str
    model: str
    account: str
    requests: int
    input: int
    output: int
    cache_read: int
    cache_write: int
    cost_usd: float

    @property
    def tokens(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    @classmethod
    def from_row(cls, row: Row) -> UsageSum:
        return cls(
            agent=str(row["agent"]),
            host=str(row["host"]),
            provider=str(row["provider"]),
            model=str(row["model"]),
            account=str(row["account"] or ""),
            requests=int(row["requests"]),
            input=int(row["input"]),
            output=int(row["output"]),
            cache_read=int(row["cache_read"]),
            cache_write=int(row["cache_write"]),
            cost_usd=float(row["cost_usd"]),
        )


class DashboardStore(Store):
    """The dashboard's sign-in links and sessions, and the usage sums its pages read."""

    async def add_dashboard_link(self, digest: str, who: SignIn, created_at: datetime) -> None:
        """Record a sign-in link by its secret's digest."""
        async with self._transaction("record a dashboard sign-in link") as conn:
            await conn.execute(
                "INSERT INTO dashboard_links (digest, connector, user_id, role, groups,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    who.connector,
                    who.user_id,
                    who.role,
                    "\n".join(who.groups),
                    self._epoch(created_at),
                    self._epoch(who.expires_at),
                ),
            )

    async def redeem_dashboard_link(
        self, link: str, session: str, now: datetime, session_expires: datetime
    ) -> SignIn | None:
        """Use the link whose digest is ``link`` — once, before it expires — and open a
        session whose cookie's digest is ``session`` for the same person; ``None`` when the
        link is unknown, used or expired. One transaction: two browsers racing with one link
        get one session."""
        at = self._epoch(now)
        live = await self._one(
            "SELECT 1 AS live FROM dashboard_links"
            " WHERE digest = ? AND used_at IS NULL AND expires_at > ?",
            (link, at),
        )
        if live is None:  # a forged or spent link costs a read, never a write transaction
            return None
        async with self._transaction("use a dashboard sign-in link") as conn:
            cursor = await conn.execute(
                "UPDATE dashboard_links SET used_at = ?"
                " WHERE digest = ? AND used_at IS NULL AND expires_at > ?",
                (at, link, at),
            )
            if cursor.rowcount != 1:
                return None
            rows = await conn.execute_fetchall(
                "SELECT * FROM dashboard_links WHERE digest = ?", (link,)
            )
            row = rows[0]  # just updated, in this transaction
            await conn.execute(
                "INSERT INTO dashboard_sessions (digest, connector, user_id, role, groups,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session,
                    row["connector"],
                    row["user_id"],
                    row["role"],
                    row["groups"],
                    at,
                    self._epoch(session_expires),
                ),
            )
            link_row = SignIn.from_row(row)
        return SignIn(
            link_row.connector, link_row.user_id, link_row.role, link_row.groups, session_expires
        )

    async def dashboard_session(self, digest: str, now: datetime) -> SignIn | None:
        """The live session whose cookie's digest is ``digest`` (not ended, not expired)."""
        row = await self._one(
            "SELECT * FROM dashboard_sessions"
            " WHERE digest = ? AND ended_at IS NULL AND expires_at > ?",
            (digest, self._epoch(now)),
        )
        return SignIn.from_row(row) if row is not None else None

    async def live_dashboard_sessions(self, now: datetime) -> set[str]:
        """The digests of every live session."""
        rows = await self._all(
            "SELECT digest FROM dashboard_sessions WHERE ended_at IS NULL AND expires_at > ?",
            (self._epoch(now),),
        )
        return {str(row["digest"]) for row in rows}

    async def end_dashboard_sessions(self, connector: str, user_id: str, now: datetime) -> int:
        """End every live session of that person, and void their unused links; how many
        sessions ended."""
        at = self._epoch(now)
        async with self._transaction("end dashboard sessions") as conn:
            cursor = await conn.execute(
                "UPDATE dashboard_sessions SET ended_at = ?"
                " WHERE connector = ? AND user_id = ? AND ended_at IS NULL AND expires_at > ?",
                (at, connector, user_id, at),
            )
            ended = cursor.rowcount
            await conn.execute(
                "UPDATE dashboard_links SET used_at = ?"
                " WHERE connector = ? AND user_id = ? AND used_at IS NULL",
                (at, connector, user_id),
            )
        return max(ended, 0)

    async def end_dashboard_session(self, digest: str, now: datetime) -> None:
        """End the session whose cookie's digest is ``digest``."""
        async with self._transaction("end a dashboard session") as conn:
            await conn.execute(
                "UPDATE dashboard_sessions SET ended_at = ? WHERE digest = ? AND ended_at IS NULL",
                (self._epoch(now), digest),
            )

    async def open_dashboard_signins(
        self, now: datetime
    ) -> tuple[dict[str, SignIn], dict[str, SignIn]]:
        """Whom each live session and each unused, unexpired link signs in, by digest:
        ``(sessions, links)``."""
        at = self._epoch(now)
        sessions = await self._all(
            "SELECT * FROM dashboard_sessions WHERE ended_at IS NULL AND expires_at > ?", (at,)
        )
        links = await self._all(
            "SELECT * FROM dashboard_links WHERE used_at IS NULL AND expires_at > ?", (at,)
        )
        return (
            {str(row["digest"]): SignIn.from_row(row) for row in sessions},
            {str(row["digest"]): SignIn.from_row(row) for row in links},
        )

    async def end_dashboard_signins(
        self, sessions: list[str], links: list[str], now: datetime
    ) -> None:
        """End these sessions and void these links (by digest), for good."""
        at = self._epoch(now)
        async with self._transaction("end dashboard sessions and links") as conn:
            for digest in sessions:
                await conn.execute(
                    "UPDATE dashboard_sessions SET ended_at = ?"
                    " WHERE digest = ? AND ended_at IS NULL",
                    (at, digest),
                )
            for digest in links:
                await conn.execute(
                    "UPDATE dashboard_links SET used_at = ? WHERE digest = ? AND used_at IS NULL",
                    (at, digest),
                )

    async def usage_sums(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        agent: str | None = None,
    ) -> list[UsageSum]:
        """Usage from ``since`` to ``until`` (all of it without them; of one ``agent`` when
        named) per agent, host, provider, model and account."""
        clauses: list[str] = []
        params: list[object] = []
        if agent is not None:
            clauses.append("agent = ?")
            params.append(agent)
        if since is not None:
            clauses.append("at >= ?")
            params.append(self._epoch(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(self._epoch(until))
        where = "WHERE " + " AND ".join(clauses) if clauses else ""
        rows = await self._all(
            f"SELECT agent, host, provider, {MODEL} AS model,"
            f" COALESCE(account, '') AS account, {_SUMS} FROM usage {where}"
            " GROUP BY agent, host, provider, model, account"
            " ORDER BY agent, host, provider, model, account",
            params,
        )
        return [UsageSum.from_row(row) for row in rows]

    async def usage_sums_after(self, after: int) -> tuple[list[UsageSum], int]:
        """The sums of the usage rows written after row ``after`` (rows are only ever
        appended, one writer at a time), and the last row's id: a running total adds them
        instead of summing everything again."""
        row = await self._one("SELECT COALESCE(MAX(id), 0) AS last FROM usage", ())
        last = int(row["last"]) if row is not None else 0
        if last <= after:
            return [], after
        rows = await self._all(
            f"SELECT agent, host, provider, {MODEL} AS model,"
            f" COALESCE(account, '') AS account, {_SUMS} FROM usage"
            " WHERE id > ? AND id <= ?"
            " GROUP BY agent, host, provider, model, account",
            (after, last),
        )
        return [UsageSum.from_row(r) for r in rows], last

    async def last_models(self, since: datetime) -> dict[str, tuple[str, str, str | None]]:
        """Per agent, its latest request since ``since`` that was served: the model asked
        for, the model served, and the one the pacing policy moved it from (when it did).
        A refused request's model is the agent's own text, not the model it works with; a
        priced MCP call's row is no model's."""
        rows = await self._all(
            "SELECT agent, requested_model, served_model, rewritten_from FROM usage"
            " WHERE id IN (SELECT MAX(id) FROM usage WHERE at >= ? AND provider <> ?"
            f" AND {SERVED} GROUP BY agent)",
            (self._epoch(since), MCP_PROVIDER),
        )
        return {
            str(row["agent"]): (
                str(row["requested_model"] or ""),
                str(row["served_model"] or ""),
                row["rewritten_from"] or None,
            )
            for row in rows
        }

    async def mcp_calls(self, agent: str, limit: int) -> list[McpCallRecord]:
        """``agent``'s last ``limit`` calls through the MCP door, the latest first (its
        page's list)."""
        return await McpCallsStore(self._access).calls(agent, limit)
