"""The task a forge run is: made once when an issue is given to an agent (its title and body
the issue's, its source the issue's address, its projection stored then), carried by every
launch of the run so its runs are bound to it through the admission, and moved as the forge
run goes — the task's runs do not move it (:class:`fleet.tasks.runs.TaskRuns` leaves forge
tasks alone): its pull request is the review, its merge the end.

How each state of a forge run maps to a task's is :func:`task_state`:

==============  ==========================================================
forge run       task
==============  ==========================================================
``queued``      ``queued`` (its agent busy, a budget, a cap)
``working``     ``working`` (a run going, or its session continued)
``waiting``     ``review`` (its pull request waits; or the watchdog ended
                its turn, its work kept on its branch)
``unpublished`` ``review`` (done, its pull request to be opened)
``failed``      ``failed`` (the agent said it could not finish)
``stopped``     ``cancelled`` (the issue unlabelled, unassigned, closed,
                or ``stop`` said on it)
``ended``       ``done`` when its pull request was merged, else
                ``cancelled`` (closed unmerged, its branch ended first)
==============  ==========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fleet.errors import FleetError
from fleet.forge.model import ForgeIssue
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.ledger.records.tasks import ENDED_STATES, NewTask, TaskRecord, TaskState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.tasks.register import Register
from fleet.tasks.spent import TaskSpend

log = logging.getLogger(__name__)

Runtime = Callable[[str], Awaitable[str | None]]
"""The runtime an agent runs on (``None``: not known)."""

_STATES: dict[ForgeRunState, TaskState] = {
    ForgeRunState.QUEUED: "queued",
    ForgeRunState.WORKING: "working",
    ForgeRunState.WAITING: "review",
    ForgeRunState.UNPUBLISHED: "review",
    ForgeRunState.FAILED: "failed",
    ForgeRunState.STOPPED: "cancelled",
}

_CAME_FROM: dict[TaskState, tuple[TaskState, ...]] = {
    "queued": ("todo",),
    "working": ("todo", "queued", "review", "failed"),
    "review": ("todo", "queued", "working", "failed"),
}
"""The states an open move of a forge task is made from: a task the admission's binding
moved on already (queued, then working) is not moved back."""


def task_state(state: ForgeRunState, *, merged: bool = False) -> TaskState:
    """The task state of a forge run in ``state`` (``merged``: an ended run's pull request
    was merged); the module's table says each."""
    if state is ForgeRunState.ENDED:
        return "done" if merged else "cancelled"
    return _STATES[state]


def why_of(record: ForgeRunRecord, state: TaskState) -> str:
    """Why a forge task is in ``state``, in a few words of Fleetwarden's."""
    where = f"{record.slug}#{record.issue}"
    pull = f"pull request #{record.pull}" if record.pull is not None else "its pull request"
    match state:
        case "queued":
            return f"forge run on {where} queued"
        case "working":
            return f"forge run on {where} working"
        case "review" if ForgeRunState(record.state) is ForgeRunState.UNPUBLISHED:
            return f"done on {where}; {pull} not opened yet"
        case "review":
            return f"{pull} of {where} waits for review"
        case "failed":
            return f"the agent could not finish {where}"
        case "done":
            return f"{pull} of {where} merged"
    return f"forge run on {where} {record.state}"


class ForgeTasks:
    """The tasks of forge runs, for forge work and its posts."""

    def __init__(
        self,
        *,
        register: Register,
        tasks: TasksStore,
        spend: TaskSpend,
        forge: ForgeStore,
        runtime: Runtime,
    ) -> None:
        """``runtime``: the runtime an agent runs on, as the fleet's roster says it."""
        self._register = register
        self._tasks = tasks
        self._spend = spend
        self._forge = forge
        self._runtime = runtime

    async def made(self, record: ForgeRunRecord, issue: ForgeIssue | None = None) -> TaskRecord:
        """The task forge run ``record`` is: made now, once (a restart, a poll or a webhook
        replay finds the one made before), from ``issue`` as just read (else the run's
        title, no body)."""
        found = await self._tasks.task_of_forge_run(record.id)
        if found is not None:
            return found
        title = issue.title if issue is not None else record.title
        new = NewTask(
            title=title if title.strip() else f"{record.slug}#{record.issue}",
            body=issue.body if issue is not None else "",
            source="forge",
            source_ref=record.issue_url,
            asked_by=f"@{record.requester} on {record.forge}",
            agent=record.agent,
            runtime=await self._runtime(record.agent),
            repo=record.repo,
            forge_run=record.id,
        )
        made = await self._register.new(new)
        log.info("forge run %d on %s#%d is task %d", record.id, record.slug, record.issue,
                 made.id)  # fmt: skip
        return made

    async def line(self, key: int) -> str | None:
        """The spend line of forge run ``key``'s task (``None``: it has none)."""
        return await self._spend.of_forge_run(key)

    async def follow(self, record: ForgeRunRecord) -> None:
        """Move forge run ``record``'s task to where the run is now (``record``: as just
        read), its branch and pull request kept on it; nothing when it is there already."""
        task = await self._tasks.task_of_forge_run(record.id)
        if task is None:
            return
        fields: dict[str, str] = {}
        if record.branch and record.branch != task.branch:
            fields["branch"] = record.branch
        if record.pull_url and record.pull_url != task.pull_url:
            fields["pull_url"] = record.pull_url
        await self._tasks.set_fields(task.id, **fields)
        state = ForgeRunState(record.state)
        merged = state is ForgeRunState.ENDED and await self._merged(record)
        target = task_state(state, merged=merged)
        if target == task.state:
            return
        why = record.summary if target == "cancelled" and record.summary else None
        said = why or why_of(record, target)
        if target in ENDED_STATES:
            await self._end(task, target, said)
        elif target in _CAME_FROM:
            await self._tasks.move(task.id, target, said, came_from=_CAME_FROM[target])

    async def _end(self, task: TaskRecord, state: TaskState, why: str) -> None:
        if not task.open and state != "done":
            return
        try:
            if state == "done":  # merged: done, one that failed before all the same
                await self._register.merged(task, why)
            else:
                await self._register.end(task, state, why)
        except FleetError as exc:  # moved meanwhile: the next follow sees it as it is
            log.info("task %d of a forge run not ended %s: %s", task.id, state, exc)

    async def _merged(self, record: ForgeRunRecord) -> bool:
        """Whether ``record`` ended with its pull request merged (its ``end`` audit)."""
        for line in reversed(await self._forge.forge_audit(record.id, limit=20)):
            if line.op == "end":
                return line.detail.endswith(" merged")
        return False
