"""What goes on the forge for a forge run, whoever wrote it: each comment and description
ends with the run's provenance footer (an answer where no run started, with the footer
saying so), and whatever an agent wrote is redacted of secrets and defused first — no
mention, no image, no reference but to the run's own issue and pull request, no markup that
hides — a body whose rendering would hold anything live going out as one code block
instead. The comments posted here are remembered: their events are Fleetwarden's own."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fleet.forge.facts import own_numbers
from fleet.forge.model import ForgeApi, ForgeComment
from fleet.forge.posts.footer import footer, no_run_footer
from fleet.forge.posts.provenance import ProvenanceSource
from fleet.ledger.records.forge import ForgeRunRecord, Slug
from fleet.markdown.defuse import BODY_LIMIT, POST_CAP, as_code, defuse
from fleet.markdown.hidden import cap, unseen_free
from fleet.markdown.inert import inert

log = logging.getLogger(__name__)


class Posts:
    """Signed, defused posts of forge runs, through each forge's API (``apis``); their
    footers read from ``source``; ``redact``: the app's redactor."""

    def __init__(
        self,
        apis: Mapping[str, ForgeApi],
        source: ProvenanceSource,
        redact: Callable[[str], str],
    ) -> None:
        self._apis = apis
        self.source = source
        self.redact = redact
        self.posted: set[int] = set()  # the comments posted here: their events are ours

    def api(self, record: ForgeRunRecord) -> ForgeApi:
        """The API of ``record``'s forge."""
        return self._apis[record.forge]

    async def post(
        self, record: ForgeRunRecord, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        """Post ``body`` (signed already) on issue ``number`` of ``record``'s repository
        (``pull``: on pull request ``number``)."""
        comment = await self.api(record).comment(record.slug, number, body, pull=pull)
        self.posted.add(comment.id)
        return comment

    async def answer(
        self, forge: str, slug: Slug, number: int, body: str, *, asked_by: str
    ) -> ForgeComment:
        """Post Fleetwarden's ``body`` (its own words, escaped already) on issue ``number``
        of ``slug``, where no run was started, with the footer saying so."""
        if not inert(body, (number,)):  # its parts are escaped: never, but said if it is
            log.warning("an answer on %s#%d was sent as code: it was not inert", slug, number)
            body = as_code(cap(unseen_free(body), 4000), (number,))
        foot = no_run_footer(asked_by, self.source.version)
        comment = await self._apis[forge].comment(slug, number, f"{body}\n\n{foot}")
        self.posted.add(comment.id)
        return comment

    def own_of(self, record: ForgeRunRecord) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        """The numbers ``record``'s posts may name: its issue and pull request, in one
        numbering (the second None) — or, on GitLab, which numbers them apart, its issue
        and its merge request each in its own."""
        if self._apis[record.forge].kind != "gitlab":
            return own_numbers(record), None
        return (record.issue,), (() if record.pull is None else (record.pull,))

    def fit(self, record: ForgeRunRecord, text: str, limit: int = POST_CAP) -> str:
        """What ``record``'s agent wrote, fit to post on its forge: no secret, no mention, no
        image, no markup that hides, no reference but to the run's own issue and pull
        request."""
        own, pulls = self.own_of(record)
        return defuse(self.redact(text), limit, own=own, own_pulls=pulls)

    async def signed(self, record: ForgeRunRecord, body: str) -> str:
        """``body`` with the run's provenance footer, as of now, within the forge's limit:
        a body whose rendering holds anything live (it should not: its parts are defused)
        goes out as one code block instead."""
        foot = footer(await self.source.provenance(record))
        room = BODY_LIMIT - len(foot) - 2
        own, pulls = self.own_of(record)
        if len(body) > room or not inert(body, own, own_pulls=pulls):
            log.warning("a post on %s#%d was sent as code: it was not inert", record.slug,
                        record.issue)  # fmt: skip
            body = as_code(cap(unseen_free(body), room // 4), own)
        return f"{body}\n\n{foot}"

    async def comment(
        self, record: ForgeRunRecord, number: int, text: str, *, pull: bool = False
    ) -> str:
        """Post what the agent wrote on ``number`` (its issue; ``pull``: its pull
        request); the URL."""
        body = await self.signed(record, self.fit(record, text))
        posted = await self.post(record, number, body, pull=pull)
        return posted.url

    async def describe(self, record: ForgeRunRecord, text: str) -> str:
        """Make the agent's words its pull request's description; the pull request's URL."""
        assert record.pull is not None
        body = await self.signed(record, self.fit(record, text))
        await self.api(record).edit_pull(record.slug, record.pull, body=body)
        return record.pull_url or f"#{record.pull}"
