"""Tests for bot.commands.family and bot.commands.registry: each command bound to exactly one
handler, with the table's own spec, checked when the classes and the registry are made."""

from __future__ import annotations

import pytest

from bot.commands import registry
from bot.commands.family import Family, command
from bot.commands.handlers.agents.levers import Levers
from bot.commands.handlers.agents.specs import STOP
from bot.commands.parsing.grammar import ArgSpec, CommandSpec, Grammar
from bot.commands.routing.request import Request
from bot.commands.specs import COMMANDS

PING = CommandSpec(name="ping", summary="Answer pong.")
ECHO_LOUD = CommandSpec(name="loud", summary="Echo it loudly.", args=(ArgSpec("TEXT", "What."),))
ECHO = CommandSpec(name="echo", summary="Echo it.", subcommands=(ECHO_LOUD,))
TABLE = (PING, ECHO)


class Pings(Family):
    @command(PING)
    async def ping(self, req: Request) -> str:
        return "pong"


class Echoes(Family):
    @command(ECHO)
    async def echo(self, req: Request) -> str:
        return "echo"

    @command(ECHO_LOUD, under=ECHO)
    async def loud(self, req: Request) -> str:
        return "ECHO"


def test_a_family_collects_the_commands_its_methods_are_bound_to() -> None:
    """Bound methods are found when the class is made; its table maps full names to them."""
    assert {name: b.spec for name, b in Echoes.bindings.items()} == {
        "echo": ECHO,
        "echo loud": ECHO_LOUD,
    }
    echoes = Echoes()
    assert echoes.table() == {"echo": echoes.echo, "echo loud": echoes.loud}


def test_one_method_may_handle_several_commands() -> None:
    """Stacked bindings put one method under several names (`schedule` and `schedule list`)."""

    class Both(Family):
        @command(ECHO)
        @command(ECHO_LOUD, under=ECHO)
        async def echo(self, req: Request) -> str:
            return "echo"

    both = Both()
    assert both.table() == {"echo loud": both.echo, "echo": both.echo}


def test_a_command_bound_twice_in_one_family_fails_when_the_class_is_made() -> None:
    """Two methods of one class bound to the same command: the class definition raises."""
    with pytest.raises(TypeError, match="binds 'ping' twice: first and second"):

        class Twice(Family):
            @command(PING)
            async def first(self, req: Request) -> str:
                return "1"

            @command(PING)
            async def second(self, req: Request) -> str:
                return "2"


def test_a_subcommand_bound_under_the_wrong_parent_fails_at_once() -> None:
    """``under`` must be the command the spec is a subcommand of."""
    with pytest.raises(TypeError, match="'loud' is not a subcommand of 'ping'"):
        command(ECHO_LOUD, under=PING)


def test_families_that_bind_the_table_exactly_pass_the_check() -> None:
    """Every command bound once: the check says which family handles each, in table order."""
    assert registry.check(TABLE, (Pings, Echoes)) == {
        "ping": Pings,
        "echo": Echoes,
        "echo loud": Echoes,
    }


def test_a_command_bound_by_two_families_fails_the_check() -> None:
    """Which of two handlers would win is never left to the order of a merge."""

    class MorePings(Family):
        @command(PING)
        async def ping(self, req: Request) -> str:
            return "pong too"

    with pytest.raises(ValueError, match=r"'ping' is bound twice: by Pings and by .*MorePings"):
        registry.check(TABLE, (Pings, Echoes, MorePings))


def test_a_spec_without_a_handler_fails_the_check() -> None:
    """A command in the table that no family binds is named."""
    with pytest.raises(ValueError, match="commands without a handler: echo, echo loud"):
        registry.check(TABLE, (Pings,))


def test_a_handler_without_a_spec_fails_the_check() -> None:
    """A method bound to a command the table does not have is named."""
    unlisted = CommandSpec(name="pong", summary="Answer ping.")

    class Pongs(Family):
        @command(unlisted)
        async def pong(self, req: Request) -> str:
            return "ping"

    with pytest.raises(ValueError, match=r"Pongs\.pong handles 'pong', which is not"):
        registry.check(TABLE, (Pings, Echoes, Pongs))


def test_a_handler_bound_to_another_spec_of_the_same_name_fails_the_check() -> None:
    """The bound spec must be the table's own, not a look-alike with other grammar or role."""
    stray = CommandSpec(name="ping", summary="Answer pong.", control=True)

    class Strays(Family):
        @command(stray)
        async def ping(self, req: Request) -> str:
            return "pong"

    with pytest.raises(ValueError, match=r"Strays\.ping handles 'ping', which is not"):
        registry.check(TABLE, (Strays, Echoes))


def test_the_registry_handles_every_command_of_the_table() -> None:
    """The real families bind exactly the commands the grammar knows."""
    assert tuple(registry.HANDLED_BY) == Grammar(COMMANDS).command_names()
    assert set(registry.HANDLED_BY.values()) == set(registry.FAMILIES)


def test_stop_belongs_to_the_levers_alone() -> None:
    """`stop` (with `stop all`) is the levers'; no other family binds it."""
    assert registry.HANDLED_BY["stop"] is Levers
    assert Levers.bindings["stop"].spec is STOP


def test_the_routers_table_takes_one_instance_of_each_family() -> None:
    """One instance of each family gives a handler for every command; a missing or an
    extra family is refused."""
    made = [family.__new__(family) for family in registry.FAMILIES]
    assert set(registry.handlers(made)) == set(Grammar(COMMANDS).command_names())
    with pytest.raises(ValueError, match="want one instance of each command family"):
        registry.handlers(made[1:])
    with pytest.raises(ValueError, match="want one instance of each command family"):
        registry.handlers([*made, made[0]])
