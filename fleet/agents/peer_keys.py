"""The keys of a roster entry that say how its agent works with its peers: what it is for
(``role:``), the agents it may message (``talks_to:``), whether a message to it while it
does not run waits for its next run or starts one (``wake:``), and how many messages it may
send an hour (``messages_per_hour:``).

:class:`PeerKeys` is a base of :class:`~fleet.agents.roster.AgentEntry`, and
:meth:`PeerKeys.with_peers` puts its keys on the entry's :class:`~fleet.model.AgentSpec`.
What a key needs of the whole roster — each name in ``talks_to`` an agent of it, never the
entry itself — is checked across entries (:mod:`bot.config.checks.peers`). The help texts
and bounds here are also those of the ``defaults:`` keys of the same names.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from fleet.model import AgentSpec
from fleet.names import AGENT_NAME_PATTERN, AgentName, is_agent_name

WakeName = Literal["wait", "start"]
"""How ``wake`` is written: a message to an agent that does not run waits for its next run
(``wait``) or starts one (``start``)."""

WAKE_WORDS: tuple[str, ...] = get_args(WakeName)

MAX_ROLE_LENGTH = 200
"""The longest ``role:`` (what the agent is for, one line) an entry may have."""

MAX_MESSAGES_PER_HOUR = 3600
DEFAULT_MESSAGE_CHARS = 4000
MESSAGE_CHARS_BOUNDS = (100, 16000)
"""The longest a message may be set to is the most a frame carries whole
(:data:`fleet.peers.framing.MAX_FRAMED`): a longer one would be accepted, then cut."""
DEFAULT_MESSAGE_QUEUE = 20
MESSAGE_QUEUE_BOUNDS = (1, 1000)

ROLE_HELP = (
    "What the agent is for, in one line its peers are told (1-200 printable characters), "
    "e.g. `reviews the coders' pull requests`. Given with its peers when it starts. "
    "Default: none. Its class in the team is `class:`."
)
TALKS_TO_HELP = (
    "The agents it may message (`fw-msg send`) and hand work to (`fw-msg task`): names of "
    "other entries of the roster, each once. It starts knowing them (its comms block and "
    "`$HOME/.fleetwarden/PEERS.md`). Default: none."
)
WAKE_HELP = (
    "What a message to the agent does while it does not run: `wait` (it is delivered when "
    "its next run starts) or `start` (it starts a run)."
)
MESSAGES_PER_HOUR_HELP = (
    "How many messages the agent may send its peers in an hour (1 to 3600); past it a "
    "message is refused, saying when it may send again."
)
MESSAGE_CHARS_HELP = (
    "The longest message an agent may send a peer, in characters (100 to 16000); a longer "
    "one is refused, saying both lengths. Default: 4000."
)
MESSAGE_QUEUE_HELP = (
    "How many messages may wait for one agent to take them (1 to 1000); past it a message "
    "to that agent is refused until it takes some. Default: 20."
)


class PeerDefaults(Protocol):
    """The ``defaults:`` an entry's unset peer keys take."""

    @property
    def wake(self) -> str: ...

    @property
    def messages_per_hour(self) -> int: ...


class PeerKeys(BaseModel):
    """How an agent of the roster works with its peers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purpose: str | None = Field(default=None, alias="role", description=ROLE_HELP)
    talks_to: tuple[AgentName, ...] = Field(default=(), description=TALKS_TO_HELP)
    wake: WakeName | None = Field(
        default=None, description=WAKE_HELP + " Default: `defaults.wake`."
    )
    messages_per_hour: int | None = Field(
        default=None,
        ge=1,
        le=MAX_MESSAGES_PER_HOUR,
        strict=True,
        description=MESSAGES_PER_HOUR_HELP + " Default: `defaults.messages_per_hour`.",
    )

    @field_validator("purpose")
    @classmethod
    def _check_purpose(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise PydanticCustomError(
                "role_empty",
                "must not be empty: say in one line what the agent is for, or leave `role` out",
            )
        if len(value) > MAX_ROLE_LENGTH:
            raise PydanticCustomError(
                "role_long",
                f"must be at most {MAX_ROLE_LENGTH} characters, found {len(value)}: say what "
                "the agent is for in one short line",
            )
        if any(not char.isprintable() for char in value):
            raise PydanticCustomError(
                "role_line",
                "must be one line of text, without control characters (a longer brief goes "
                "in `prompt`)",
            )
        return value

    @field_validator("talks_to")
    @classmethod
    def _check_talks_to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for name in value:
            if not is_agent_name(name):
                raise PydanticCustomError(
                    "talks_to_name",
                    f"{name[:40]!r} is not an agent's name ({AGENT_NAME_PATTERN}): list the "
                    "names of other agents of the roster, e.g. [reviewer, tester]",
                )
            if name in seen:
                raise PydanticCustomError(
                    "talks_to_twice",
                    f"{name!r} is listed twice: list each peer once",
                )
            seen.add(name)
        return value

    def with_peers(self, spec: AgentSpec, defaults: PeerDefaults) -> AgentSpec:
        """``spec`` with these keys, unset ones taken from ``defaults``."""
        return replace(
            spec,
            purpose=self.purpose,
            talks_to=self.talks_to,
            wake=self.wake if self.wake is not None else defaults.wake,
            messages_per_hour=(
                self.messages_per_hour
                if self.messages_per_hour is not None
                else defaults.messages_per_hour
            ),
        )
