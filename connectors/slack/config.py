"""The Slack connector's settings: the ``connectors.slack`` section of the config file.

Ids are checked by their shape (a channel ``C…``/``G…``, a user ``U…``/``W…``), and the
tokens by their prefix once read from the environment (:func:`check_tokens`): a bot token
starts ``xoxb-``, an app-level token ``xapp-``. A refusal names the variable and the
prefix expected, never the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.inbox import check_prefix
from fleet.schema import EnvVarName

API_BASE_ENV = "FLEETWARDEN_SLACK_API_BASE"
"""Overrides ``api_base`` when set (tests point the connector at a fake Slack with it)."""
BOT_PREFIX = "xoxb-"
APP_PREFIX = "xapp-"

_CHANNEL = re.compile(r"[CG][A-Z0-9]{6,20}")
_USER = re.compile(r"[UW][A-Z0-9]{6,20}")
_HTTP = re.compile(r"https?://[^\s/]+(/\S*)?")
_LISTEN = re.compile(r"(?P<host>[^\s:]+):(?P<port>[0-9]{1,5})")


def channel_id(value: object) -> str:
    """``value`` if it is a Slack channel id; else ``ValueError`` saying where to find one."""
    text = str(value).strip() if isinstance(value, str) else ""
    if not _CHANNEL.fullmatch(text):
        raise ValueError(
            "expected a Slack channel id (like C0123456789; in Slack, open the channel's "
            f"details: the id is at the bottom of the About tab), got {value!r}"
        )
    return text


def user_id(value: object) -> str:
    """``value`` if it is a Slack user id; else ``ValueError`` saying where to find one."""
    text = str(value).strip() if isinstance(value, str) else ""
    if not _USER.fullmatch(text):
        raise ValueError(
            "expected a Slack user id (like U0123ABCD; in Slack, open the person's profile, "
            f"⋮ → Copy member ID), got {value!r}"
        )
    return text


def listen_address(value: str) -> tuple[str, int]:
    """``host:port`` of a loopback address, as (host, port); else ``ValueError``."""
    found = _LISTEN.fullmatch(value.strip())
    if found is None:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:3100, got {value!r}")
    host, port = found["host"], int(found["port"])
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"{host} is not a loopback address: listen on 127.0.0.1 and put a reverse proxy "
            "with TLS in front for Slack's requests"
        )
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535")
    return host, port


class SlackConfig(BaseModel):
    """A Slack app serving one control channel of one workspace, one thread per agent.

    Operators are listed by Slack user id in the top-level `operators`, or by user group
    as `usergroup:<group id>` (everyone in it). docs/slack.md has the app's manifest.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        strict=True,
        description="Run the Slack connector. `false` keeps the section but turns it off.",
    )
    bot_token_env: EnvVarName = Field(
        description=(
            "The environment variable holding the bot token (`xoxb-…`, OAuth & Permissions "
            "→ Bot User OAuth Token), never the token itself."
        ),
    )
    app_token_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding the app-level token (`xapp-…`, Basic "
            "Information → App-Level Tokens, scope `connections:write`). Needed in socket mode."
        ),
    )
    mode: Literal["socket", "http"] = Field(
        default="socket",
        description=(
            "`socket`: Socket Mode, no public URL needed. `http`: Slack POSTs events to "
            "`listen` (behind your HTTPS reverse proxy), signed with the signing secret."
        ),
    )
    signing_secret_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding the app's signing secret (Basic Information "
            "→ App Credentials). Needed in http mode."
        ),
    )
    listen: str = Field(
        default="127.0.0.1:3100",
        description="http mode: the loopback HOST:PORT where Slack's requests arrive.",
    )
    channel_id: str = Field(
        description=(
            "The control channel's id (C…). Commands work here and in the agents' threads, "
            "which are opened in it; fleet-wide notices are posted here. Invite the app there."
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
            "Show each run's thread as a Slack agent session (working, waiting, idle, ended) "
            "with Slack's own Stop, where the workspace allows it; off by itself otherwise."
        ),
    )
    on_call: tuple[str, ...] = Field(
        default=(),
        description=(
            "Slack user ids pinged by an alert (an agent failed or stalled, a limit was "
            "reached) when no operator on Slack started the agent it is about."
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
            raise ValueError(f"expected a list of Slack user ids, got {value!r}")
        return tuple(user_id(each) for each in value)

    @field_validator("command_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return check_prefix(value)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        listen_address(value)
        return value.strip()

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        if not _HTTP.fullmatch(value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") + "/"

    @model_validator(mode="after")
    def _mode_needs(self) -> SlackConfig:
        if self.mode == "socket" and self.app_token_env is None:
            raise ValueError(
                "socket mode needs `app_token_env`: the variable holding the app-level token "
                "(xapp-…); or set `mode: http` with `signing_secret_env`"
            )
        if self.mode == "http" and self.signing_secret_env is None:
            raise ValueError(
                "http mode needs `signing_secret_env`: the variable holding the app's "
                "signing secret (Basic Information → App Credentials)"
            )
        return self

    def host_port(self) -> tuple[str, int]:
        """Where http mode listens."""
        return listen_address(self.listen)

    def api_url(self, environ: Mapping[str, str]) -> str:
        """The Web API base: ``api_base``, or :data:`API_BASE_ENV` when set."""
        override = environ.get(API_BASE_ENV, "").strip()
        return self._api_base(override) if override else self.api_base


def token_problems(config: SlackConfig, environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the tokens and secret ``config`` names in ``environ``: each one
    unset, or a token with the other kind's prefix (named by its variable and the prefix
    expected, never shown). Empty when all is well."""
    wanted: list[tuple[str, str, str | None, str]] = [
        ("bot_token_env", config.bot_token_env, BOT_PREFIX, "the bot token"),
    ]
    if config.mode == "socket" and config.app_token_env is not None:
        wanted.append(("app_token_env", config.app_token_env, APP_PREFIX, "the app-level token"))
    if config.mode == "http" and config.signing_secret_env is not None:
        wanted.append(("signing_secret_env", config.signing_secret_env, None, "the signing secret"))
    problems: list[str] = []
    for field, variable, prefix, what in wanted:
        value = environ.get(variable, "").strip()
        where = f"{variable} (connectors.slack.{field})"
        if not value:
            problems.append(f"slack: the environment variable {where} is not set: set it to {what}")
        elif prefix is not None and not value.startswith(prefix):
            other = APP_PREFIX if prefix == BOT_PREFIX else BOT_PREFIX
            swapped = " (it holds the other token: swap them)" if value.startswith(other) else ""
            problems.append(
                f"slack: {where} must hold {what}, which starts {prefix}; its value does "
                f"not{swapped}"
            )
    return problems
