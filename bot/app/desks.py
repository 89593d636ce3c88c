"""The registry of the desks behind the heartbeat endpoint's doors: built once, before the
endpoint, and handed to it and to the phases that make each desk.

The endpoint listens before the parts its doors reach exist (they are the fleet's agents'
ways in, so they are made over the fleet): the repositories' lines behind the git door, the
postbox behind the peer door, forge work behind the forge door, and the review stage a
``fw-msg review`` reaches, the live sessions that answer a permission hook's ask, and the
roster and the runs' caps behind the MCP door (an agent's grants as its spec has them now; a
priced call charged to its run). Each
door asks this registry at each call; each desk is opened here once, by the phase that makes
it, and never replaced. Two parts made early reach parts made later here too: forge work,
made before the review stage, reaches the stage; and the repositories' approval hold,
made before forge work, has a forge run's pull request made a draft through it. Until
then the door answers as it does for a desk the config does without (the git door: no such
repository; the peer door: 503; the forge door: no forge run; a review: no round asked; a
hook's ask: no asks; a draft: none made, the push refused; the MCP door: no grant, so no
server, and a priced call charged to no run cap, its ``usage`` row still written).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from fleet.agents.current import CurrentRoster
from fleet.errors import InvalidAgentName
from fleet.forge.door.door import DoorDesk
from fleet.ledger.records.peers import ReviewRecord
from fleet.mcp.hooks import Billing
from fleet.mcp.model import McpGrant
from fleet.names import AgentName, agent_name
from fleet.peers.door import PeerDesk, Verdicts
from fleet.peers.review.stage import ReviewStage
from fleet.repos.door.lines import DoorLines
from fleet.repos.landing.approval import Drafter
from fleet.watchdog.heartbeat import OnAsk

_Desk = TypeVar("_Desk")


class Desks:
    """Each door's desk, opened once (see the module)."""

    def __init__(self) -> None:
        self._lines: DoorLines | None = None
        self._peers: PeerDesk | None = None
        self._forge: DoorDesk | None = None
        self._verdicts: Verdicts | None = None
        self._hook_asks: OnAsk | None = None
        self._review: ReviewStage | None = None
        self._drafter: Drafter | None = None
        self._roster: CurrentRoster | None = None
        self._billing: Billing | None = None

    def open_lines(self, lines: DoorLines) -> None:
        """The repositories' lines, behind the git door."""
        self._lines = _once(self._lines, lines, "the git door")

    def open_peers(self, desk: PeerDesk) -> None:
        """The postbox and the tasks handed on, behind the peer door."""
        self._peers = _once(self._peers, desk, "the peer door")

    def open_forge(self, desk: DoorDesk) -> None:
        """Forge work, behind the forge door."""
        self._forge = _once(self._forge, desk, "the forge door")

    def open_verdicts(self, verdicts: Verdicts) -> None:
        """The review stage, which a review agent's ``fw-msg review`` answers."""
        self._verdicts = _once(self._verdicts, verdicts, "the review stage")

    def open_review(self, stage: ReviewStage) -> None:
        """The review stage, which a forge run's published ``done`` asks for its next round
        (forge work is made before it: it reaches the stage here)."""
        self._review = _once(self._review, stage, "the review stage's forge side")

    def review(self) -> ReviewStage | None:
        return self._review

    def open_drafts(self, drafter: Drafter) -> None:
        """Forge work's drafts, which the approval hold asks before it pushes a head the
        review agent did not approve (the repositories are made before forge work)."""
        self._drafter = _once(self._drafter, drafter, "the approval hold's drafts")

    async def draft_head(self, approved: ReviewRecord, tip: str) -> bool:
        """The open pull request of the forge run ``approved`` was of made a draft before
        its head becomes ``tip`` (:data:`~fleet.repos.landing.approval.Drafter`); ``False``:
        no forge work to ask, or no pull request open."""
        return False if self._drafter is None else await self._drafter(approved, tip)

    def open_hook_asks(self, on_ask: OnAsk) -> None:
        """The fleet's live sessions, which answer the asks of agents' permission hooks."""
        self._hook_asks = _once(self._hook_asks, on_ask, "the ask door's hooks")

    def open_mcp_roster(self, roster: CurrentRoster) -> None:
        """The roster as it is now (a reload replaces its specs), whose agents' ``mcp:``
        grants the MCP door reads at each request."""
        self._roster = _once(self._roster, roster, "the MCP door's roster")

    def mcp_grants(self, agent: str) -> tuple[McpGrant, ...]:
        """``agent``'s MCP grants as the config gives them now: its roster spec's; for an
        agent a reload took out of the roster, the spec's it had then (it runs on as it was,
        never with the defaults' grants instead); for an agent the roster never named, the
        ``defaults``' (what its launch was given: :meth:`~fleet.mcp.config.rules.McpRules.ad_hoc`);
        none before the roster is open."""
        if self._roster is None:
            return ()
        try:
            name = agent_name(agent)
        except InvalidAgentName:
            return ()
        spec = self._roster.get(name) or self._roster.left(name)
        return self._roster.mcp.grants if spec is None else spec.mcp

    def open_mcp_charge(self, billing: Billing) -> None:
        """What holds a priced MCP call against its agent's run's cap and the budgets
        before it is relayed, and bills it once it was."""
        self._billing = _once(self._billing, billing, "the MCP door's charges")

    def mcp_billing(self) -> Billing | None:
        """The billing of priced MCP calls (``None``: none yet)."""
        return self._billing

    def hook_asks(self) -> OnAsk | None:
        return self._hook_asks

    def peers(self) -> PeerDesk | None:
        return self._peers

    def forge(self) -> DoorDesk | None:
        return self._forge

    def verdicts(self) -> Verdicts | None:
        return self._verdicts

    async def door_repo(self, agent: AgentName, repo: str) -> Path | None:
        """The line repo ``agent`` may use on ``repo`` (``None``: none, or no lines yet)."""
        return None if self._lines is None else await self._lines.door_repo(agent, repo)

    async def refused(self, agent: AgentName, repo: str, refusals: list[dict[str, str]]) -> None:
        """What the git door's hook refused of ``agent``'s push to ``repo``, kept."""
        if self._lines is not None:
            await self._lines.refused(agent, repo, refusals)


def _once(opened: _Desk | None, desk: _Desk, door: str) -> _Desk:
    """``desk``, unless a desk was opened for ``door`` already: a wiring error."""
    if opened is not None:
        raise RuntimeError(f"the desk of {door} was opened twice")
    return desk
