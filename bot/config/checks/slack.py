"""At start and in ``check-config``: the Slack app's tokens are in the environment, each in
its own variable, told apart by how a Slack token starts.

A bot token starts ``xoxb-``, an app-level token ``xapp-``. Pasting one where the other
goes (or a user token, ``xoxp-``, anywhere) is the commonest mistake in setting up a Slack
app, and Slack only says ``invalid_auth`` or ``not_allowed_token_type`` far from the cause.
Each problem names the variable and the start it needs; the value is never formatted into
a message: only which of Slack's known kinds it is, from this module's own words.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from connectors.slack.config import SlackConfig
from fleet.budgets.schema import Loc
from fleet.schema import unset_variable

SECTION = ("connectors", "slack")
BOT_TOKEN_PREFIX = "xoxb-"
APP_TOKEN_PREFIX = "xapp-"

_KINDS = (
    ("xoxe.", "a rotating token (xoxe.…), which expires in hours: turn token rotation off"),
    (BOT_TOKEN_PREFIX, "a bot token (xoxb-…)"),
    (APP_TOKEN_PREFIX, "an app-level token (xapp-…)"),
    ("xoxp-", "a user token (xoxp-…)"),
    ("xoxc-", "a browser session token (xoxc-…)"),
    ("xoxa-", "a workspace app token (xoxa-…)"),
)


@dataclass(frozen=True, slots=True)
class Wanted:
    """A token the app needs: its key, what it is called, the start its value needs and
    where on api.slack.com it is found."""

    key: str
    what: str
    prefix: str
    where: str


BOT = Wanted(
    "bot_token_env",
    "the Slack app's bot token",
    BOT_TOKEN_PREFIX,
    "OAuth & Permissions → Bot User OAuth Token, after installing the app",
)
APP = Wanted(
    "app_token_env",
    "the Slack app's app-level token",
    APP_TOKEN_PREFIX,
    "Basic Information → App-Level Tokens, with the connections:write scope",
)


def kind_of(value: str) -> str:
    """What kind of Slack token ``value`` is, in words that never include any of it."""
    for prefix, words in _KINDS:
        if value.startswith(prefix):
            return words
    return "something that is no Slack token"


def token_problem(environ: Mapping[str, str], variable: str, wanted: Wanted) -> str | None:
    """What is wrong with the token in ``variable``: unset, empty, or not starting as
    ``wanted`` says; ``None`` when it may be right. Never shows the value."""
    unset = unset_variable(environ, variable, f"{wanted.what} ({wanted.prefix}…; {wanted.where})")
    if unset is not None:
        return unset
    value = environ[variable].strip()
    if value.startswith(wanted.prefix):
        return None
    return (
        f"environment variable {variable} holds {kind_of(value)}, not {wanted.what}: "
        f"{wanted.what} starts {wanted.prefix} ({wanted.where}). Set {variable} to it "
        "(the value is not shown)"
    )


def environment_problems(
    slack: SlackConfig | None, environ: Mapping[str, str]
) -> Iterator[tuple[Loc, str]]:
    """The Slack app's credentials that are missing or of the wrong kind, each at its key:
    the bot token, the app-level token in socket mode, the signing secret in http mode."""
    if slack is None or not slack.enabled:
        return
    wanted = [(slack.bot_token_env, BOT)]
    if slack.mode == "socket" and slack.app_token_env is not None:
        wanted.append((slack.app_token_env, APP))
    for variable, token in wanted:
        problem = token_problem(environ, variable, token)
        if problem is not None:
            yield (*SECTION, token.key), problem
    if slack.mode == "http" and slack.signing_secret_env is not None:
        problem = unset_variable(
            environ,
            slack.signing_secret_env,
            "the Slack app's signing secret (Basic Information → App Credentials)",
        )
        if problem is not None:
            yield (*SECTION, "signing_secret_env"), problem


def online_summary(slack: SlackConfig | None, *, asked: bool) -> str:
    """``check-config``'s line about Slack: what ``--online`` asked, or that it was not."""
    if slack is None:
        return ""
    tokens = "bot token" + (" and app-level token" if slack.mode == "socket" else "")
    if not asked:
        return f"\n  online:     Slack not asked (`check-config --online` tries the {tokens})"
    return f"\n  online:     Slack took the {tokens}; the bot holds every scope it needs"
