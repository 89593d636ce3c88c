"""No bag of collaborators: no product dataclass holds more than ten services.

A dataclass of values (an agent's spec, the config, a task's record) may be as wide as
what it describes; a dataclass of *services* — the objects a part calls to get something
done — is a constructor in disguise, and over ten of them is a part doing too much (the
rule :data:`tests.unit.test_structure.MAX_COLLABORATORS` sets for parameters).

**The rule.** Every product module is imported and each dataclass it defines has its
fields' annotations resolved (``typing.get_type_hints``; names imported only for type
checking are imported from where the module's own imports say). A field is a *service*
when its type, after ``X | None`` and ``Annotated`` are unwrapped, is:

- a ``Callable`` (a function handed in is behaviour), or ``type[...]``;
- a container (``Mapping``, ``Sequence``, ``tuple``, ``list``, ``dict``, sets, ``Iterable``)
  of services — ``Mapping[str, Backend]`` is services by name, ``Mapping[str, str]`` a value;
- a union in which any member is a service;
- any other class — a store, a service, a ``Protocol``, an ABC, a generic such as
  ``FleetScheduler[...]`` — *unless* it is a value: a builtin scalar (``str``, ``int``,
  ``float``, ``bool``, ``bytes``, ``complex``, ``object``), an ``Enum``, a tuple
  (``NamedTuple``), a ``TypedDict``, a pydantic model, a date, time or duration, a
  ``Decimal``, a path, a UUID, a compiled pattern, or a dataclass none of whose own fields
  is a service (a record of records is a value; a record of services is a service).

``Literal``, ``Any``, ``None`` and type variables are values. A field whose annotation
cannot be resolved is reported as such, never guessed. A dataclass with more than
:data:`MAX_SERVICES` service fields is a bag.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import datetime
import decimal
import enum
import importlib
import inspect
import re
import sys
import types
import typing
import uuid
from collections import abc
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path, PurePath
from typing import Any

import pytest

from tests.unit.test_structure import ROOT, module_files

MAX_SERVICES = 10
"""The most service fields a product dataclass holds."""
BAGS: frozenset[str] = frozenset()
"""The bags still standing (none): the check fails on any."""

_SCALARS = (str, int, float, bool, bytes, complex, object, type(None))
_VALUE_CLASSES: tuple[type, ...] = (
    enum.Enum,
    tuple,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.tzinfo,
    decimal.Decimal,
    PurePath,
    uuid.UUID,
    re.Pattern,
)
_CONTAINERS = frozenset(
    {tuple, list, dict, set, frozenset, types.MappingProxyType}
    | {
        abc.Mapping,
        abc.MutableMapping,
        abc.Sequence,
        abc.MutableSequence,
        abc.Set,
        abc.MutableSet,
        abc.Collection,
        abc.Iterable,
        abc.Iterator,
    }
)


def _is_pydantic(kind: type) -> bool:
    return any(base.__module__.startswith("pydantic") for base in kind.__mro__[1:])


def is_service(hint: object, seen: frozenset[type] = frozenset()) -> bool:
    """Whether a field of type ``hint`` holds a service (see the module's docstring)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar) or origin is typing.Literal:
        return False
    if origin is typing.Annotated:
        return is_service(args[0], seen)
    if origin in (typing.Union, types.UnionType):
        return any(is_service(arg, seen) for arg in args)
    if origin is abc.Callable:
        return True
    if origin is type or hint is type:
        return True
    if origin in _CONTAINERS:
        return any(is_service(arg, seen) for arg in args if arg is not Ellipsis)
    if isinstance(origin, type):  # a generic class: FleetScheduler[JobContext]
        hint = origin
    if hasattr(hint, "__supertype__"):  # a NewType
        return is_service(hint.__supertype__, seen)  # type: ignore[attr-defined]
    if not isinstance(hint, type):
        return False  # a string left unresolved is reported apart, never guessed
    if hint in _SCALARS or issubclass(hint, _VALUE_CLASSES) or typing.is_typeddict(hint):
        return False
    if _is_pydantic(hint):
        return False
    if dataclasses.is_dataclass(hint):
        if hint in seen:
            return False
        return any(is_service(h, seen | {hint}) for h in field_hints(hint).values())
    return True


def _imported_names(module: types.ModuleType) -> dict[str, Any]:
    """Every name the module's source imports, at any depth (``TYPE_CHECKING`` blocks
    too), as the objects they name; one that cannot be imported is left out."""
    names: dict[str, Any] = {}
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                try:
                    source = importlib.import_module(node.module)
                    names[alias.asname or alias.name] = getattr(source, alias.name)
                except (ImportError, AttributeError):
                    try:
                        found = importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        continue
                    names[alias.asname or alias.name] = found
    return names


@cache
def field_hints(kind: type) -> Mapping[str, object]:
    """A dataclass's fields by name, each with its annotation resolved (a string where it
    could not be)."""
    module = sys.modules[kind.__module__]
    namespace = {**_imported_names(module), **vars(module), kind.__name__: kind}
    hints: dict[str, object] = {}
    for field in dataclasses.fields(kind):
        annotation = field.type
        if isinstance(annotation, str):
            # Our own source's annotation; one that does not evaluate is left as text and
            # reported as unresolved.
            with contextlib.suppress(Exception):
                annotation = eval(annotation, namespace)
        hints[field.name] = annotation
    return hints


@cache
def product_dataclasses(root: Path = ROOT) -> Mapping[str, type]:
    """Every dataclass a product module defines, by its dotted name (a ``__main__`` runs
    its program when imported: it is left out, and defines no dataclass)."""
    found: dict[str, type] = {}
    for name in module_files(root):
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == name
                and dataclasses.is_dataclass(value)
            ):
                found[f"{name}.{value.__qualname__}"] = value
    return found


def services(kind: type) -> list[str]:
    """The names of ``kind``'s fields that hold services."""
    return [name for name, hint in field_hints(kind).items() if is_service(hint)]


def bags() -> dict[str, int]:
    """Every product dataclass holding more than :data:`MAX_SERVICES` services."""
    counted = {name: len(services(kind)) for name, kind in product_dataclasses().items()}
    return {name: count for name, count in counted.items() if count > MAX_SERVICES}


def test_no_dataclass_is_a_bag_of_more_than_ten_collaborators() -> None:
    """A product dataclass holds at most ten services (stores, services, protocols,
    callables); a wider one is split by concern. Values do not count."""
    assert set(bags()) == BAGS


def test_every_field_type_is_resolved() -> None:
    """Every product dataclass field's annotation resolves to a type, so the bag check
    reads each one and guesses none."""
    unresolved = [
        f"{name}.{field}: {hint}"
        for name, kind in product_dataclasses().items()
        for field, hint in field_hints(kind).items()
        if isinstance(hint, str)
    ]
    assert unresolved == []


@pytest.mark.parametrize(
    "name",
    [
        "fleet.model.AgentSpec",
        "bot.config.reading.resolved.Config",
        "fleet.ledger.records.tasks.TaskRecord",
    ],
)
def test_records_of_values_are_no_bags(name: str) -> None:
    """The wide records of values — an agent's spec, the config, a task's record — hold no
    service at all: the rule tells a value from a service."""
    assert services(product_dataclasses()[name]) == []


class _Store:
    async def get(self) -> int:
        return 1


class _Reader(typing.Protocol):
    def read(self) -> str: ...


class _Colour(enum.Enum):
    RED = 1


class _Pair(typing.NamedTuple):
    left: int
    right: int


@dataclasses.dataclass(frozen=True)
class _Record:
    name: str
    colour: _Colour


@dataclasses.dataclass(frozen=True)
class _Parts:
    store: _Store


@pytest.mark.parametrize(
    ("hint", "service"),
    [
        (_Store, True),
        (_Reader, True),
        (_Store | None, True),
        (Callable[[], None], True),
        (Mapping[str, _Store], True),
        (tuple[_Reader, ...], True),
        (type[_Store], True),
        (_Parts, True),
        (str, False),
        (int | None, False),
        (Path, False),
        (datetime.datetime, False),
        (_Colour, False),
        (_Pair, False),
        (_Record, False),
        (Mapping[str, str], False),
        (tuple[_Record, ...], False),
        (typing.Literal["a", "b"], False),
        (Any, False),
    ],
)
def test_the_rule_tells_services_from_values(hint: object, service: bool) -> None:
    """Stores, protocols, callables, containers of services and records holding a service
    are services; scalars, paths, times, enums, named tuples, records of values, containers
    of values and literals are values."""
    assert is_service(hint) is service


def test_the_check_finds_a_planted_bag() -> None:
    """A dataclass of eleven services is a bag; one of ten services and twenty values is
    not."""
    bag = dataclasses.make_dataclass("Bag", [(f"s{n}", _Store) for n in range(11)])
    wide = dataclasses.make_dataclass(
        "Wide", [(f"s{n}", _Reader) for n in range(10)] + [(f"v{n}", str) for n in range(20)]
    )
    assert len(services(bag)) == 11 > MAX_SERVICES
    assert len(services(wide)) == MAX_SERVICES
