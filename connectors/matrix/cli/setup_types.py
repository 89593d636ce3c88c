"""What ``fleetwarden matrix setup`` is asked for, the secrets it reads, what it reports.

FleetwardenError
├── SetupUsageError        bad flags or a missing environment variable (exit 2)
└── ConnectorError
    └── SetupRefused       the homeserver refused a step or was unreachable (exit 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from connectors.errors import ConnectorError
from fleet.errors import FleetwardenError

DEFAULT_PASSWORD_ENV = "FLEETWARDEN_MATRIX_PASSWORD"

Registration = Literal["registered", "existing", "not registered"]
RoomOutcome = Literal["created", "existing"]
InviteOutcome = Literal["invited", "already invited", "already joined"]
RateLimit = Literal["lifted", "already lifted", "not changed"]


class SetupUsageError(FleetwardenError):
    """Bad flags, or an environment variable they name is unset."""


class SetupRefused(ConnectorError):
    """The homeserver refused a step (``errcode`` says how) or could not be reached.

    ``bot_registered`` is true when this run had already created the bot's account, so a
    generated password must still be shown: the account exists with it now.
    """

    def __init__(self, message: str, errcode: str = "") -> None:
        super().__init__(message)
        self.errcode = errcode
        self.bot_registered = False


@dataclass(frozen=True)
class SetupRequest:
    """What the operator asked for, checked. Secrets are named here, not held."""

    homeserver: str
    bot_localpart: str
    bot_user_id: str | None  # when --bot-user was a full user id
    bot_password_env: str | None
    registration_secret_env: str | None = None
    admin_token_env: str | None = None
    operator: str | None = None  # an existing user, only invited
    operator_localpart: str | None = None  # a user to register, then invite
    operator_password_env: str | None = None
    room_alias: str = "fleetwarden"
    room_name: str = "Fleetwarden"


@dataclass(frozen=True)
class Credentials:
    """The secret values, read from the environment (or generated)."""

    bot_password: str = field(repr=False)
    password_generated: bool
    registration_secret: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    operator_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SetupResult:
    """What exists on the homeserver now, and what this run did about each part."""

    homeserver: str
    bot_user_id: str
    bot: Registration
    password_env: str
    room_alias: str
    room_id: str
    room: RoomOutcome
    rate_limit: RateLimit
    operator_user_id: str | None = None
    operator: Registration | None = None
    invite: InviteOutcome | None = None
    generated_password: str | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
