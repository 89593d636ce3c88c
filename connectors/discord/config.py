"""The Discord connector's settings: the ``connectors.discord`` section of the config file."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from connectors.inbox import check_prefix
from fleet.schema import EnvVarName

API_BASE_ENV = "FLEETWARDEN_DISCORD_API_BASE"
"""Overrides ``api_base`` when set (tests point the connector at a fake Discord with it)."""
GATEWAY_URL_ENV = "FLEETWARDEN_DISCORD_GATEWAY_URL"
"""Overrides ``gateway_url`` when set."""

_SNOWFLAKE = re.compile(r"[1-9][0-9]{5,19}")
_HTTP = re.compile(r"https?://[^\s/]+(/\S*)?")
_SLASH = re.compile(r"[-_a-z0-9]{1,32}")
_WS = re.compile(r"wss?://[^\s/]+(/\S*)?")

AutoArchive = Literal[60, 1440, 4320, 10080]


def snowflake(value: object, what: str) -> int:
    """A Discord id given as a string or number, as an int; ``ValueError`` naming ``what``."""
    text = str(value).strip()
    if isinstance(value, bool) or not _SNOWFLAKE.fullmatch(text):
        raise ValueError(
            f"expected a Discord {what} id (a number like 1234567890123456789; in Discord, "
            f"turn on Developer Mode and use Copy ID), got {value!r}"
        )
    return int(text)


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL (trailing slash dropped); else ``ValueError``."""
    if not _HTTP.fullmatch(value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def ws_url(value: str) -> str:
    """``value`` if it is a ws(s) URL; else ``ValueError``."""
    if not _WS.fullmatch(value):
        raise ValueError(f"expected a ws:// or wss:// URL, got {value!r}")
    return value


class DiscordConfig(BaseModel):
    """A Discord bot serving one control channel of one server, one thread per agent.

    Operators are listed by Discord user id in the top-level `operators`, or by role as
    `role:<role id>` (everyone with that role). The bot needs the Message Content intent;
    docs/discord.md walks through creating the bot and inviting it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        strict=True,
        description="Run the Discord connector. `false` keeps the section but turns it off.",
    )
    token_env: EnvVarName = Field(
        description="The environment variable holding the bot's token (never the token itself).",
    )
    guild_id: int = Field(
        description='The server (guild) id, in quotes: `"1234567890123456789"`.',
    )
    channel_id: int = Field(
        description=(
            "The control channel's id, in quotes. Commands work here and in the agents' "
            "threads, which are opened under it; fleet-wide notices are posted here."
        ),
    )
    command_prefix: str | None = Field(
        default=None,
        description=(
            "The command prefix on Discord. Default: the top-level `command_prefix` (`!`). "
            "Mentioning the bot works too."
        ),
    )
    slash_command: str | None = Field(
        default="fleet",
        description=(
            "The server's slash command that runs a Fleetwarden command, typed as after "
            "the prefix: `/fleet command: ps`. `null` registers none (needs the "
            "`applications.commands` scope in the invite)."
        ),
    )
    thread_auto_archive_minutes: AutoArchive = Field(
        default=1440,
        description=(
            "After how many idle minutes Discord archives an agent's thread: 60, 1440 (a "
            "day), 4320 or 10080. Fleetwarden unarchives a thread when it posts there."
        ),
    )
    catch_up_minutes: int = Field(
        default=15,
        ge=0,
        le=1440,
        strict=True,
        description=(
            "At start, and after a gateway session that could not be resumed, answer "
            "commands written in the last this many minutes while Fleetwarden was not "
            "connected (each message is answered once, ever); 0: none."
        ),
    )
    on_call: tuple[int, ...] = Field(
        default=(),
        description=(
            "Discord user ids, in quotes, pinged by an alert (an agent failed or stalled, a "
            "limit was reached) when no operator on Discord started the agent it is about."
        ),
    )
    api_base: str = Field(
        default="https://discord.com/api/v10",
        description=(
            f"Discord's REST API base URL. Only for tests; `{API_BASE_ENV}` overrides it."
        ),
    )
    gateway_url: str = Field(
        default="wss://gateway.discord.gg/",
        description=(f"Discord's gateway URL. Only for tests; `{GATEWAY_URL_ENV}` overrides it."),
    )
    guild_ready_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "How long to wait for the server's data after connecting before serving "
            "(more than 0, at most 60)."
        ),
    )

    @field_validator("guild_id", "channel_id", mode="before")
    @classmethod
    def _snowflake(cls, value: object, info: ValidationInfo) -> int:
        return snowflake(value, "server" if info.field_name == "guild_id" else "channel")

    @field_validator("on_call", mode="before")
    @classmethod
    def _on_call(cls, value: object) -> tuple[int, ...]:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"expected a list of Discord user ids, got {value!r}")
        return tuple(snowflake(each, "user") for each in value)

    @field_validator("command_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return check_prefix(value)

    @field_validator("slash_command")
    @classmethod
    def _slash_name(cls, value: str | None) -> str | None:
        if value is not None and not _SLASH.fullmatch(value):
            raise ValueError(
                "a slash command's name is 1-32 lowercase letters, digits, - or _, "
                f"e.g. fleet; got {value!r}"
            )
        return value

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        return http_url(value)

    @field_validator("gateway_url")
    @classmethod
    def _gateway(cls, value: str) -> str:
        return ws_url(value)
