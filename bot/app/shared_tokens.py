"""The agents' tokens shared through the ledger, as digests: what lets a standby that takes
over accept the heartbeats and model requests of agents the orchestrator before it
started (on other hosts: they outlive it).

Each token stays in the state dir of the orchestrator that gave it out (mode 600); the
ledger gets only its SHA-256 (:mod:`fleet.ledger.stores.running.agents`). At start an active
orchestrator publishes the digests of the tokens it holds and adopts the others'; each
launch publishes the tokens it just gave out before the agent starts, and each run's end the
revocation of its token (:mod:`fleet.runs.launch.run_tokens`), so the ledger holds only the tokens
of runs still going."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.connections.loopback import AgentSecrets
from fleet.ledger.stores.running.agents import AgentsStore


class SharedTokens:
    """The token sets of the heartbeat endpoint and the metering proxy, by purpose."""

    def __init__(self, agents: AgentsStore, sets: Sequence[tuple[str, AgentSecrets]]) -> None:
        self._agents = agents
        self._sets = tuple(sets)

    async def start(self) -> None:
        """Publish the tokens held here, then accept the ones the ledger knows of. A token
        held here whose agent the ledger knows another of (a newer run, started by another
        orchestrator while this one was away) is dropped first, never published over it."""
        for purpose, secrets in self._sets:
            secrets.defer(await self._agents.token_digests(purpose))
        await self.publish()
        for purpose, secrets in self._sets:
            secrets.adopt(await self._agents.token_digests(purpose))

    async def publish(self) -> None:
        """Give the ledger the digests of the tokens given out or revoked since the last time."""
        for purpose, secrets in self._sets:
            await self._agents.save_token_digests(purpose, secrets.changes())
