"""The ledger's ``agent_token_digests`` table (migration 18): the SHA-256 of each token an
agent was given — for its heartbeats, for its model requests — so that every orchestrator
of a shared ledger (an active one and the standby that takes over from it) accepts an
agent's token without any of them storing the token itself anywhere but its own state dir.

:class:`TokenDigestsLedger` is mixed into :class:`~fleet.ledger.store.Ledger`."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.ledger.access import Store


class TokenDigestsLedger:
    """The token digest queries of :class:`~fleet.ledger.store.Ledger`."""

    async def save_token_digests(
        self: Store, purpose: str, changes: Sequence[tuple[str, str | None]]
    ) -> None:
        """Record each ``(agent, digest)`` of ``purpose``; a ``None`` digest forgets the
        agent's (its token was revoked). One transaction."""
        if not changes:
            return
        async with self._transaction(f"record {len(changes)} {purpose} token digests") as conn:
            for agent, digest in changes:
                if digest is None:
                    await conn.execute(
                        "DELETE FROM agent_token_digests WHERE agent = ? AND purpose = ?",
                        (agent, purpose),
                    )
                else:
                    await conn.execute(
                        "INSERT INTO agent_token_digests (agent, purpose, digest) VALUES (?, ?, ?)"
                        " ON CONFLICT (agent, purpose) DO UPDATE SET digest = excluded.digest",
                        (agent, purpose, digest),
                    )

    async def token_digests(self: Store, purpose: str) -> dict[str, str]:
        """Every agent's token digest of ``purpose``."""
        rows = await self._all(
            "SELECT agent, digest FROM agent_token_digests WHERE purpose = ?", (purpose,)
        )
        return {str(row["agent"]): str(row["digest"]) for row in rows}
