"""The app's start phases write nothing into what they were handed: no function of
:mod:`bot.app.phases` (nor of :mod:`bot.app.assembly`) assigns an attribute of one of its
parameters — an earlier phase's result, the grounds —, of a part reached from one
(``fleeted.register.runs.x = …``), or of a local name bound to either (``metering =
spend.proxy; metering.x = …``), nor sets an item in one. A part made later listens to an
earlier one's events, or opens its desk in the registry of desks, instead."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
WIRING = (*sorted((ROOT / "bot" / "app" / "phases").rglob("*.py")), ROOT / "bot/app/assembly.py")

LATE: frozenset[str] = frozenset(
    {
        # The approval hold's policy reads the repositories as they are now (a reload adds
        # some), so it is made over the Repos, in the same phase, before any other sees it.
        "repo_verbs: repos.hold",
    }
)
"""The writes still made, each with its reason: the check fails on a new one, and on a
listed one that is gone."""

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _root(node: ast.expr) -> str | None:
    """The name an attribute chain (``fleeted.register.runs``) starts from."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _targets(node: ast.AST) -> Iterator[ast.expr]:
    """What ``node`` assigns to (each element of a tuple or list target), or sets with
    ``setattr``."""
    found: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        found = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        found = [node.target]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
        setting = node.func.id == "setattr"
        found = [ast.Attribute(value=node.args[0], attr="?", ctx=ast.Store())] if setting else []
    while found:
        target = found.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            found.extend(target.elts)
        else:
            yield target


def _aliases(function: Function, given: set[str]) -> set[str]:
    """``given`` and every local name ``function`` binds to one of them or a part of one
    (``metering = spend.proxy``, ``cfg, stops = at.cfg, at.stops``), to a fixpoint."""
    pairs: list[tuple[str, ast.expr]] = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                pairs.append((target.id, node.value))
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs += [
                    (t.id, v)
                    for t, v in zip(target.elts, node.value.elts, strict=False)
                    if isinstance(t, ast.Name)
                ]
    names = set(given)
    while True:
        more = {name for name, value in pairs if _root(value) in names} - names
        if not more:
            return names
        names |= more


def writes_into_parameters(path: Path) -> set[str]:
    """``function: target`` for each attribute or item of a parameter (other than
    ``self``/``cls``), of a part reached from one, or of a local name bound to either, that
    a function of ``path`` assigns."""
    found: set[str] = set()
    for function in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = function.args
        given = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        given = _aliases(function, given - {"self", "cls"})
        for node in ast.walk(function):
            for target in _targets(node):
                written = isinstance(target, (ast.Attribute, ast.Subscript))
                if written and _root(target) in given:
                    found.add(f"{function.name}: {ast.unparse(target)}")
    return found


def test_no_phase_writes_into_what_an_earlier_phase_made() -> None:
    """Each phase takes what earlier phases made as it is: a write into it is found, save
    the listed ones."""
    found = set().union(*(writes_into_parameters(path) for path in WIRING))
    assert found == LATE


def test_the_check_finds_a_planted_write(tmp_path: Path) -> None:
    """A write into a parameter's part, a tuple's element, by ``setattr``, through a local
    alias or into an item is found; one into an object the function made, into ``self``, or
    of a plain name is not."""
    planted = tmp_path / "phase.py"
    planted.write_text(
        "def late(fleeted, at, made_here):\n"
        "    fleeted.register.runs.up_for_review = made_here.hear\n"
        "    at.serving.router, other = made_here, 1\n"
        "    setattr(at, 'x', 1)\n"
        "    metering = at.spend.proxy\n"
        "    metering.on_refused = made_here\n"
        "    cfg, stops = at.cfg, 2\n"
        "    cfg.hooks['k'] = made_here\n"
        "    made = object()\n"
        "    made.x = fleeted\n"
        "    fleeted = None\n"
        "class Phase:\n"
        "    def __init__(self, given):\n"
        "        self.given = given\n"
    )
    assert writes_into_parameters(planted) == {
        "late: fleeted.register.runs.up_for_review",
        "late: at.serving.router",
        "late: at.?",
        "late: metering.on_refused",
        "late: cfg.hooks['k']",
    }
