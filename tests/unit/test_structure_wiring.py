"""The wiring stays wiring: the app's start phases (``bot/app/phases/``) and the modules
that build and re-read what they wire (``bot/app/assembly.py``, ``bot/app/reload.py``) make
parts and hand them to one another; what a part does lives in the part's own room.

**The rules.** Read with :mod:`ast`:

- no function or method of the wiring is over :data:`MAX_WIRING_LINES` lines, its
  signature, docstring and nested functions counted: a long phase is split by concept, one
  builder per part it makes, never squeezed;
- no ``lambda`` in a phase module: behaviour handed on is a named function, or a bound
  method of the object that owns it;
- no class with behaviour in a phase module: a phase's result is a frozen record
  (``@dataclass(frozen=True)``), whose only methods are properties that read its fields; a
  ``Protocol`` of stubs (the narrow view a phase takes of a part) has no behaviour either.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from pathlib import Path

from tests.unit.test_structure import ROOT, _functions

MAX_WIRING_LINES = 60
"""The longest a function of the wiring may be, its signature and docstring counted."""
PHASES = Path("bot") / "app" / "phases"
"""The app's start phases, one room each: ``core/``, ``fleet/``, ``forges/``, ``serving/``."""
BUILDERS = (Path("bot") / "app" / "assembly.py", Path("bot") / "app" / "reload.py")
"""The modules beside the phases that build (or re-read) what the phases wire."""


def phase_modules(root: Path = ROOT) -> list[Path]:
    """Every module of the start phases under ``root``."""
    return sorted((root / PHASES).rglob("*.py"))


def wiring_modules(root: Path = ROOT) -> list[Path]:
    """The phases and the builders beside them."""
    return [*phase_modules(root), *(root / b for b in BUILDERS if (root / b).exists())]


def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _where(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def long_functions(root: Path = ROOT) -> dict[str, int]:
    """Every function of the wiring over :data:`MAX_WIRING_LINES`, by ``path:name``."""
    found: dict[str, int] = {}
    for path in wiring_modules(root):
        for name, function in _functions(_parsed(path)):
            assert function.end_lineno is not None
            if (lines := function.end_lineno - function.lineno + 1) > MAX_WIRING_LINES:
                found[f"{_where(path, root)}:{name}"] = lines
    return found


def lambdas(root: Path = ROOT) -> list[str]:
    """Every ``lambda`` in a phase module, as ``path:line``."""
    return [
        f"{_where(path, root)}:{node.lineno}"
        for path in phase_modules(root)
        for node in ast.walk(_parsed(path))
        if isinstance(node, ast.Lambda)
    ]


def _is_frozen_dataclass(node: ast.ClassDef) -> bool:
    """Whether ``node`` is decorated ``@dataclass(frozen=True, ...)``."""
    for decorator in node.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        called = decorator.func
        name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
        frozen = any(
            k.arg == "frozen" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in decorator.keywords
        )
        if name == "dataclass" and frozen:
            return True
    return False


def _reads_fields(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether ``function`` is a property whose body returns what it reads of ``self``:
    one ``return``, no call in it, no name but ``self``."""
    decorated = [d for d in function.decorator_list if isinstance(d, ast.Name)]
    if [d.id for d in decorated] != ["property"] or len(function.decorator_list) != 1:
        return False
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # its docstring
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return False
    nodes = list(ast.walk(body[0].value))
    names = {n.id for n in nodes if isinstance(n, ast.Name)}
    return names <= {"self"} and not any(isinstance(n, ast.Call | ast.Lambda) for n in nodes)


def _is_protocol(node: ast.ClassDef) -> bool:
    """Whether ``node`` is a ``Protocol`` whose methods are stubs: an interface, no
    behaviour."""
    bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
    methods = [i for i in node.body if isinstance(i, ast.FunctionDef | ast.AsyncFunctionDef)]
    return "Protocol" in bases and all(_stub(m) for m in methods)


def _stub(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether ``function``'s body is a docstring and ``...`` at most."""
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in function.body)


def _behaviour(node: ast.ClassDef) -> Iterator[str]:
    """Why ``node`` is more than a frozen record (or an interface): not frozen, or a method
    that does more than read a field."""
    if _is_protocol(node):
        return
    if not _is_frozen_dataclass(node):
        yield "not a frozen dataclass"
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not _reads_fields(item):
            yield f"method {item.name}"
        elif isinstance(item, ast.ClassDef):
            yield f"class {item.name}"


def behaving_classes(root: Path = ROOT) -> dict[str, list[str]]:
    """Every class of a phase module that is more than a frozen record, by ``path:name``,
    with what makes it so."""
    found: dict[str, list[str]] = {}
    for path in phase_modules(root):
        for node in ast.walk(_parsed(path)):
            if isinstance(node, ast.ClassDef) and (why := list(_behaviour(node))):
                found[f"{_where(path, root)}:{node.name}"] = why
    return found


def test_no_function_of_the_wiring_is_over_60_lines() -> None:
    """A phase (or a builder beside them) over 60 lines wires too much at once: split it by
    concept, one builder per part it makes."""
    assert long_functions() == {}


def test_no_phase_hands_on_a_lambda() -> None:
    """Behaviour a phase hands on is a named function, or a bound method of its owner."""
    assert lambdas() == []


def test_a_phase_module_holds_only_frozen_records() -> None:
    """What a part does lives in its room; a phase module's classes are the frozen records
    of what the phases made."""
    assert behaving_classes() == {}


def _plant(root: Path, name: str, text: str) -> None:
    path = root / PHASES / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_wiring_checks_find_planted_violations(tmp_path: Path) -> None:
    """A long phase, a long builder, a lambda, a class with a method, a record that is not
    frozen, a property that calls and a protocol with a body are found; a frozen record
    with a property reading its fields, a protocol of stubs and a short phase are not."""
    lines = [f"    x{i} = {i}\n" for i in range(MAX_WIRING_LINES)]
    body = "".join(lines)
    _plant(tmp_path, "core/long.py", f"def phase():\n{body}")
    _plant(tmp_path, "core/short.py", "def phase():\n" + "".join(lines[1:]))
    method = textwrap.indent(body, "    ")
    (tmp_path / BUILDERS[0]).write_text(f"class Builder:\n    def build(self):\n{method}")
    _plant(tmp_path, "fleet/hand.py", "def phase(f):\n    return f(lambda: 1)\n")
    _plant(
        tmp_path,
        "forges/records.py",
        "from dataclasses import dataclass\n"
        "@dataclass(frozen=True, slots=True)\n"
        "class Made:\n"
        "    '''What a phase made.'''\n"
        "    a: int\n"
        "    @property\n"
        "    def first(self) -> int:\n"
        "        '''Its first field.'''\n"
        "        return self.a\n"
        "@dataclass(frozen=True)\n"
        "class Busy:\n"
        "    a: int\n"
        "    @property\n"
        "    def doubled(self) -> int:\n"
        "        return double(self.a)\n"
        "@dataclass\n"
        "class Loose:\n"
        "    a: int\n"
        "class Part:\n"
        "    def __init__(self) -> None:\n"
        "        self.a = 1\n"
        "class Seen(Protocol):\n"
        "    def listen(self) -> None: ...\n"
        "class Acting(Protocol):\n"
        "    def act(self) -> None:\n"
        "        print(1)\n",
    )
    assert long_functions(tmp_path) == {
        "bot/app/phases/core/long.py:phase": MAX_WIRING_LINES + 1,
        "bot/app/assembly.py:Builder.build": MAX_WIRING_LINES + 1,
    }
    assert lambdas(tmp_path) == ["bot/app/phases/fleet/hand.py:2"]
    assert behaving_classes(tmp_path) == {
        "bot/app/phases/forges/records.py:Busy": ["method doubled"],
        "bot/app/phases/forges/records.py:Loose": ["not a frozen dataclass"],
        "bot/app/phases/forges/records.py:Part": ["not a frozen dataclass", "method __init__"],
        "bot/app/phases/forges/records.py:Acting": ["not a frozen dataclass", "method act"],
    }
