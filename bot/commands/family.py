"""Command families: classes whose handler methods are bound to their command specs.

A method decorated with :func:`command` handles the command its spec describes — the spec
carries the grammar, the role (``control``, ``admin_only``) and the help text. When a
:class:`Family` subclass is defined it collects its bound methods, and binding one command
twice in a class fails there and then. :mod:`bot.commands.registry` lists the families and
checks, at import, that together they handle exactly the command table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar, cast

from bot.commands.parsing.grammar import CommandSpec
from bot.commands.routing.request import Handler

H = TypeVar("H", bound=Callable[..., Any])

_BOUND = "bound_commands"  # on a decorated function: the Binding(s) it handles


@dataclass(frozen=True, slots=True)
class Binding:
    """One command a family's method handles: its full name, its spec, the method's name."""

    name: str
    spec: CommandSpec
    method: str


def command(spec: CommandSpec, *, under: CommandSpec | None = None) -> Callable[[H], H]:
    """Bind the decorated handler method to ``spec``; ``under``: the command ``spec`` is a
    subcommand of (``@command(ROSTER_RELOAD, under=ROSTER)`` handles ``roster reload``).
    Stacked, one method handles several commands."""
    if under is not None and not any(sub is spec for sub in under.subcommands):
        raise TypeError(f"{spec.name!r} is not a subcommand of {under.name!r}")
    name = spec.name if under is None else f"{under.name} {spec.name}"

    def bind(method: H) -> H:
        found: tuple[Binding, ...] = getattr(method, _BOUND, ())
        setattr(method, _BOUND, (*found, Binding(name, spec, method.__name__)))
        return method

    return bind


class Family:
    """A class of command handlers (as a discord.py ``Cog``): each method decorated with
    :func:`command` handles one command, or several. Only the class's own methods count:
    bindings are not inherited."""

    bindings: ClassVar[Mapping[str, Binding]] = MappingProxyType({})
    """Full command name → what handles it, collected when the class is defined."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Binding] = {}
        for value in vars(cls).values():
            for binding in getattr(value, _BOUND, ()):
                if binding.name in found:
                    raise TypeError(
                        f"{cls.__qualname__} binds {binding.name!r} twice: "
                        f"{found[binding.name].method} and {binding.method}"
                    )
                found[binding.name] = binding
        cls.bindings = MappingProxyType(found)

    def table(self) -> dict[str, Handler]:
        """Command name → this family's handler, for the router."""
        return {name: cast(Handler, getattr(self, b.method)) for name, b in self.bindings.items()}
