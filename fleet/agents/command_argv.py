"""The ``argv`` of an agent entry: the command line the ``command`` runtime runs, program
first and never through a shell — required with that runtime, refused with any other, each
refusal naming the agent and the fix; an agent that takes ``command`` from
``defaults.runtime`` is held to it when the config is loaded.
"""

from __future__ import annotations

from typing import Literal

from pydantic_core import PydanticCustomError

ArgvFault = Literal["argv_missing", "argv_program", "argv_forbidden"]
"""What is wrong with an entry's ``argv`` beside its own ``runtime``: none given for the
``command`` runtime, an empty program, or one given to another runtime."""

COMMAND_RUNTIME = "command"
"""The runtime that runs an entry's own ``argv`` (the only one that takes ``argv``)."""

ARGV_HELP = (
    f"The command line of the `{COMMAND_RUNTIME}` runtime, program first "
    "(`[python3, -m, mybot]`); never run through a shell. Required with runtime "
    f"`{COMMAND_RUNTIME}`, refused with any other."
)


def argv_fault(value: object, runtime: object) -> ArgvFault | None:
    """What is wrong with ``value``, the ``argv`` of an entry whose own ``runtime`` is
    given (``None``: not set there), if anything: the one rule the config's check and a
    roster edit's both apply."""
    if runtime == COMMAND_RUNTIME:
        if not value:
            return "argv_missing"
        if isinstance(value, list | tuple) and isinstance(value[0], str) and not value[0].strip():
            return "argv_program"
        return None
    return "argv_forbidden" if value is not None else None


def check_argv(
    value: tuple[str, ...] | None, runtime: str | None, name: object
) -> tuple[str, ...] | None:
    """``value``, the ``argv`` of the entry ``name`` whose own ``runtime`` is given
    (``None``: not set there), when that runtime takes it."""
    who = f"agent {name!r}" if isinstance(name, str) else "this agent"
    fault = argv_fault(value, runtime)
    if fault == "argv_missing":
        raise PydanticCustomError(
            fault,
            f"{who} has runtime '{COMMAND_RUNTIME}', which needs argv: the command "
            "line to run, as a non-empty list of strings (argv: [python3, -m, mybot])",
        )
    if fault == "argv_program":
        raise PydanticCustomError(fault, f"{who}: argv[0], the program to run, must not be empty")
    if fault == "argv_forbidden":
        shown = f"is {runtime!r}" if runtime is not None else "is not set here"
        raise PydanticCustomError(
            fault,
            f"{who}: argv is only for runtime '{COMMAND_RUNTIME}', and its runtime "
            f"{shown}; set runtime: {COMMAND_RUNTIME} or remove argv",
        )
    return value
