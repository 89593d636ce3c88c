"""``merge`` from chat of a forge run whose pull request is open, where the forge merges on
Fleetwarden's word with a guard on the head: GitLab's merge request merge takes the commit
the merge is of (``sha``) and refuses (409) when the head moved past it since — so what
lands is exactly the commit the operator was shown, and its review agent approved.

:meth:`PullMerges.open_pull` says whether a line's work is such a pull request;
:meth:`PullMerges.merge` merges it. The forge then tells of the merge (its webhook), which
ends the run as a merge on the forge does. A forge without the guard (GitHub and Gitea here)
keeps its pull request's merge to the forge: ``merge`` there is refused as before, naming
the pull request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from fleet.forge.model import ForgeApi, ForgeApiError, ForgePull
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState, Slug
from fleet.ledger.records.lines import LineRecord
from fleet.ledger.stores.code.forge import ForgeStore


@runtime_checkable
class MergesPulls(ForgeApi, Protocol):
    """A forge client that merges a pull request only while its head is a given commit."""

    async def merge_pull(
        self, repo: Slug, number: int, *, sha: str, squash: bool = False
    ) -> ForgePull: ...


class PullMergeRefused(Exception):
    """The forge did not merge: :attr:`args` ``[0]`` says why, in the operator's words."""


class PullMerges:
    """Merges of forge runs' pull requests asked from chat, through their forges' clients."""

    def __init__(self, apis: Mapping[str, ForgeApi], forge: ForgeStore) -> None:
        self._apis = apis
        self._forge = forge

    async def open_pull(self, line: LineRecord) -> ForgeRunRecord | None:
        """The live forge run whose open pull request is ``line``'s work, when its forge
        merges with a guard on the head (else None: the forge's own merge is the way)."""
        for record in await self._forge.forge_runs(agent=line.agent):
            over = ForgeRunState(record.state).is_over
            if record.line_id != line.id or record.pull is None or over:
                continue
            return record if isinstance(self._apis.get(record.forge), MergesPulls) else None
        return None

    async def merge(
        self, record: ForgeRunRecord, sha: str, base: str, *, squash: bool
    ) -> ForgePull:
        """Merge ``record``'s pull request (a draft made ready first) if its head is still
        ``sha`` and its target ``base``; the pull request as the forge now has it.
        :class:`PullMergeRefused` when the forge refused."""
        api = self._apis[record.forge]
        assert isinstance(api, MergesPulls) and record.pull is not None
        try:
            pull = await api.pull(record.slug, record.pull)
            if pull.base != base:  # retargeted on the forge: not the merge that was asked
                raise PullMergeRefused(
                    f"its target is {pull.base[:100]!r} on the forge, not {base!r}, the "
                    "branch the run's work is for"
                )
            if pull.head_sha != sha:  # someone pushed: nothing is lifted or merged
                raise PullMergeRefused(
                    f"its head on the forge is {pull.head_sha[:12]}, not {sha[:12]}, the "
                    "head Fleetwarden pushed"
                )
            # A draft is merged by no one: the operator's merge is their word it is ready.
            if pull.draft:
                await api.ready_for_review(record.slug, record.pull)
            merged = await api.merge_pull(record.slug, record.pull, sha=sha, squash=squash)
        except ForgeApiError as exc:
            raise PullMergeRefused(f"{exc}") from None
        await self._forge.audit_forge(
            record.id, "fleetwarden", "merge", True, f"merged !{record.pull} at {sha[:12]}"
        )
        return merged
