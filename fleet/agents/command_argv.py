"""The ``argv`` of an agent entry: the command line the ``command`` runtime runs, program
first and never through a shell — required with that runtime, refused with any other, each
refusal naming the agent and the fix; an agent that takes ``command`` from
``defaults.runtime`` is held to it when the config is loaded.
"""

from __future__ import annotations

from pydantic_core import PydanticCustomError

COMMAND_RUNTIME = "command"
"""The runtime that runs an entry's own ``argv`` (the only one that takes ``argv``)."""

ARGV_HELP = (
    f"The command line of the `{COMMAND_RUNTIME}` runtime, program first "
    "(`[python3, -m, mybot]`); never run through a shell. Required with runtime "
    f"`{COMMAND_RUNTIME}`, refused with any other."
)


def check_argv(
    value: tuple[str, ...] | None, runtime: str | None, name: object
) -> tuple[str, ...] | None:
    """``value``, the ``argv`` of the entry ``name`` whose own ``runtime`` is given
    (``None``: not set there), when that runtime takes it."""
    who = f"agent {name!r}" if isinstance(name, str) else "this agent"
    if runtime == COMMAND_RUNTIME:
        if not value:
            raise PydanticCustomError(
                "argv_missing",
                f"{who} has runtime '{COMMAND_RUNTIME}', which needs argv: the command "
                "line to run, as a non-empty list of strings (argv: [python3, -m, mybot])",
            )
        if not value[0].strip():
            raise PydanticCustomError(
                "argv_program", f"{who}: argv[0], the program to run, must not be empty"
            )
    elif value is not None:
        shown = f"is {runtime!r}" if runtime is not None else "is not set here"
        raise PydanticCustomError(
            "argv_forbidden",
            f"{who}: argv is only for runtime '{COMMAND_RUNTIME}', and its runtime "
            f"{shown}; set runtime: {COMMAND_RUNTIME} or remove argv",
        )
    return value
