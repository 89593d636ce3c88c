"""Why a forge run's pull request could not be opened, in Fleetwarden's words, and what
opens it: :func:`why_unpublished` reads the refusal (the push of the branch, or the
forge's answer to the pull request) and says it twice — :attr:`Unpublished.public`, the
kind of refusal in a few words for the issue and its status comment (no variable, config
key, upstream address or upstream's own words: the forge's page is public), and
:attr:`Unpublished.detail`, what it means and what to change, for chat and the operator's
views; :func:`fix_words` says how it is opened once that is fixed. Pure: the refusal
comes in.

What the forge said is kept in a few words after ours in the detail (its message, never its
headers or a token: the client quotes none), so an operator can still search for it. The
forge audit keeps both (:func:`audit_words`), as it does a refused launch's
(:class:`fleet.forge.launcher.LaunchRefused`): a post on the forge shows only the public
part (:func:`public_part`).

A run whose line ended (merged or discarded from chat) before its pull request opened is
never tried again: :class:`LineEnded` says so, and the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.model import ForgeApiError
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.redaction.guard import guarded
from fleet.repos.desk import NoLine

RETRY_MINUTES: Final = 5
"""How often the forge runs' round tries again to open a pull request that could not be."""
SAID_CAP: Final = 200  # characters of what the forge or git said, quoted after our words
OPERATOR: Final = "the operator has the details"
_DETAIL: Final = "\n"  # between the public words and the detail, in the forge audit


@dataclass(frozen=True, slots=True)
class Unpublished:
    """Why a pull request was not opened: ``public``, the kind in a few words fit for the
    forge's page; ``detail``, the operator's words — the variable, the key, what the forge
    or the upstream said, and what to change."""

    public: str
    detail: str


def why_unpublished(
    refusal: Exception, *, forge: str, entry: ForgeEntry, slug: str, branch: str
) -> Unpublished:
    """Why the pull request of ``branch`` on ``slug`` (forge ``forge``, configured as
    ``entry``) could not be opened, and what to change, from ``refusal``."""
    if not isinstance(refusal, ForgeApiError):  # the branch was not pushed (the git door)
        return Unpublished(
            f"its branch could not be pushed to the repository; {OPERATOR}",
            f"the branch {branch} could not be pushed: {_said(str(refusal))}",
        )
    status, said = refusal.status, _forge_said(refusal)
    quoted = f" (it said: {said})" if said else ""
    if isinstance(refusal, ForgeRateLimited):
        return Unpublished(
            "the forge is rate limiting Fleetwarden's calls",
            f"forge {forge} is rate limiting Fleetwarden's calls{quoted}",
        )
    if status == 401:
        return Unpublished(
            f"the forge refused Fleetwarden's credential; {OPERATOR}",
            f"forge {forge} did not take Fleetwarden's credential{quoted}: set "
            f"{_credential(entry)} to a valid one and restart Fleetwarden",
        )
    if status == 403:
        return Unpublished(
            f"the forge does not let Fleetwarden's credential open pull requests here; {OPERATOR}",
            f"forge {forge} does not let Fleetwarden's credential ({_credential(entry)}) open "
            f"pull requests on {slug}{quoted}: give it pull requests read and write on the "
            "repository",
        )
    if status == 404:
        return Unpublished(
            f"the forge did not find this repository for Fleetwarden's credential; {OPERATOR}",
            f"forge {forge} answered that {slug} is not there for Fleetwarden's credential "
            f"({_credential(entry)}){quoted}: check `forge_repo` and that the credential "
            "reaches the repository",
        )
    if status == 422 and "already exists" in said.lower():
        words = (
            f"the forge says a pull request from {branch} already exists, but Fleetwarden "
            "did not find it open a moment before: the next try takes that one up"
        )
        return Unpublished(words, f"forge {forge} {words.removeprefix('the forge ')}")
    if status == 422 and "no commits between" in said.lower():
        words = f"the branch {branch} has no commits its base lacks: there is nothing to review"
        return Unpublished(words, words)
    if status == 422:
        return Unpublished(
            f"the forge refused the pull request as it was asked; {OPERATOR}",
            f"forge {forge} refused the pull request as it was asked{quoted}",
        )
    if status == 0:
        return Unpublished(
            f"the forge could not be reached; {OPERATOR}",
            f"forge {forge} could not be reached ({_said(str(refusal))})",
        )
    if status >= 500:
        return Unpublished(
            f"the forge failed to answer ({status})",
            f"forge {forge} failed to answer ({status}){quoted}",
        )
    return Unpublished(
        f"the forge refused the pull request ({status}); {OPERATOR}",
        f"forge {forge} refused the pull request ({status}){quoted}",
    )


class Told(Protocol):
    """Words said twice: for the forge's public page, and for the operator."""

    @property
    def public(self) -> str: ...

    @property
    def detail(self) -> str: ...


def audit_words(why: Told) -> str:
    """``why`` as the forge audit keeps it: its public words, then its detail (when it has
    one of its own). Every post on the forge shows only the first (:func:`public_part`)."""
    if why.detail == why.public:
        return why.public
    return f"{why.public}{_DETAIL}{why.detail}"


def public_part(kept: str) -> str:
    """The public words of what :func:`audit_words` kept (all of it, if it kept one part)."""
    return kept.partition(_DETAIL)[0]


def detail_part(kept: str) -> str:
    """The detail of what :func:`audit_words` kept (all of it, if it kept one part)."""
    public, found, detail = kept.partition(_DETAIL)
    return detail if found else public


BRANCH_ENDED: Final = "its branch ended before its pull request was opened"
"""How a run whose line ended before its pull request opened ended (its ``end`` audit)."""


class LineEnded(NoLine):
    """The line a forge run works on is live no more (merged or discarded in chat, or
    gone), so its branch is not pushed and its pull request never opens; the message says
    so in words fit for the issue."""

    def __init__(self, record: ForgeRunRecord, line: LineRecord | None) -> None:
        if line is not None and line.state is LineState.MERGED:
            how = f"was merged into {line.base_ref} from chat"
        elif line is not None and line.state is LineState.DISCARDED:
            how = "was discarded from chat"
        else:
            how = "is no longer in Fleetwarden"
        super().__init__(f"its branch {record.branch} {how} before its pull request was opened")


def fix_words(agent: str, minutes: int = RETRY_MINUTES) -> str:
    """How the pull request gets opened once its cause is fixed."""
    return (
        f"`pr {agent}` in chat opens it once that is fixed; Fleetwarden also tries again "
        f"every {minutes} minutes"
    )


def _credential(entry: ForgeEntry) -> str:
    """The variable holding the forge's credential, as its config names it."""
    if entry.app is not None:
        return f"the GitHub App's key in {entry.app.private_key_env}"
    return f"the token in {entry.token_env}"


def _forge_said(refusal: ForgeApiError) -> str:
    """The forge's own message in the client's refusal (after ``: STATUS ``)."""
    text = str(refusal)
    head, found, said = text.partition(f": {refusal.status} ") if refusal.status else ("", "", "")
    return _said(said) if found and head else ""


def _said(text: str) -> str:
    return guarded(text, limit=SAID_CAP).rstrip(".")
