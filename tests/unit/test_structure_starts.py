"""Every start is a request, never chat text: what the fleet starts by itself — a held task,
a pipeline's stage, a watchdog's restart — is a ``LaunchRequest`` built in ``fleet/``, and the
router takes it as one (``Router.start_for``), not as words composed to be parsed again.

**The rules.** Read with :mod:`ast`, over the product's packages (:data:`PRODUCT`):

- ``run_as`` — a command's text run for someone who typed it earlier — is called only in
  :data:`RUN_AS_CALLERS`: an operator's schedule (its command *is* text they typed) and the
  spawn queue's start of a chat entry (the command they typed, handled by the queue's own
  ``act``); a :class:`~bot.commands.routing.sources.Delegated` is built only there too;
- nothing composes a command as text to run it: no string literal or f-string that begins
  with a command's word (``f"task start {n}"``, ``"spawn coder"``) is handed to a grammar's
  ``parse``, nor as the ``text`` of an ``InboundMessage`` or a ``Delegated`` — but for a
  person's own gesture that a connector reads as the command it means, named in
  :data:`GESTURES`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from bot.commands.specs import COMMANDS
from tests.unit.test_structure import ROOT

PRODUCT = ("bot", "fleet", "connectors", "scheduler")
"""The product's packages, whose modules are read."""
RUN_AS_CALLERS = frozenset(
    {
        "bot/commands/handlers/launches/schedules.py",
        "bot/commands/handlers/launches/queue_starts.py",
    }
)
"""The only modules that run a command's text for someone: a schedule firing the command
its operator typed, and the spawn queue starting the entry a chat command left."""
GESTURES = frozenset({("connectors/slack/translate.py", "stop")})
"""A person's gesture a connector reads as a command they ask for now (Slack's Stop on an
agent's thread, as the clicker's ``stop NAME``), by module and the command's words."""
COMMAND_WORDS = frozenset(spec.name.split()[0] for spec in COMMANDS)
"""The first word of every command (``task``, ``spawn``, ``mission``…)."""
TEXT_AT = {"InboundMessage": 2, "Delegated": 2}
"""The calls whose ``text`` (by keyword, or at this position) is a command's words."""


def _modules(root: Path) -> Iterator[tuple[str, ast.Module]]:
    for package in PRODUCT:
        for path in sorted((root / package).rglob("*.py")):
            yield path.relative_to(root).as_posix(), ast.parse(path.read_text(), str(path))


def _called(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def composed_command(node: ast.expr) -> str | None:
    """The command words ``node`` begins with, when it is a literal or an f-string that
    starts with a command's word (``None``: it is not one)."""
    head: object = None
    if isinstance(node, ast.Constant):
        head = node.value
    elif isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        head = first.value if isinstance(first, ast.Constant) else None
    if not isinstance(head, str):
        return None
    words = head.lstrip().removeprefix("!").split(" ", 1)
    return head.strip() if words[0] in COMMAND_WORDS else None


def _texts(call: ast.Call, name: str) -> Iterator[ast.expr]:
    """The arguments of ``call`` (to ``name``) that are a command's text."""
    if name == "parse" and call.args:
        yield call.args[0]
    if name in TEXT_AT:
        yield from (k.value for k in call.keywords if k.arg == "text")
        if len(call.args) > TEXT_AT[name]:
            yield call.args[TEXT_AT[name]]


def text_starts(root: Path = ROOT) -> list[str]:
    """Where the product runs a command's text for someone outside :data:`RUN_AS_CALLERS`,
    or composes a command as text to run it: ``path:line: what``."""
    found = []
    for where, tree in _modules(root):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or (name := _called(node)) is None:
                continue
            if name in ("run_as", "Delegated") and where not in RUN_AS_CALLERS:
                found.append(f"{where}:{node.lineno}: {name}")
            for text in _texts(node, name):
                words = composed_command(text)
                if words is not None and (where, words) not in GESTURES:
                    found.append(f"{where}:{node.lineno}: {name} of {words!r}")
    return found


def test_no_start_is_composed_as_chat_text() -> None:
    """A start the fleet makes is a request the router takes as one; only a schedule and
    the spawn queue's chat entries run a command's text, which an operator typed."""
    assert text_starts() == []


def _plant(root: Path, where: str, text: str) -> None:
    path = root / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_start_checks_find_planted_violations(tmp_path: Path) -> None:
    """``task start`` composed for ``run_as`` in a held task's starter, a ``Delegated`` and
    an ``InboundMessage`` carrying a command's words, and a parse of an f-string are found;
    the schedules' and the queue's ``run_as`` of what an operator typed, and text that is
    no command's, are not."""
    _plant(
        tmp_path,
        "bot/commands/handlers/work/starts.py",
        "async def start(router, c, task):\n"
        "    run = Delegated(sender='a', room='r', text=f'task start {task.id}')\n"
        "    await router.run_as(c, run)\n",
    )
    _plant(
        tmp_path,
        "fleet/tasks/held.py",
        "def held(grammar, n):\n"
        "    InboundMessage('c', 's', 'spawn coder')\n"
        "    InboundMessage(connector='c', sender='s', text=f'!mission approve {n}')\n"
        "    return grammar.parse(f'task start {n}', addressed=True)\n",
    )
    _plant(
        tmp_path,
        "bot/commands/handlers/launches/schedules.py",
        "async def fire(router, c, record):\n"
        "    await router.run_as(c, Delegated(sender='a', room='r', text=record.command))\n",
    )
    _plant(
        tmp_path,
        "connectors/console/read.py",
        "def read(line):\n"
        "    InboundMessage(connector='console', sender='me', text=line)\n"
        "    InboundMessage(connector='console', sender='me', text='hello there')\n",
    )
    assert text_starts(tmp_path) == [
        "bot/commands/handlers/work/starts.py:2: Delegated",
        "bot/commands/handlers/work/starts.py:2: Delegated of 'task start'",
        "bot/commands/handlers/work/starts.py:3: run_as",
        "fleet/tasks/held.py:2: InboundMessage of 'spawn coder'",
        "fleet/tasks/held.py:3: InboundMessage of '!mission approve'",
        "fleet/tasks/held.py:4: parse of 'task start'",
    ]
