"""The token of a run: what an agent proves itself with at the heartbeat endpoint and every
door on it (the asks, the git door, the forge door, the peer door) lives as long as its run.

A launch takes a new token (its agent holds none: the run before took its own with it); a
run that ends — by itself, stopped, restarted by the watchdog or an operator, or found over
when Fleetwarden starts — has its token revoked as its end is recorded, so a token it
leaked is refused at every door afterwards (what it left on a host is then pushed through
the git door with a token of Fleetwarden's own, revoked once it is in); a launch that fails
has the token made for it revoked. A run that goes on
while Fleetwarden restarts (a tmux agent reattached) keeps its token. Each revocation goes
to the ledger at once (the digests it shares with a standby), so a standby that takes
over refuses it too; at start, the tokens of every agent but those whose runs go on
are revoked, the ledger's copies with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from fleet.ledger.stores.running.runs import RunsStore
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import HeartbeatIssuer

__all__ = ["RunTokens"]

log = logging.getLogger(__name__)


class RunTokens:
    """Revokes runs' tokens as they end. ``issuer``: the heartbeat endpoint (``None``: no
    tokens are given out); ``publish``: gives the ledger what changed."""

    def __init__(
        self,
        issuer: HeartbeatIssuer | None,
        publish: Callable[[], Awaitable[None]] | None,
        runs: RunsStore,
    ) -> None:
        self._issuer = issuer
        self._publish = publish
        self._runs = runs

    async def over(self, agent: AgentName) -> None:
        """``agent``'s run is over: its token is refused at every door from now on."""
        if self._issuer is None:
            return
        try:
            if self._issuer.revoke(agent) and self._publish is not None:
                await self._publish()
        except Exception:  # revoked here; the ledger's copy at the next publish or start
            log.exception("could not tell the ledger that %s's token was revoked", agent)

    @contextlib.asynccontextmanager
    async def launching(self, agent: AgentName) -> AsyncIterator[None]:
        """Around a launch of ``agent``: when it fails, the token made for it is revoked,
        unless a run of ``agent`` goes on (a launch refused because it runs already)."""
        try:
            yield
        except BaseException:
            await asyncio.shield(self._unlaunched(agent))
            raise

    async def _unlaunched(self, agent: AgentName) -> None:
        try:
            run = await self._runs.last_run(agent)
        except Exception:
            log.exception("could not tell whether %s runs: its token is kept", agent)
            return
        if run is None or run.ended_at is not None:
            await self.over(agent)

    async def sweep(self, known: Iterable[str] | None = None) -> None:
        """Revoke the tokens of every agent whose run is over (it ended while Fleetwarden
        was away, or before its token was revoked): only a run still going keeps its own,
        accepted from now on (until the sweep, no token loaded at start is). ``known``: the
        agents the ledger still has; the retired tokens of others are forgotten."""
        if self._issuer is None:
            return
        going = {run.agent for run in await self._runs.open_runs()}
        revoked = self._issuer.keep_only(going, known=known)
        if revoked:
            log.info("revoked the tokens of %d agents whose runs are over", len(revoked))
            if self._publish is not None:
                await self._publish()
