"""What a command is about: the agent it names, or its mission, as the router holds news
for it and reads a typo in it."""

from __future__ import annotations

from bot.commands.parsing.grammar import Command
from fleet.names import ALL_AGENTS, BUDGET_WORD, is_agent_name


def held_for(command: Command) -> tuple[str, ...]:
    """What news waits for ``command``'s answer: the agent it names, or its mission
    (``mission:NAME``, as a pipeline's notices name theirs)."""
    name = command.args.get("NAME")
    if command.name.split(" ")[0] == "mission" and name is not None:
        return (f"mission:{name}",)
    return agents_named(command)


def agents_named(command: Command) -> tuple[str, ...]:
    """The agent ``command`` is about, if it names one."""
    name = command.args.get("NAME")
    return (name,) if name is not None and is_agent_name(name) else ()


def agent_arg(command: Command) -> str | None:
    """The agent name ``command`` was given where its spec wants an existing agent."""
    for arg in command.spec.args:
        if arg.agent:
            name = command.args.get(arg.name)
            if name is not None and name not in (ALL_AGENTS, BUDGET_WORD):
                return name
    return None
