"""The installation tokens a GitHub App's repositories fetch and push with: each
repository's minted through its forge's client, kept by the variable its git reads, and
minted again every :data:`RENEW_SECONDS` (a round at a time, :meth:`GitTokens.renew`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Final

from fleet.forge.model import ForgeApi
from fleet.ledger.records.forge import Slug

log = logging.getLogger(__name__)

RENEW_SECONDS: Final = 2 * 60
"""How often the tokens are asked for: a token is minted anew once it has under 5 minutes
left (each lasts an hour), so git's never runs out between asks."""


class GitTokens:
    """The tokens of ``wanted`` — each ``(forge, variable, repository)`` — by variable."""

    def __init__(
        self, apis: Mapping[str, ForgeApi], wanted: Sequence[tuple[str, str, Slug]]
    ) -> None:
        self._apis = apis
        self.wanted = tuple(wanted)
        self.tokens: dict[str, str] = {}

    async def renew(self) -> None:
        """One round: each repository's token, asked for side by side; one that fails
        keeps the token it had (still good for the hour) and is said in the log."""

        async def one(forge: str, variable: str, slug: Slug) -> None:
            try:
                self.tokens[variable] = await self._apis[forge].git_token(slug)
            except Exception as exc:  # the round goes on: the next may get one
                log.warning("no installation token for %s on %s: %s", slug, forge, exc)

        await asyncio.gather(*(one(*wanted) for wanted in self.wanted))
