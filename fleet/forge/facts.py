"""What chat hears of forge work: a pull request opened and how it ended, and a run that
could not be found."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.ledger.records.forge import ForgeRunRecord, Slug


@dataclass(frozen=True, slots=True)
class PullNews:
    """What became of a forge run's pull request, for chat: opened when its work was done
    (``pull``, ``pull_url``; ``late``: only once what kept it from opening was fixed), or
    not (``why``, in Fleetwarden's words, and ``fix``); or how it ended (``ended``:
    ``merged`` or ``closed``, and by whom, ``by``)."""

    agent: str
    slug: Slug
    issue: int
    issue_url: str
    pull: int | None = None
    pull_url: str | None = None
    why: str | None = None
    fix: str | None = None
    late: bool = False
    ended: str | None = None
    by: str | None = None

    @classmethod
    def of(
        cls,
        record: ForgeRunRecord,
        *,
        pull: int | None = None,
        pull_url: str | None = None,
        why: str | None = None,
        fix: str | None = None,
        late: bool = False,
        ended: str | None = None,
        by: str | None = None,
    ) -> PullNews:
        """The news of ``record``'s pull request."""
        return cls(
            record.agent, record.slug, record.issue, record.issue_url, pull, pull_url, why,
            fix, late, ended, by,
        )  # fmt: skip


def own_numbers(record: ForgeRunRecord) -> tuple[int, ...]:
    """The issue and pull request numbers ``record``'s posts may name and close."""
    return tuple(n for n in (record.issue, record.pull) if n is not None)


@dataclass(frozen=True, slots=True)
class NoRunNews:
    """An issue given to no agent that can start there, for chat: by ``label`` (the forge
    user's text) or by an assignment (None), naming ``agent``, and ``why`` no run started
    (Fleetwarden's words for the operator)."""

    agent: str
    slug: Slug
    issue: int
    forge: str
    actor: str
    label: str | None
    why: str
