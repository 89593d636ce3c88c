"""What a forge run's posts ask of a review agent's rounds (:class:`Reviews`): the forge's
side of them (:mod:`fleet.forge.runs.reviewing`) is made after the
:class:`~fleet.forge.posts.publish.Publisher` it posts through, and the publisher reviews
with it from then on (:meth:`~fleet.forge.posts.publish.Publisher.review_with`)."""

from __future__ import annotations

from typing import Protocol

from fleet.ledger.records.forge import ForgeRunRecord


class Reviews(Protocol):
    """Who reviews forge runs' work before a human does."""

    def reviewed(self, record: ForgeRunRecord) -> bool:
        """Whether an agent reviews ``record``'s work (its pull request opens as a draft)."""
        ...

    async def published(self, key: int, commit: str) -> None:
        """Forge run ``key``'s ``done ok`` is published, its pull request's head at
        ``commit``: its next round of review, if any."""
        ...
