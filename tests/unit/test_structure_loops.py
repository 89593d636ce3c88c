"""Periodic work runs on the scheduler: no product ``while`` loop awaits ``asyncio.sleep``
except those on :data:`STAY`, each with the reason it is not a scheduler job.

What runs again and again whether or not anything happened is a job of the app's one
scheduler (``bot/app/phases/serving/jobs.py``, the job in ``scheduler/``); what runs soon
after a change is an event (``fleet/timing/debounce.py``). The loops that stay wait for something
within one request, one run or one connection — a retry, a deadline, a rate limit — or run
where there is no scheduler to ask. Loops are read with :mod:`ast`; a loop that sleeps by
another name (``from asyncio import sleep``) is found too. A loop that waits on an event
with a timeout (``asyncio.wait_for(woken.wait(), ...)``) is not counted: it runs when
something changes — a page poked, a link's state, an MCP call's line — the timeout only
its latest (the standby's wait for the lease, before any scheduler exists, is one too).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from tests.unit.test_structure import PACKAGES, ROOT

STAY: Mapping[str, str] = {
    # -- before and after the scheduler: the app's own lifetime ---------------------------
    "bot/app/standby.py::_renew": (
        "the orchestrator lease is renewed from the moment it is taken, before the commands "
        "phase makes the scheduler, until the standby step at the very end of stop, long "
        "after the scheduler stopped: a renewal missed then would let a standby take over "
        "while this one still stops its fleet"
    ),
    # -- connectors: below the scheduler (imports point one way), one connection's life --
    "connectors/presence.py::_keep": (
        "a typing notice refreshed while one chat block runs in one place: its life is that "
        "block's, and connectors/ may not import the scheduler"
    ),
    "connectors/matrix/encryption/device.py::_keep_keys": (
        "the Matrix client's own watch of its cross-signing identity, for the life of one "
        "connection; connectors/ may not import the scheduler"
    ),
    "connectors/matrix/verification/service.py::run": (
        "the admins' answers to a device verification, read for the life of one Matrix "
        "connection; connectors/ may not import the scheduler"
    ),
    "connectors/matrix/inbound/sync.py::run": (
        "the Matrix sync's long poll, reconnecting with backoff: waits on the homeserver, "
        "not on a timer"
    ),
    "connectors/matrix/inbound/sync.py::_save_later": (
        "a debounce: the sync token saved a little after a sync, retried until saved"
    ),
    "connectors/matrix/messages/direct.py::_joined": (
        "waits, up to a deadline, for the sync to bring one user's join of a direct room"
    ),
    "connectors/slack/pacing.py::_work": (
        "Slack's rate limit: the next post waits out the gap after the last, only while "
        "posts are queued"
    ),
    "connectors/slack/pacing.py::_edit_loop": (
        "Slack's rate limit: the next edit waits out the gap after the last, only while "
        "edits are queued"
    ),
    # -- one command, one request, one run: a wait with a deadline or a retry -------------
    "bot/commands/handlers/agents/restart_all.py::_back": (
        "one `restart all` waits, up to a deadline, for one agent to be back"
    ),
    "fleet/backends/runfiles.py::await_agent_pid": (
        "one launch waits, up to a deadline, for the shim to write the agent's pid"
    ),
    "fleet/backends/tmux.py::send_input": "one input typed into a pane, paced line by line",
    "fleet/hosts/place.py::_listen": (
        "one remote port forward retried, up to a deadline, while the old one is let go"
    ),
    "fleet/metering/counting/recorder.py::_stop": (
        "the last metered usage written at stop, retried a few times with backoff"
    ),
    "fleet/metering/enforce.py::verdict": (
        "one metered request waits out the policy's hold, up to its limit"
    ),
    "fleet/repos/door/server.py::_watch": (
        "one git request's http-backend, killed when its client hangs up"
    ),
    "fleet/runs/layout.py::collect_output": (
        "one command's output read, up to a deadline, until the agent is quiet"
    ),
    "fleet/runs/output/reading.py::first_moments": (
        "a new run's first moments waited out, up to a deadline"
    ),
    "fleet/sandbox/host/cgroup_freezer.py::freeze": (
        "one freeze waits, up to a deadline, for the kernel to say the group is frozen"
    ),
    "fleet/sessions/driver.py::_follow": (
        "one live TUI session's reader: reads again at once while more waits, so the CLI's "
        "prompts are answered as they appear; its life is the run's, owned by the driver"
    ),
}
"""The ``while`` loops that await ``asyncio.sleep`` and stay so (``path::function``), and
why each is not a scheduler job."""


def _sleep_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """How the module names ``asyncio`` and ``asyncio.sleep`` (aliases included)."""
    modules, functions = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "asyncio"}
        elif isinstance(node, ast.ImportFrom) and node.module == "asyncio":
            functions |= {a.asname or a.name for a in node.names if a.name == "sleep"}
    return modules, functions


def _own(nodes: list[ast.AST]) -> Iterator[ast.AST]:
    """``nodes`` and everything in them, outside the functions defined there."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _sleeps(loop: ast.While, modules: set[str], functions: set[str]) -> bool:
    """Whether ``loop`` awaits ``asyncio.sleep`` (outside functions defined in it)."""
    for node in _own([*loop.body, *loop.orelse, loop.test]):
        if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
            func = node.value.func
            if (isinstance(func, ast.Name) and func.id in functions) or (
                isinstance(func, ast.Attribute)
                and func.attr == "sleep"
                and isinstance(func.value, ast.Name)
                and func.value.id in modules
            ):
                return True
    return False


@cache
def sleeping_loops(root: Path = ROOT) -> list[str]:
    """Every product ``while`` loop awaiting ``asyncio.sleep``, as ``path::function``."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            modules, functions = _sleep_names(tree)
            where = path.relative_to(root).as_posix()
            for function in ast.walk(tree):  # a method by its name alone
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                loops = (n for n in _own(function.body) if isinstance(n, ast.While))
                if any(_sleeps(loop, modules, functions) for loop in loops):
                    found.add(f"{where}::{function.name}")
    return sorted(found)


def test_periodic_work_is_a_scheduler_job() -> None:
    """No product loop sleeps on its own timer beside the scheduler, except those listed
    with their reason."""
    stray = [loop for loop in sleeping_loops() if loop not in STAY]
    assert not stray, (
        "a `while` loop awaiting asyncio.sleep: make it a scheduler job "
        "(bot/app/phases/serving/jobs.py) or an event (fleet/timing/debounce.py), or list it in "
        f"STAY with the reason it stays: {stray}"
    )


def test_every_loop_allowed_is_still_there() -> None:
    """The allow-list names only loops that exist: one made a job leaves the list."""
    gone = sorted(set(STAY) - set(sleeping_loops()))
    assert not gone, f"STAY names loops that no longer sleep: {gone}"


def test_the_check_finds_a_planted_sleeping_loop(tmp_path: Path) -> None:
    """A planted poll loop is found, by either name of the sleep; a loop that only waits
    on an event, or sleeps in a function defined inside it, is not."""
    (tmp_path / "fleet").mkdir()
    (tmp_path / "fleet" / "poller.py").write_text(
        "import asyncio\n"
        "from asyncio import sleep as nap\n\n"
        "class Poller:\n"
        "    async def _loop(self) -> None:\n"
        "        while True:\n"
        "            await self.tick()\n"
        "            await asyncio.sleep(5)\n\n"
        "async def _other() -> None:\n"
        "    while not done():\n"
        "        await nap(1)\n\n"
        "async def _waits(event: asyncio.Event) -> None:\n"
        "    while True:\n"
        "        await event.wait()\n"
        "        async def later() -> None:\n"
        "            await asyncio.sleep(1)\n",
        encoding="utf-8",
    )
    assert sleeping_loops(tmp_path) == ["fleet/poller.py::_loop", "fleet/poller.py::_other"]
