"""A draft that is a title prefix, as Gitea (``WIP: ``) and GitLab (``Draft: ``) keep it:
:class:`TitleDrafts`, which puts the prefix on a draft's title, keeps it on through an
edit, and takes it off (or on again) with the forge's own call to retitle, checking the
forge read the new title as meant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fleet.forge.model import ForgeApiError, ForgePull

Retitle = Callable[[str], Awaitable[ForgePull]]
"""The forge's call that gives the pull request a new title: the pull request after it."""


@dataclass(frozen=True, slots=True)
class TitleDrafts:
    """Drafts on forge ``forge``: ``prefix`` marks one, ``is_draft`` reads a title as the
    forge does and ``strip`` takes every prefix it reads off; messages call the prefix
    ``word`` and a pull request ``mark`` + its number (``#3``, ``!3``)."""

    forge: str
    prefix: str
    word: str
    mark: str
    is_draft: Callable[[str], bool]
    strip: Callable[[str], str]

    def opened(self, title: str, draft: bool) -> str:
        """The title to open a pull request with."""
        return self.prefix + title if draft and not self.is_draft(title) else title

    async def kept(self, title: str, pull: Callable[[], Awaitable[ForgePull]]) -> str:
        """``title`` for an edit: a draft stays a draft, its marker being in the title the
        edit replaces (``pull`` is asked only when ``title`` has no marker)."""
        if not self.is_draft(title) and (await pull()).draft:
            return self.prefix + title
        return title

    async def lift(self, pull: ForgePull, retitle: Retitle) -> None:
        """Make ``pull`` ready for review: its prefix taken off."""
        if not pull.draft:
            return
        title = self.strip(pull.title)
        if not title:
            raise ForgeApiError(
                f"{self.forge}: the title of {self.mark}{pull.number} is only its "
                f"{self.word} prefix"
            )
        if (await retitle(title)).draft:  # the forge reads drafts by prefixes of its own
            raise ForgeApiError(
                f"{self.forge} still holds {self.mark}{pull.number} for a draft", 200
            )

    async def lower(self, pull: ForgePull, retitle: Retitle) -> None:
        """Make ``pull`` a draft again: the prefix put back on its title."""
        if pull.draft:
            return
        if not (await retitle(self.prefix + pull.title)).draft:
            raise ForgeApiError(
                f"{self.forge} does not hold {self.mark}{pull.number} for a draft", 200
            )
