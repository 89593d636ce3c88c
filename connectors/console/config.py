"""The console connector's settings: the ``connectors.console`` section of the config file.

The console is the embedded terminal connector (commands on stdin, replies on stdout).
Without a config file it is the only connector; in a config file it runs only when listed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "operator", "viewer"]
"""What a person may do: ``viewer`` observes, ``operator`` also controls agents,
``admin`` also changes budgets, grants bursts and reloads the roster."""


class ConsoleConfig(BaseModel):
    """The terminal connector: read commands from stdin, write replies to stdout.

    Whoever types at the terminal is one user, ``user_id``, with ``role``. The
    command prefix is optional here: every line is addressed to the bot.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        strict=True,
        description="Run the console connector. `false` keeps the section but turns it off.",
    )
    user_id: str = Field(
        default="console",
        min_length=1,
        description=(
            "The user id the person at the terminal has: what `operators` entries and the "
            "audit log refer to."
        ),
    )
    role: Role = Field(
        default="admin",
        description=(
            "The console user's role when no `operators` entry names `user_id`: "
            "`admin`, `operator` or `viewer`."
        ),
    )
    prompt: str = Field(
        default="fleetwarden> ",
        description="The prompt printed before each command; shown only when stdin is a terminal.",
    )
