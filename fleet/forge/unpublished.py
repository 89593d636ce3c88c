"""Why a forge run's pull request could not be opened, in Fleetwarden's words, and what
opens it: :func:`why_unpublished` reads the refusal (the push of the branch, or the
forge's answer to the pull request) and says what it means and what to change;
:func:`fix_words` says how it is opened once that is fixed. Pure: the refusal comes in.

What the forge said is kept in a few words after ours (its message, never its headers or
a token: the client quotes none), so an operator can still search for it.
"""

from __future__ import annotations

from typing import Final

from fleet.forge.model import ForgeApiError
from fleet.forge.rest import ForgeRateLimited
from fleet.forge.schema import ForgeEntry
from fleet.redaction.guard import guarded

RETRY_MINUTES: Final = 5
"""How often the forge runs' round tries again to open a pull request that could not be."""
SAID_CAP: Final = 200  # characters of what the forge or git said, quoted after our words


def why_unpublished(
    refusal: Exception, *, forge: str, entry: ForgeEntry, slug: str, branch: str
) -> str:
    """Why the pull request of ``branch`` on ``slug`` (forge ``forge``, configured as
    ``entry``) could not be opened, and what to change, from ``refusal``."""
    if not isinstance(refusal, ForgeApiError):  # the branch was not pushed (the git door)
        return f"the branch {branch} could not be pushed: {_said(str(refusal))}"
    status, said = refusal.status, _forge_said(refusal)
    quoted = f" (it said: {said})" if said else ""
    if isinstance(refusal, ForgeRateLimited):
        return f"forge {forge} is rate limiting Fleetwarden's calls{quoted}"
    if status == 401:
        return (
            f"forge {forge} did not take Fleetwarden's credential{quoted}: set "
            f"{_credential(entry)} to a valid one and restart Fleetwarden"
        )
    if status == 403:
        return (
            f"forge {forge} does not let Fleetwarden's credential ({_credential(entry)}) open "
            f"pull requests on {slug}{quoted}: give it pull requests read and write on the "
            "repository"
        )
    if status == 404:
        return (
            f"forge {forge} answered that {slug} is not there for Fleetwarden's credential "
            f"({_credential(entry)}){quoted}: check `forge_repo` and that the credential "
            "reaches the repository"
        )
    if status == 422 and "already exists" in said.lower():
        return (
            f"forge {forge} says a pull request from {branch} already exists, but Fleetwarden "
            "did not find it open a moment before: the next try takes that one up"
        )
    if status == 422 and "no commits between" in said.lower():
        return f"the branch {branch} has no commits its base lacks: there is nothing to review"
    if status == 422:
        return f"forge {forge} refused the pull request as it was asked{quoted}"
    if status == 0:
        return f"forge {forge} could not be reached ({_said(str(refusal))})"
    if status >= 500:
        return f"forge {forge} failed to answer ({status}){quoted}"
    return f"forge {forge} refused the pull request ({status}){quoted}"


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
