"""The structure holds: imports point one way (bot → scheduler → fleet, bot → connectors,
connectors → only fleet's leaf modules), no module imports back along a cycle, no product
module grows past 500 lines, and docs/architecture.md shows the dependency graph and every
module as they are.

Imports are read with :mod:`ast`, every one of them (inside functions and ``TYPE_CHECKING``
blocks too): a deferred import is still a dependency. ``python -m tests.unit.test_structure``
prints the graph block the architecture doc must contain.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "connectors", "fleet", "scheduler")
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "bot": frozenset({"bot", "connectors", "scheduler", "fleet"}),
    "scheduler": frozenset({"scheduler", "fleet"}),
    "connectors": frozenset({"connectors", "fleet"}),  # fleet's leaf modules only
    "fleet": frozenset({"fleet"}),
}
"""Which packages each package's modules may import: the one direction."""
MAX_LINES = 500
DOC = ROOT / "docs" / "architecture.md"


def top(module: str) -> str:
    return module.split(".", 1)[0]


@cache
def module_files(root: Path = ROOT) -> Mapping[str, Path]:
    """Every product module under ``root`` by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(name: str, path: Path) -> Iterator[str]:
    """The dotted names ``name``'s file imports (from-imports also as ``module.attribute``,
    so that a submodule imported from its package counts as the submodule)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            yield origin
            yield from (f"{origin}.{alias.name}" for alias in node.names)


@cache
def graph(root: Path = ROOT) -> Mapping[str, frozenset[str]]:
    """Module → the product modules it imports (never itself)."""
    files = module_files(root)
    edges: dict[str, frozenset[str]] = {}
    for name, path in files.items():
        targets = set()
        for imported in _imported(name, path):
            if top(imported) not in PACKAGES:
                continue
            # `from fleet.ledger import Ledger` names the package; `from fleet import clock`,
            # the module: take the longest prefix that is a module of ours.
            parts = imported.split(".")
            while parts and ".".join(parts) not in files:
                parts.pop()
            if parts:
                targets.add(".".join(parts))
        targets.discard(name)
        edges[name] = frozenset(targets)
    return edges


def fleet_leaves() -> frozenset[str]:
    """The fleet modules that import nothing of ours: the types connectors may share."""
    return frozenset(m for m, targets in graph().items() if top(m) == "fleet" and not targets)


def upward(root: Path = ROOT) -> list[str]:
    """Every import of a package its module may not import."""
    return [
        f"{module} imports {target}"
        for module, targets in sorted(graph(root).items())
        for target in sorted(targets)
        if top(target) not in MAY_IMPORT[top(module)]
    ]


def cycles(root: Path = ROOT) -> list[list[str]]:
    """Every group of modules that import each other, directly or round a loop (Tarjan)."""
    edges = graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def dependency_block() -> str:
    """The package graph as the architecture doc shows it, computed from the imports."""
    edges = graph()
    lines = []
    for package in PACKAGES:
        uses = sorted(
            {top(t) for m, targets in edges.items() if top(m) == package for t in targets}
            - {package}
        )
        line = f"{package:<10} → {', '.join(uses) if uses else 'nothing of ours'}"
        if package == "connectors":
            used = sorted(
                t
                for m, targets in edges.items()
                if top(m) == "connectors"
                for t in targets
                if top(t) == "fleet"
            )
            line += f" (leaf modules only: {', '.join(dict.fromkeys(used))})"
        lines.append(line)
    return "\n".join(lines)


def test_imports_point_one_way() -> None:
    """No module imports a package above its own: bot → scheduler → fleet, bot → connectors,
    connectors → fleet; fleet imports none of the others."""
    assert upward() == []


def test_connectors_take_only_leaf_types_from_fleet() -> None:
    """A connector may use fleet's leaf modules (the clock, errors, notices, schema types),
    which import nothing of ours, and nothing else of the fleet."""
    leaves = fleet_leaves()
    reaching = [
        f"{module} imports {target}"
        for module, targets in sorted(graph().items())
        if top(module) == "connectors"
        for target in sorted(targets)
        if top(target) == "fleet" and target not in leaves
    ]
    assert reaching == []


def test_no_modules_import_each_other() -> None:
    """No cycle of imports, of any length, among the product's modules."""
    assert cycles() == []


def test_no_product_module_is_over_500_lines() -> None:
    """One concept per module: split near 500 lines."""
    long = {
        str(path.relative_to(ROOT)): lines
        for path in module_files().values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_architecture_doc_shows_the_dependency_graph() -> None:
    """docs/architecture.md carries the package graph exactly as the imports make it
    (print it with ``python -m tests.unit.test_structure``)."""
    assert dependency_block() in DOC.read_text()


def test_the_architecture_doc_lists_every_module() -> None:
    """Every product module is named in docs/architecture.md, by its path in backticks."""
    doc = DOC.read_text()
    missing = [
        str(path.relative_to(ROOT))
        for path in module_files().values()
        if path.name != "__init__.py" and f"`{path.relative_to(ROOT)}`" not in doc
    ]
    assert missing == []


def test_the_check_finds_a_planted_upward_import_and_cycle(tmp_path: Path) -> None:
    """The walk itself works: in a planted tree, a fleet module importing the scheduler (from
    inside a function) is upward, and with the scheduler importing it back, a cycle."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "fleet" / "a.py").write_text("def f():\n    from scheduler.b import x\n")
    (tmp_path / "scheduler" / "b.py").write_text("from fleet import a\nx = 1\n")
    (tmp_path / "bot" / "c.py").write_text("import scheduler.b\nfrom fleet.a import f\n")
    assert upward(tmp_path) == ["fleet.a imports scheduler.b"]
    assert cycles(tmp_path) == [["fleet.a", "scheduler.b"]]


if __name__ == "__main__":
    print(dependency_block())
