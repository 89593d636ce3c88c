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

from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.model import ForgeApiError, same_login
from fleet.forge.schema import ForgeEntry, is_login
from fleet.redaction.guard import quote

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


@dataclass(frozen=True, slots=True)
class _Then:
    """How a problem's fix goes on: in a running Fleetwarden (a restart; its events refused
    meanwhile), or before starting one (``check-config --online``)."""

    running: bool

    @property
    def waiting(self) -> str:
        return "its events wait until then" if self.running else "else its events would wait"

    @property
    def fixed(self) -> str:
        if self.running:
            return (
                "then restart Fleetwarden (it reads the variable at start); until then the "
                "forge's events are refused"
            )
        return "before starting Fleetwarden (it reads the variable at start)"

    @property
    def refused(self) -> str:
        if self.running:
            return "until then the forge's events are refused"
        return "else Fleetwarden would refuse the forge's events"

    @property
    def acted(self) -> str:
        if self.running:
            return "its events are acted on once it answers"
        return "a Fleetwarden started meanwhile acts on its events once it answers"

    @property
    def later(self) -> str:
        return "" if self.running else ": ask again in a while"


def _variables(entry: ForgeEntry) -> str:
    if entry.app is not None:
        return f"{entry.app.app_id_env} and {entry.app.private_key_env}"
    return str(entry.token_env)


def login_problem(
    name: str,
    entry: ForgeEntry,
    *,
    actual: str | None = None,
    error: ForgeApiError | None = None,
    running: bool = True,
) -> LoginProblem | None:
    """Forge ``name``'s answer to "who is this credential?" — the login it gave
    (``actual``), or the ``error`` it answered with — as a problem, or ``None`` when the
    credential acts as the config's ``login``. ``running``: asked by a running Fleetwarden
    at its start (the fix ends in a restart, and its events are refused meanwhile); else by
    ``check-config --online``, before any start (the fix is made before starting it)."""
    credential = credential_words(name, entry)
    then = _Then(running)
    if error is None:
        if actual is None or same_login(actual, entry.login):
            return None
        fix = f"set login: {actual} ({then.waiting}), or " if is_login(actual) else ""
        return LoginProblem(
            f"forge {name}'s login is {entry.login!r} in the config, but {credential} acts "
            f"as {quote(actual, 60)}: {fix}put the bot account's credential in "
            f"{_variables(entry)}",
            True,
            "login",
        )
    said = f"it says {quote(str(error), 300)}"
    if isinstance(error, ForgeRateLimited):
        return LoginProblem(
            f"forge {name} ({entry.api_url}) is rate limiting {credential} now ({said}): its "
            f"login is checked when it answers{then.later}",
            False,
            "api_url",
        )
    if error.status == 401:
        kind = "the App's id and key" if entry.app is not None else "a valid token"
        return LoginProblem(
            f"forge {name} ({entry.api_url}) refused Fleetwarden's credential ({said}): "
            f"{credential} is wrong, has expired or was revoked. Put {kind} in "
            f"{_variables(entry)}, {then.fixed}",
            True,
            "app" if entry.app is not None else "token_env",
        )
    if error.status == 404 or "not JSON" in str(error) or "no JSON object" in str(error):
        return LoginProblem(
            f"forge {name}'s api_url {entry.api_url} is not the root of a forge's API "
            f"({said}): set forges.{name}.api_url to it ({API_ROOTS}); {then.refused}",
            True,
            "api_url",
        )
    if error.status == 0:
        return LoginProblem(
            f"forge {name} could not be reached at {entry.api_url} ({said}): check "
            f"forges.{name}.api_url and that this machine reaches it; {then.acted}",
            False,
            "api_url",
        )
    return LoginProblem(
        f"forge {name} ({entry.api_url}) could not say who {credential} is ({said}): check "
        f"that credential and forges.{name}.api_url (see {GUIDE})",
        False,
        "token_env" if entry.token_env else "app",
    )
