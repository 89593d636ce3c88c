"""A forge run's one status comment on its issue: posted when the run begins, and edited
whenever what it says changes (not as its clock moves on) — the run's state, what its agent
does, its spend against the cap and the estimate, the approvals it waits on, why its pull
request could not be opened and how it ended. The text is
:func:`fleet.forge.posts.sticky.status_text`'s; what it is made of is read here from the
ledger and the audit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from fleet.approvals.spend import CHANNEL as SPEND
from fleet.budgets.runs.watch import UNANSWERED
from fleet.forge.model import ForgeApiError
from fleet.forge.posts.footer import Provenance
from fleet.forge.posts.provenance import Spend
from fleet.forge.posts.signed import Posts
from fleet.forge.posts.sticky import Paused, StickyState, status_text
from fleet.forge.posts.unpublished import BRANCH_ENDED, detail_part, fix_words, public_part
from fleet.ledger.records.budgets import Freeze
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState

log = logging.getLogger(__name__)

NOT_OPENED = "pull request not opened: "  # how the audit keeps why, for the status comment


class StatusComment:
    """The status comments of forge runs, for :class:`fleet.forge.posts.publish.Publisher`."""

    def __init__(
        self, posts: Posts, freezes: Callable[[], Awaitable[list[Freeze]]] | None = None
    ) -> None:
        """``posts``: how the comment goes on the forge, and what it says is read with
        (its provenance, the ledger's forge runs, audit and approvals); ``freezes``: the
        agents frozen now (a run paused at a cap or a budget's limit says so on its
        issue)."""
        records = posts.source.records
        self._freezes = freezes
        self._forge = records.forge
        self._approvals = records.approvals
        self._source = posts.source
        self._redact = posts.redact
        self._post = posts.post
        self._api = posts.api
        self._posted: dict[int, str] = {}  # by forge run: the status comment's text

    async def open(self, record: ForgeRunRecord) -> ForgeRunRecord:
        """Post the run's one status comment on its issue; ``record`` with its id, as the
        ledger now keeps it (no need to read it back)."""
        text = await self._text(record)
        comment = await self._post(record, record.issue, text)
        await self._forge.update_forge_run(record.id, comment_id=comment.id)
        self._posted[record.id] = text
        await self._forge.audit_forge(
            record.id,
            "fleetwarden",
            "status",
            True,
            f"posted the status comment on #{record.issue}",
        )
        return replace(record, comment_id=comment.id)

    async def refresh(self, record: ForgeRunRecord) -> None:
        """Edit ``record``'s status comment (the run as just read) when what it says has
        changed."""
        key = record.id
        if record.comment_id is None:
            return
        text = await self._text(record)
        if self._posted.get(key) == text:
            return
        try:
            await self._api(record).edit_comment(
                record.slug, record.comment_id, text, number=record.issue
            )
        except ForgeApiError as exc:
            log.warning("the status comment of %s#%d: %s", record.slug, record.issue, exc)
            return
        self._posted[key] = text

    async def not_opened_why(self, record: ForgeRunRecord, *, detail: bool = False) -> str | None:
        """Why the run's pull request could not be opened, as last said (the audit keeps
        it): in the few words fit for the forge, or (``detail``) in the operator's."""
        kept = await self.not_opened_kept(record)
        if kept is None:
            return None
        return detail_part(kept) if detail else public_part(kept)

    async def not_opened_kept(self, record: ForgeRunRecord) -> str | None:
        """Why the pull request was last not opened, as the audit keeps it."""
        for line in reversed(await self._forge.forge_audit(record.id, limit=20)):
            if line.op == "publish" and not line.allowed:
                return line.detail.removeprefix(NOT_OPENED)
        return None

    async def _text(self, record: ForgeRunRecord) -> str:
        spend = await self._source.spend(record)
        state = ForgeRunState(record.state)
        waiting, asking = 0, False
        if state is ForgeRunState.WORKING:
            open_now = await self._approvals.open_approvals(record.agent)
            waiting = len(open_now)
            asking = any(  # its own run's ask, not the agent's other run's
                r.channel == SPEND and r.run_id == record.run_id for r in open_now
            )
        paused = None
        if state is ForgeRunState.WORKING and not asking and self._freezes is not None:
            frozen = [f for f in await self._freezes() if f.agent == record.agent]
            paused = why_paused(frozen[0]) if frozen else None
        audit = await self._forge.forge_audit(record.id, limit=1)
        doing = self._redact(record.summary or "") or None
        next_step = None
        if state is ForgeRunState.UNPUBLISHED:
            doing, next_step = await self.not_opened_why(record), fix_words(record.agent)
        ended = await self._how_ended(record) if state is ForgeRunState.ENDED else None
        return status_text(
            StickyState(
                agent=record.agent,
                state=record.state,
                done_signal=record.done_signal,
                done_status=record.done_status,
                doing=doing if state is not ForgeRunState.WORKING else None,
                last_operation=public_part(audit[-1].detail) if audit else None,
                approvals_waiting=waiting,
                tokens=spend.tokens,
                cost_usd=spend.cost_usd,
                cap=spend.cap,
                estimate=spend.estimate,
                over=state.is_over or state.is_done_for_now,
                pull_url=record.pull_url,
                provenance=await self._provenance(record, spend),
                next_step=next_step,
                ended=ended,
                asking=asking,
                paused=paused,
                review=await self._review(record),
            )
        )

    async def _review(self, record: ForgeRunRecord) -> str | None:
        """What its review agent last did, as the audit keeps it: a round asked, the commit
        approved, a head that changed since."""
        for line in reversed(await self._forge.forge_audit(record.id, limit=20)):
            if line.op == "review" and line.allowed:
                return public_part(line.detail)
        return None

    async def _provenance(self, record: ForgeRunRecord, spend: Spend) -> Provenance:
        """The footer of the status comment: a run whose agent works is "still running", so
        the comment is edited when what it says changes, not as its clock moves on; one done
        for now took until its agent's work ended."""
        provenance = await self._source.provenance(record, spend)
        if record.ended_at is not None:
            return provenance
        end = None
        if ForgeRunState(record.state).is_done_for_now:
            end = await self._source.work_end(record)
        took = None if end is None else max(0.0, (end - record.started_at).total_seconds())
        return replace(provenance, duration=took)

    async def _how_ended(self, record: ForgeRunRecord) -> str | None:
        """How an ended run ended, for its status comment's headline (its ``end`` audit)."""
        for line in reversed(await self._forge.forge_audit(record.id, limit=20)):
            if line.op == "end":
                if line.detail.endswith(" merged"):
                    return "its pull request was merged"
                if line.detail.endswith(" closed"):
                    return "its pull request was closed"
                return line.detail if line.detail == BRANCH_ENDED else None
        return None


def why_paused(freeze: Freeze) -> Paused:
    """Why a freeze paused a run, in the few words fit for the forge: never its own reason
    (an operator's words, a budget's name are not the public's)."""
    if freeze.by_hand or not freeze.budget:
        return "operator"
    if freeze.budget == f"run:{freeze.agent}":
        return "unanswered" if freeze.reason == UNANSWERED else "cap"
    return "budget"
