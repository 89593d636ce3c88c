"""The config file's chat sections: the connectors to run (:class:`ConnectorsSection`, each
connector's settings beside the connector) and the people who may talk to the bot
(:class:`Operator`), and who a command typed in a shell comes from (:class:`ShellSection`).
:mod:`bot.config.schema` holds them in the whole file's schema."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connectors.console.config import ConsoleConfig, Role
from connectors.discord.config import DiscordConfig, snowflake
from connectors.health import DOWN_AFTER_SECONDS
from connectors.matrix.config import MatrixConfig
from connectors.slack.config import SlackConfig
from fleet.schema import check_known

_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+")
_USERGROUP = re.compile(r"usergroup:S[A-Z0-9]{6,20}")


class Operator(BaseModel):
    """A person allowed to talk to the bot, and what they may do.

    Messages from anyone not listed are ignored, never answered. The console user needs
    no entry: it gets `connectors.console.role` unless an entry names its `user_id`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        min_length=1,
        description=(
            'The person\'s user id on the connector: a Matrix user id ("@alice:example.org"), '
            'a Discord user id (the number, in quotes), or the console\'s `user_id` ("console"). '
            'On Discord, `role:<role id>` names everyone with that role ("role:1234567890123"). '
            'On Slack, a user id ("U0123ABCD"), or `usergroup:<group id>` for everyone in '
            'that user group ("usergroup:S0123ABCD").'
        ),
    )
    role: Role = Field(
        description=(
            "What they may do: `viewer` (read-only commands), `operator` (also start, stop "
            "and talk to agents), `admin` (also budgets, bursts and roster reloads)."
        ),
    )
    connector: str | None = Field(
        default=None,
        description=(
            "Match this id only on this connector (e.g. `console`). Default: on every connector."
        ),
    )

    git_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description=(
            "Their name as git writes it: the commits of a run they spawned (the agent's own, "
            "through a hook in its checkout, and its `wip`) and a `merge` they ask for carry "
            "`Co-authored-by: NAME <EMAIL>`. Without it a chat user is named by their id at "
            "an address under `.invalid` (the console's user: no one)."
        ),
    )
    git_email: str | None = Field(
        default=None,
        description="Their email address for `Co-authored-by:` (with `git_name`).",
    )

    @field_validator("git_name", "git_email")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("<" in value or ">" in value or not value.isprintable()):
            raise PydanticCustomError(
                "git_identity", "must be one line, without '<' or '>' (git writes those)"
            )
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> Operator:
        if (self.git_name is None) != (self.git_email is None):
            raise PydanticCustomError(
                "git_identity", "give git_name and git_email together, or neither"
            )
        if self.git_email is not None and not _EMAIL.fullmatch(self.git_email):
            raise PydanticCustomError(
                "git_email", "git_email must look like an address: NAME@DOMAIN, no spaces"
            )
        return self

    @property
    def co_author(self) -> str | None:
        """``NAME <EMAIL>`` for a ``Co-authored-by:`` trailer, when the entry gives both."""
        if self.git_name is None or self.git_email is None:
            return None
        return f"{self.git_name} <{self.git_email}>"

    @field_validator("connector")
    @classmethod
    def _known_connector(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = tuple(n for n in ConnectorsSection.model_fields if n != "down_after_seconds")
        return check_known("connector", value, (*names, "shell"))  # the control socket's

    @field_validator("id")
    @classmethod
    def _role_id(cls, value: str) -> str:
        if value.startswith("role:"):
            return f"role:{snowflake(value.removeprefix('role:'), 'role')}"
        if value.startswith(("xox", "xapp-")):
            raise PydanticCustomError(
                "secret_in_id",
                "this is a Slack token, not a person's id: tokens go in environment variables "
                "(connectors.slack.bot_token_env); write the person's user id (U…) here "
                "(the value is not shown)",
            )
        if value.startswith("usergroup:") and not _USERGROUP.fullmatch(value):
            raise PydanticCustomError(
                "usergroup_id",
                "expected usergroup: and a Slack user group's id (like usergroup:S0123ABCD), "
                "got {value!r}",
                {"value": value},
            )
        return value


class ConnectorsSection(BaseModel):
    """The chat connectors to run, one key per connector.

    Only the connectors listed here run. Without a `connectors` key at all, the console
    runs; with one, a deployment (a service with no terminal) can leave the console out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    console: ConsoleConfig | None = Field(
        default=None,
        description=(
            "The terminal: commands on stdin, replies on stdout. An empty `console:` runs it "
            "with the defaults."
        ),
    )

    matrix: MatrixConfig | None = Field(
        default=None,
        description="A Matrix homeserver account and the rooms it serves (see the Matrix section).",
    )

    discord: DiscordConfig | None = Field(
        default=None,
        description=(
            "A Discord bot serving one control channel, one thread per agent (see the "
            "Discord section)."
        ),
    )

    slack: SlackConfig | None = Field(
        default=None,
        description=(
            "A Slack app serving one control channel, one thread per agent (see docs/slack.md)."
        ),
    )

    down_after_seconds: float = Field(
        default=DOWN_AFTER_SECONDS,
        gt=0,
        le=86_400,
        description=(
            "How long a connector must stay unable to reach its service before the other "
            "connectors' rooms are told it is down (and, once it has been back as long, told "
            "that once). "
            "Shorter outages, a sync failing a few times in a row, tell nobody."
        ),
    )

    @field_validator("console", mode="before")
    @classmethod
    def _empty_means_defaults(cls, value: object) -> object:
        return {} if value is None else value


class ShellSection(BaseModel):
    """Commands from a shell on this machine (``fleetwarden spawn …``): the user who owns
    the state dir types them as this operator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_: str = Field(
        alias="as",
        min_length=1,
        description=(
            "The operator a shell command comes from: an `operators:` id (one listed for "
            'every connector, or with `connector: shell`), e.g. "@alice:example.org". Its '
            "role is looked up as each command runs; the command is audited with source "
            "`shell`. Only the user Fleetwarden runs as may use the control socket."
        ),
    )
