"""A forge's answer to "who is this credential?", in Fleetwarden's own words.

At start, and in ``check-config --online``, each forge is asked which account its
credential acts as. A 401, an address that is no forge's API, a forge that cannot be
reached, or another login than the config's: :func:`login_problem` says which forge, which
environment variable the credential is read from (never its value) and the fix, and
whether the forge is to be held — its events refused until the config is fixed — rather
than only warned about (a forge that cannot be reached now may answer later).

Everything here is pure: the forge's words come in a
:class:`~fleet.forge.model.ForgeApiError`, already one line and free of the credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fleet.forge.changes import same_login
from fleet.forge.model import ForgeApiError
from fleet.forge.rest import ForgeRateLimited
from fleet.forge.schema import ForgeEntry

GUIDE: Final = "docs/forges.md"
API_ROOTS: Final = "GitHub's is https://api.github.com, a Gitea's or Forgejo's https://HOST/api/v1"


@dataclass(frozen=True, slots=True)
class LoginProblem:
    """What is wrong with a forge's credential or address: ``text`` says it with the fix;
    ``held``: the forge's events wait until it is fixed (not only a warning); ``key`` is
    the config key under the forge the fix is about (for ``check-config``'s line)."""

    text: str
    held: bool
    key: str


def credential_words(name: str, entry: ForgeEntry) -> str:
    """Where forge ``name``'s credential is read from: ``the token in VAR
    (forges.NAME.token_env)``, or the App's variables. Never a value."""
    if entry.app is not None:
        return (
            f"the GitHub App's id and key in {entry.app.app_id_env} and "
            f"{entry.app.private_key_env} (forges.{name}.app)"
        )
    return f"the token in {entry.token_env} (forges.{name}.token_env)"


def _variables(entry: ForgeEntry) -> str:
    if entry.app is not None:
        return f"{entry.app.app_id_env} and {entry.app.private_key_env}"
    return str(entry.token_env)


def login_problem(
    name: str, entry: ForgeEntry, *, actual: str | None = None, error: ForgeApiError | None = None
) -> LoginProblem | None:
    """Forge ``name``'s answer to "who is this credential?" — the login it gave
    (``actual``), or the ``error`` it answered with — as a problem, or ``None`` when the
    credential acts as the config's ``login``."""
    credential = credential_words(name, entry)
    if error is None:
        if actual is None or same_login(actual, entry.login):
            return None
        return LoginProblem(
            f"forge {name}'s login is {entry.login!r} in the config, but {credential} acts "
            f"as {actual!r}: set login: {actual} (its events wait until then), or put the "
            f"bot account's credential in {_variables(entry)}",
            True,
            "login",
        )
    said = str(error)
    if isinstance(error, ForgeRateLimited):
        return LoginProblem(
            f"forge {name} ({entry.api_url}) is rate limiting {credential} now ({said}): its "
            "login is checked when it answers",
            False,
            "api_url",
        )
    if error.status == 401:
        kind = "the App's id and key" if entry.app is not None else "a valid token"
        return LoginProblem(
            f"forge {name} ({entry.api_url}) refused Fleetwarden's credential ({said}): "
            f"{credential} is wrong, has expired or was revoked. Put {kind} in "
            f"{_variables(entry)}, then restart Fleetwarden (it reads the variable at start); "
            "until then the forge's events are refused",
            True,
            "app" if entry.app is not None else "token_env",
        )
    if error.status == 404 or "not JSON" in said or "no JSON object" in said:
        return LoginProblem(
            f"forge {name}'s api_url {entry.api_url} is not the root of a forge's API "
            f"({said}): set forges.{name}.api_url to it ({API_ROOTS}); until then the "
            "forge's events are refused",
            True,
            "api_url",
        )
    if error.status == 0:
        return LoginProblem(
            f"forge {name} could not be reached at {entry.api_url} ({said}): check "
            f"forges.{name}.api_url and that this machine reaches it; its events are acted "
            "on once it answers",
            False,
            "api_url",
        )
    return LoginProblem(
        f"forge {name} ({entry.api_url}) could not say who {credential} is ({said}): check "
        f"that credential and forges.{name}.api_url (see {GUIDE})",
        False,
        "token_env" if entry.token_env else "app",
    )
