"""The Slack connector's settings: the ``connectors.slack`` section of the config file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connectors.inbox import check_prefix
from fleet.connections.listen import split_listen as split_host_port
from fleet.schema import EnvVarName

API_BASE_ENV = "FLEETWARDEN_SLACK_API_BASE"
"""Overrides ``api_base`` when set (tests point the connector at a fake Slack with it)."""
DEFAULT_LISTEN = "127.0.0.1:3100"
BOT_TOKEN_PREFIX = "xoxb-"
APP_TOKEN_PREFIX = "xapp-"
USERGROUP_PREFIX = "usergroup:"

_CHANNEL = re.compile(r"[CG][A-Z0-9]{6,20}")
_USER = re.compile(r"[UW][A-Z0-9]{6,20}")
_USERGROUP = re.compile(r"S[A-Z0-9]{6,20}")
_HTTP = re.compile(r"https?://[^\s/]+(/\S*)?")

Mode = Literal["socket", "http"]


def shown(value: object) -> str:
    """``value`` as an error message may show it: never a Slack token pasted by mistake,
    alone or anywhere inside (a list, a URL)."""
    said = repr(value)
    if "xox" in said or "xapp-" in said:
        return "a Slack token (not shown: it belongs in an environment variable)"
    return said


def channel_id(value: object) -> str:
    """``value`` if it is a Slack channel id (``C…``, or ``G…`` for an old private one)."""
    if not isinstance(value, str) or not _CHANNEL.fullmatch(value):
        raise ValueError(
            "expected a Slack channel id (like C0123456789: in Slack, open the channel's "
            f"details; the id is at the bottom), got {shown(value)}"
        )
    return value


def user_id(value: object) -> str:
    """``value`` if it is a Slack user id (``U…`` or ``W…``)."""
    if not isinstance(value, str) or not _USER.fullmatch(value):
        raise ValueError(
            "expected a Slack user id (like U0123ABCD: in Slack, open the person's profile, "
            f"then ⋮ and Copy member ID), got {shown(value)}"
        )
    return value


def usergroup_id(value: str) -> str | None:
    """The group id of ``usergroup:S…``; ``None`` if ``value`` does not name a user group;
    ``ValueError`` if it starts ``usergroup:`` but the id is not a user group's."""
    if not value.startswith(USERGROUP_PREFIX):
        return None
    group = value.removeprefix(USERGROUP_PREFIX)
    if not _USERGROUP.fullmatch(group):
        raise ValueError(
            "expected usergroup: and a Slack user group id (like usergroup:S0123ABCD), "
            f"got {shown(value)}"
        )
    return group


def is_slack_user(value: str) -> bool:
    """Whether ``value`` has the shape of a Slack user id."""
    return bool(_USER.fullmatch(value))


def api_base_of(config: SlackConfig, environ: Mapping[str, str]) -> str:
    """The Web API base URL to call, ending in ``/``: ``FLEETWARDEN_SLACK_API_BASE`` when set
    (tests), else the section's ``api_base``; ``ValueError`` naming the variable if it is no
    http(s) URL."""
    override = environ.get(API_BASE_ENV, "").strip()
    if not override:
        return config.api_base
    if not _HTTP.fullmatch(override):
        raise ValueError(
            f"{API_BASE_ENV} must be an http:// or https:// URL, got {shown(override)}"
        )
    return override.rstrip("/") + "/"


def split_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as its parts (:func:`fleet.connections.listen.split_listen`)."""
    return split_host_port(text, DEFAULT_LISTEN)


class SlackConfig(BaseModel):
    """A Slack app serving one control channel of one workspace, one thread per agent.

    Operators are listed by Slack user id in the top-level `operators`, or by user group
    as `usergroup:<group id>` (everyone in it). docs/slack.md walks through creating the
    app from its manifest and installing it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        strict=True,
        description="Run the Slack connector. `false` keeps the section but turns it off.",
    )
    bot_token_env: EnvVarName = Field(
        description=(
            "The environment variable holding the app's bot token (`xoxb-…`; never the "
            "token itself)."
        ),
    )
    app_token_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding the app-level token (`xapp-…`, with the "
            "`connections:write` scope). Needed in socket mode."
        ),
    )
    mode: Mode = Field(
        default="socket",
        description=(
            "How Slack's events arrive: `socket` (Socket Mode: Fleetwarden connects out, "
            "nothing listens) or `http` (Slack POSTs them to `listen` through your HTTPS "
            "reverse proxy; for several replicas)."
        ),
    )
    signing_secret_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding the app's signing secret, which proves a "
            "POST came from Slack. Needed in http mode."
        ),
    )
    listen: str = Field(
        default=DEFAULT_LISTEN,
        description=(
            "http mode: the address and port Slack's POSTs arrive at, through your HTTPS "
            "reverse proxy (the app's Request URL is the proxy's)."
        ),
    )
    channel_id: str = Field(
        description=(
            "The control channel's id (`C…`). Commands work here and in the agents' "
            "threads, which are opened under it; fleet-wide notices are posted here."
        ),
    )
    command_prefix: str | None = Field(
        default=None,
        description=(
            "The command prefix on Slack. Default: the top-level `command_prefix` (`!`). "
            "Mentioning the app works too."
        ),
    )
    agent_sessions: bool = Field(
        default=True,
        strict=True,
        description=(
            "Show each run as a Slack agent session in its thread (working, waiting, "
            "ended, with a Stop button) where the workspace allows it."
        ),
    )
    on_call: tuple[str, ...] = Field(
        default=(),
        description=(
            "Slack user ids (`U…`) pinged by an alert (an agent failed or stalled, a limit "
            "was reached) when no operator on Slack started the agent it is about."
        ),
    )
    usergroups_max_age: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description=(
            "Seconds a reading of the workspace's user groups is used for before a "
            "person's message, reaction or click is judged on a new one (`usergroups.list`); "
            "a change Slack tells is read at once. `0`: read before every one."
        ),
    )
    api_base: str = Field(
        default="https://slack.com/api/",
        description=f"Slack's Web API base URL. Only for tests; `{API_BASE_ENV}` overrides it.",
    )

    @field_validator("channel_id", mode="before")
    @classmethod
    def _channel(cls, value: object) -> str:
        return channel_id(value)

    @field_validator("on_call", mode="before")
    @classmethod
    def _on_call(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"expected a list of Slack user ids, got {shown(value)}")
        return tuple(user_id(each) for each in value)

    @field_validator("command_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return check_prefix(value)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        try:
            split_listen(value)
        except ValueError as exc:
            raise PydanticCustomError("slack_listen", "{problem}", {"problem": str(exc)}) from None
        return value

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        if not _HTTP.fullmatch(value):
            raise ValueError(f"expected an http:// or https:// URL, got {shown(value)}")
        return value.rstrip("/") + "/"

    @model_validator(mode="after")
    def _mode_needs(self) -> SlackConfig:
        if self.mode == "socket" and self.app_token_env is None:
            raise PydanticCustomError(
                "slack_app_token",
                "socket mode needs `app_token_env`: the variable holding the app-level token "
                "(xapp-…, made under Basic Information → App-Level Tokens with "
                "connections:write), e.g. app_token_env: SLACK_APP_TOKEN",
            )
        if self.mode == "http" and self.signing_secret_env is None:
            raise PydanticCustomError(
                "slack_signing_secret",
                "http mode needs `signing_secret_env`: the variable holding the app's signing "
                "secret (Basic Information → App Credentials), e.g. "
                "signing_secret_env: SLACK_SIGNING_SECRET",
            )
        return self

    def host_port(self) -> tuple[str, int]:
        """Where http mode listens."""
        return split_listen(self.listen)

    def api_url(self, environ: Mapping[str, str]) -> str:
        """The Web API base: ``api_base``, or :data:`API_BASE_ENV` when set."""
        return api_base_of(self, environ)


def token_problems(config: SlackConfig, environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the tokens and secret ``config`` names in ``environ``: each one
    unset, or a token with the other kind's prefix (named by its variable and the prefix
    expected, never shown). Empty when all is well."""
    wanted: list[tuple[str, str, str | None, str]] = [
        ("bot_token_env", config.bot_token_env, BOT_TOKEN_PREFIX, "the bot token"),
    ]
    if config.mode == "socket" and config.app_token_env is not None:
        wanted.append(
            ("app_token_env", config.app_token_env, APP_TOKEN_PREFIX, "the app-level token")
        )
    if config.mode == "http" and config.signing_secret_env is not None:
        wanted.append(("signing_secret_env", config.signing_secret_env, None, "the signing secret"))
    problems: list[str] = []
    for field, variable, prefix, what in wanted:
        value = environ.get(variable, "").strip()
        where = f"{variable} (connectors.slack.{field})"
        if not value:
            problems.append(f"slack: the environment variable {where} is not set: set it to {what}")
        elif prefix is not None and not value.startswith(prefix):
            other = APP_TOKEN_PREFIX if prefix == BOT_TOKEN_PREFIX else BOT_TOKEN_PREFIX
            swapped = " (it holds the other token: swap them)" if value.startswith(other) else ""
            problems.append(
                f"slack: {where} must hold {what}, which starts {prefix}; its value does "
                f"not{swapped}"
            )
    return problems
