"""What Fleetwarden posts on the forge for a forge run: the one status comment on the issue,
edited as the run goes; the pull request, opened once from the run's branch with the
requester asked to review; the check run on GitHub; the summary at ``done`` and the
watchdog's word when no ``done`` came; and the comments and descriptions an agent writes
through its forge door. Every comment and description ends with the provenance footer,
and whatever an agent wrote is redacted of secrets and defused first (mentions, images,
references to other issues, markup that hides)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from fleet.clock import Clock
from fleet.errors import FleetwardenError
from fleet.forge.defuse import BODY_LIMIT, fenced
from fleet.forge.facts import ForgeRunRecord, ForgeRunState
from fleet.forge.footer import Provenance, footer
from fleet.forge.hidden import cap, unseen_free
from fleet.forge.launcher import ForgeLauncher
from fleet.forge.model import ForgeApi, ForgeApiError, ForgeComment, ForgePull
from fleet.forge.provenance import ProvenanceSource, Spend
from fleet.forge.rendered import inert
from fleet.forge.schema import ForgeEntry
from fleet.forge.sticky import StickyState, status_text
from fleet.forge.text import defuse
from fleet.ledger import Ledger
from fleet.repos.desk import NoLine

log = logging.getLogger(__name__)

TITLE_CAP = 200
WHY_CAP = 300  # characters of why a branch was not published, said on the issue


class Publisher:
    """Posts for forge runs, through each forge's API."""

    def __init__(
        self,
        *,
        forges: Mapping[str, ForgeEntry],
        apis: Mapping[str, ForgeApi],
        ledger: Ledger,
        launcher: ForgeLauncher,
        clock: Clock,
        source: ProvenanceSource,
        redact: Callable[[str], str],
    ) -> None:
        self._forges = forges
        self._apis = apis
        self._ledger = ledger
        self._launcher = launcher
        self._clock = clock
        self.source = source
        self._redact = redact
        self._posted: dict[int, str] = {}  # by forge run: the status comment's text
        self.posted: set[int] = set()  # the comments posted here: their events are ours

    def _api(self, record: ForgeRunRecord) -> ForgeApi:
        return self._apis[record.forge]

    async def _post(self, record: ForgeRunRecord, number: int, body: str) -> ForgeComment:
        comment = await self._api(record).comment(record.slug, number, body)
        self.posted.add(comment.id)
        return comment

    def agent_text(self, text: str, *, own: Sequence[int] = ()) -> str:
        """What an agent wrote, fit to post: no secret, no mention, no image, no markup
        that hides, no reference to an issue but ``own`` (its run's issue and pull
        request)."""
        return defuse(self._redact(text), own=own)

    async def signed(self, record: ForgeRunRecord, body: str) -> str:
        """``body`` with the run's provenance footer, as of now, within the forge's limit:
        a body whose rendering holds anything live (it should not: its parts are defused)
        goes out as one code block instead."""
        foot = footer(await self.source.provenance(record))
        room = BODY_LIMIT - len(foot) - 2
        if len(body) > room or not inert(body, _own(record)):
            log.warning("a post on %s#%d was sent as code: it was not inert", record.slug,
                        record.issue)  # fmt: skip
            body = fenced(cap(unseen_free(body), room // 4))
        return f"{body}\n\n{foot}"

    # -- the status comment --------------------------------------------------------------

    async def open_status(self, record: ForgeRunRecord) -> None:
        """Post the run's one status comment on its issue."""
        text = await self._status_text(record)
        comment = await self._post(record, record.issue, text)
        await self._ledger.update_forge_run(record.id, comment_id=comment.id)
        self._posted[record.id] = text
        await self._audit(record, "status", f"posted the status comment on #{record.issue}")

    async def refresh(self, key: int) -> None:
        """Edit forge run ``key``'s status comment when what it says has changed."""
        record = await self._ledger.forge_run(key)
        if record is None or record.comment_id is None:
            return
        text = await self._status_text(record)
        if self._posted.get(key) == text:
            return
        try:
            await self._api(record).edit_comment(record.slug, record.comment_id, text)
        except ForgeApiError as exc:
            log.warning("the status comment of %s#%d: %s", record.slug, record.issue, exc)
            return
        self._posted[key] = text

    async def _status_text(self, record: ForgeRunRecord) -> str:
        spend = await self.source.spend(record)
        state = ForgeRunState(record.state)
        waiting = 0
        if state is ForgeRunState.WORKING:
            waiting = len(await self._ledger.open_approvals(record.agent))
        audit = await self._ledger.forge_audit(record.id, limit=1)
        return status_text(
            StickyState(
                agent=record.agent,
                state=record.state,
                done_signal=record.done_signal,
                done_status=record.done_status,
                doing=self._redact(record.summary or "") or None
                if state is not ForgeRunState.WORKING
                else None,
                last_operation=audit[-1].detail if audit else None,
                approvals_waiting=waiting,
                tokens=spend.tokens,
                cost_usd=spend.cost_usd,
                cap=spend.cap,
                estimate=spend.estimate,
                over=state.is_over or state is ForgeRunState.WAITING,
                pull_url=record.pull_url,
                provenance=await self._status_provenance(record, spend),
            )
        )

    async def _status_provenance(self, record: ForgeRunRecord, spend: Spend) -> Provenance:
        """The footer of the status comment: a run not yet ended is "still running", so the
        comment is edited when what it says changes, not as its clock moves on."""
        provenance = await self.source.provenance(record, spend)
        return provenance if record.ended_at is not None else replace(provenance, duration=None)

    # -- the agent's own posts -------------------------------------------------------------

    async def comment(self, record: ForgeRunRecord, number: int, text: str) -> str:
        """Post what the agent wrote on ``number`` (its issue or pull request); the URL."""
        body = await self.signed(record, self.agent_text(text, own=_own(record)))
        posted = await self._post(record, number, body)
        return posted.url

    async def describe(self, record: ForgeRunRecord, text: str) -> str:
        """Make the agent's words its pull request's description; the pull request's URL."""
        assert record.pull is not None
        body = await self.signed(record, self.agent_text(text, own=_own(record)))
        await self._api(record).edit_pull(record.slug, record.pull, body=body)
        return record.pull_url or f"#{record.pull}"

    async def open_pull(
        self, record: ForgeRunRecord, *, title: str, text: str, draft: bool
    ) -> ForgePull:
        """Push the run's branch and open its one pull request (or find the open one),
        the requester asked to review."""
        await self._launcher.push(record.agent)
        api = self._api(record)
        pull = await api.find_pull(record.slug, record.branch)
        if pull is None:
            line = await self._launcher.line(record.agent)
            if line is None:  # pushed just now: its line ended meanwhile
                raise NoLine(f"{record.agent} has no branch any more: nothing to open")
            base = line.base_ref
            said = self.agent_text(text, own=_own(record))
            body = f"Closes #{record.issue}.\n\n{said}".rstrip()
            pull = await api.open_pull(
                record.slug,
                head=record.branch,
                base=base,
                title=_one_line(self._redact(title))[:TITLE_CAP] or f"Work on #{record.issue}",
                body=await self.signed(record, body),
                draft=draft,
            )
            await self._audit(record, "pull", f"opened PR #{pull.number} from {record.branch}")
            try:
                await api.request_review(record.slug, pull.number, [record.requester])
            except ForgeApiError as exc:  # the requester opened it, or may not review
                log.info("review of #%d not requested: %s", pull.number, exc)
        await self._ledger.update_forge_run(record.id, pull=pull.number, pull_url=pull.url)
        return pull

    # -- done, and the watchdog ------------------------------------------------------------

    async def publish(self, record: ForgeRunRecord) -> None:
        """After the agent's ``done``, once its turn is over: on ``ok`` the branch pushed,
        the pull request opened (or updated) and the summary posted on it; on ``failed``
        the summary posted on the issue."""
        summary = record.summary or ""
        api = self._api(record)
        entry = self._forges[record.forge]
        if record.done_status != "ok":
            said = self.agent_text(summary, own=_own(record))
            body = f"**{record.agent} could not finish:**\n\n{said}"
            await self._ledger.update_forge_run(record.id, state=ForgeRunState.FAILED)
            await self._post(record, record.issue, await self.signed(record, body))
            await self.refresh(record.id)
            return
        try:
            pull = await self.open_pull(record, title=record.title, text=summary, draft=entry.draft)
        except (FleetwardenError, ForgeApiError) as exc:
            why = self.agent_text(str(exc)[:WHY_CAP], own=_own(record))
            body = f"**{record.agent} is done, but its branch could not be published:**\n\n{why}"
            await self._ledger.update_forge_run(record.id, state=ForgeRunState.FAILED)
            await self._post(record, record.issue, await self.signed(record, body))
            await self.refresh(record.id)
            return
        # Published: waiting for review from now on, whatever the posts below meet (a
        # done is never published twice).
        await self._ledger.update_forge_run(record.id, state=ForgeRunState.WAITING)
        fresh = await self._ledger.forge_run(record.id) or record
        try:
            check = await api.check_run(
                record.slug,
                head_sha=pull.head_sha,
                title=f"{record.agent}: done",
                summary=defuse(self._redact(summary), limit=4000, own=_own(fresh)),
                status="completed",
                conclusion="success",
                check_id=None,
            )
            if check is not None:
                await self._ledger.update_forge_run(record.id, check_id=check)
        except ForgeApiError as exc:  # an App without checks: write, say
            log.warning("no check run on %s#%d: %s", record.slug, pull.number, exc)
        body = f"**{record.agent} is done:**\n\n{self.agent_text(summary, own=_own(fresh))}"
        try:
            await self._post(record, pull.number, await self.signed(fresh, body))
        except ForgeApiError as exc:
            log.warning("the summary of %s#%d was not posted: %s", record.slug, pull.number, exc)
        await self.refresh(record.id)

    async def watchdog(self, record: ForgeRunRecord, minutes: int) -> None:
        """Say on the issue that the agent did not signal done within ``minutes``."""
        await self._ledger.update_forge_run(
            record.id, done_signal="watchdog", state=ForgeRunState.WAITING
        )
        fresh = await self._ledger.forge_run(record.id) or record
        body = (
            f"**{record.agent} did not signal done** within {minutes} minutes of silence. "
            "What it left is kept on its branch; a comment mentioning the bot continues it."
        )
        number = fresh.pull or fresh.issue
        await self._post(record, number, await self.signed(fresh, body))
        await self._audit(record, "watchdog", f"no done within {minutes} minutes")
        await self.refresh(record.id)

    async def _audit(self, record: ForgeRunRecord, op: str, detail: str) -> None:
        await self._ledger.audit_forge(record.id, "fleetwarden", op, True, detail)


def _own(record: ForgeRunRecord) -> tuple[int, ...]:
    """The issue and pull request numbers the run's posts may name and close."""
    return tuple(n for n in (record.issue, record.pull) if n is not None)


def _one_line(text: str) -> str:
    return " ".join(text.split())
