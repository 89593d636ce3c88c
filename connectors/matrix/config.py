"""The Matrix connector's settings: the ``connectors.matrix`` section of the config file."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.inbox import check_prefix
from fleet.schema import EnvVarName

_USER_ID = re.compile(r"@[^:\s]+:\S+")
# Room ids of room version 12 (the default of Synapse 1.163) have no ":server" part.
_ROOM = re.compile(r"![^:\s]+(:\S+)?|#[^:\s]+:\S+")
_ROOM_ID = re.compile(r"![^:\s]+(:\S+)?")

AlertStyle = Literal["mention", "text", "notice"]
"""How an alert is posted in a room: ``mention`` (``m.text`` mentioning who should wake),
``text`` (``m.text``, no mention), ``notice`` (``m.notice``, which never notifies)."""


class MatrixConfig(BaseModel):
    """A bot account on a Matrix homeserver, serving the rooms listed.

    The bot logs in with an access token, or with a password (it then keeps the device
    id and token it got in the state dir and reuses them). Operators are listed by Matrix
    user id in the top-level `operators`. End-to-end encrypted rooms (Element's default)
    are served like any other: the bot's device keys live in the state dir.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        strict=True,
        description="Run the Matrix connector. `false` keeps the section but turns it off.",
    )
    homeserver: str = Field(
        description="The homeserver's client API base URL, e.g. `http://127.0.0.1:6167`.",
    )
    user_id: str = Field(
        description="The bot's Matrix user id, e.g. `@fleetwarden:example.org`.",
    )
    access_token_env: EnvVarName | None = Field(
        default=None,
        description="The environment variable holding the bot's access token.",
    )
    password_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding the bot's password (instead of a token). The "
            "device id and token from the login are kept in the state dir and reused."
        ),
    )
    device_name: str = Field(
        default="fleetwarden",
        min_length=1,
        description="The display name of the device a password login creates.",
    )
    rooms: tuple[str, ...] = Field(
        default=(),
        description=(
            "The rooms the bot serves, by id (`!abc:example.org`) or alias "
            "(`#ops:example.org`); it joins them at start. Rooms an operator invites it to "
            "are served too. Fleet-wide notices go to the first."
        ),
    )
    command_prefix: str | None = Field(
        default=None,
        description="The command prefix in Matrix rooms. Default: the top-level `command_prefix`.",
    )
    on_call: tuple[str, ...] = Field(
        default=(),
        description=(
            "Matrix user ids mentioned by an alert (an agent failed or stalled, a limit was "
            "reached) when no operator of this homeserver started the agent it is about."
        ),
    )
    alerts: dict[str, AlertStyle] = Field(
        default_factory=dict,
        description=(
            "How alerts are posted, per room id: `mention` (the default: an `m.text` "
            "mentioning the operator who started the agent, else `on_call`, so their "
            "client notifies), `text` (an `m.text`, no mention) or `notice` (an `m.notice`, "
            "which clients do not notify). Routine output is always `m.notice`."
        ),
    )
    sync_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=300,
        description="How long one long-poll sync waits for new events (more than 0, at most 300).",
    )

    encryption: Literal["on", "off", "required"] = Field(
        default="on",
        description=(
            "End-to-end encryption. `on`: serve encrypted and unencrypted rooms alike; "
            "`required`: serve encrypted rooms only; `off`: unencrypted rooms only (no "
            "device keys are made). A room the policy rules out gets one line saying why, "
            "then the bot leaves it."
        ),
    )
    trust: Literal["tofu", "verified"] = Field(
        default="tofu",
        description=(
            "Which devices get the bot's room keys and are obeyed in encrypted rooms. `tofu`: "
            "a user with a role is trusted the first time their master key (or, without "
            "cross-signing, a device) is seen, and the devices they signed follow; a changed "
            "master or device key is refused and announced; `verified`: only users (or "
            "devices) an admin verified with `fleetwarden matrix trust`. A device its owner "
            "did not sign, or a stranger's, never gets a key."
        ),
    )
    store_passphrase_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding a passphrase that encrypts the bot's crypto "
            "store (its keys are in the state dir, mode 600, either way). Changing it makes "
            "the store unreadable: reset the device as docs/matrix.md says."
        ),
    )
    key_wait_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description=(
            "How long the bot waits for the key of an encrypted message it cannot read "
            "(asking the sender's devices for it) before it says in the room whose message "
            "it could not read. A key the sender's client says it withheld is not waited "
            "for: the room is told at once why."
        ),
    )

    key_notices: Literal["clear", "encrypted"] | None = Field(
        default=None,
        description=(
            "How the bot posts, in an encrypted room, that it cannot read someone's message "
            "(their client withheld the key from its device, or the key never came) or that "
            "it refuses a device (unverified, unsigned by its owner, a changed identity): "
            "`clear` (unencrypted, so that a client which will not read the bot's encrypted "
            "messages — or a device that gets no keys — still shows it; the line holds only "
            "who and why) or `encrypted` (for "
            "the devices the bot shares keys with). Default: `clear`, or `encrypted` under "
            "`encryption: required`, which posts nothing in clear."
        ),
    )

    @property
    def notices_in_clear(self) -> bool:
        """Whether key notices go unencrypted in encrypted rooms."""
        if self.key_notices is None:
            return self.encryption != "required"
        return self.key_notices == "clear"

    @field_validator("homeserver")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, value: str) -> str:
        if not _USER_ID.fullmatch(value):
            raise ValueError(f"expected a Matrix user id like @bot:example.org, got {value!r}")
        return value

    @field_validator("rooms")
    @classmethod
    def _room_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for room in value:
            if not _ROOM.fullmatch(room):
                raise ValueError(
                    f"expected a room id like !abc:example.org or an alias like "
                    f"#ops:example.org, got {room!r}"
                )
        return value

    @field_validator("on_call")
    @classmethod
    def _on_call(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for user in value:
            if not _USER_ID.fullmatch(user):
                raise ValueError(f"expected Matrix user ids like @alice:example.org, got {user!r}")
        return value

    @field_validator("alerts")
    @classmethod
    def _alert_rooms(cls, value: dict[str, AlertStyle]) -> dict[str, AlertStyle]:
        for room in value:
            if not _ROOM_ID.fullmatch(room):
                raise ValueError(
                    f"alerts are set per room id like !abc:example.org (not an alias), got {room!r}"
                )
        return value

    def alert_style(self, room: str) -> AlertStyle:
        """How alerts are posted in ``room``."""
        return self.alerts.get(room, "mention")

    @field_validator("command_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return check_prefix(value)

    @model_validator(mode="after")
    def _clear_notices_allowed(self) -> MatrixConfig:
        if self.key_notices == "clear" and self.encryption == "required":
            raise ValueError(
                "key_notices: clear posts in clear, which encryption: required rules out; "
                "use key_notices: encrypted (or leave it unset)"
            )
        return self

    @model_validator(mode="after")
    def _one_credential(self) -> MatrixConfig:
        if (self.access_token_env is None) == (self.password_env is None):
            raise ValueError(
                "set exactly one of access_token_env or password_env (the name of the "
                "environment variable holding the bot's token or password)"
            )
        return self
