"""A task's launch and who asked for it: the ``LaunchRequest`` a task starts as
(:func:`task_request`: its prompt, its repository, the task it is done for) — the one a
typed ``task start`` and a held start alike make — the
:class:`Asker` its start was asked by (the connector, room and sender kept with the task),
and the :class:`HeldStart` the register hands its starters when a task's wait is over
(origin ``task``, or ``pipeline`` for a pipeline's stage), audited as the asker it carries."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from fleet.ledger.records.tasks import TaskRecord
from fleet.supervisor.admission.request import LaunchRequest, Origin

log = logging.getLogger(__name__)

HeldOrigin = Literal["task", "pipeline"]
"""Where a held start comes from: a task whose wait is over, or a pipeline's stage."""


def prompt_of(task: TaskRecord) -> str:
    """What an agent is told to do for ``task``: its title, then its body."""
    return f"{task.title}\n\n{task.body}" if task.body and task.body != task.title else task.title


def task_request(
    task: TaskRecord, agent: str, *, origin: Origin, by: str, co_author: str | None = None
) -> LaunchRequest:
    """The launch ``task`` asks of ``agent``: told its prompt, on its repository (if it
    names one), done for it; asked from ``origin`` by ``by`` (``co_author``: who its
    commits credit)."""
    return LaunchRequest(
        agent,
        origin=origin,
        by=by,
        prompt=prompt_of(task),
        repo=task.repo,
        co_author=co_author,
        task=task.id,
    )


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asked for a task's start, and where: a chat's ``connector``, ``room`` (and
    ``thread``) and ``sender``."""

    connector: str
    room: str
    sender: str
    thread: str | None = None

    @property
    def who(self) -> str:
        """``ann on matrix``: the asker as a launch's ``by`` and a request's ``who`` say it."""
        return f"{self.sender} on {self.connector}"

    def kept(self) -> dict[str, str | None]:
        """The asker as the register keeps it with the task (``asked_in``)."""
        return {
            "connector": self.connector,
            "room": self.room,
            "thread": self.thread,
            "sender": self.sender,
        }


def asker_of(task: TaskRecord) -> Asker | None:
    """Who asked for ``task``'s start and where, as kept with it (``None``: nobody asked in
    a chat, or what was kept is unreadable)."""
    if not task.asked_in:
        return None
    try:
        found = json.loads(task.asked_in)
    except ValueError:
        log.warning("task %s: where its start was asked is unreadable", task.id)
        return None
    if not isinstance(found, Mapping):
        return None
    keys = ("connector", "room", "sender")
    if not all(isinstance(found.get(key), str) and found[key] for key in keys):
        return None
    thread = found.get("thread")
    return Asker(
        connector=str(found["connector"]),
        room=str(found["room"]),
        sender=str(found["sender"]),
        thread=thread if isinstance(thread, str) and thread else None,
    )


@dataclass(frozen=True, slots=True)
class HeldStart:
    """A task whose wait is over, to start as ``request`` for ``asker`` (``None``: its start
    was asked nowhere a chat can answer): claimed once as :attr:`event`, audited with
    :attr:`source`."""

    task: TaskRecord
    request: LaunchRequest
    asker: Asker | None

    @property
    def event(self) -> str:
        """``task:12:1``: this start of the task (after its runs so far), claimed once."""
        return f"task:{self.task.id}:{len(self.task.runs)}"

    @property
    def source(self) -> str:
        """``task:12``: the audit's source of the task's starts."""
        return f"task:{self.task.id}"

    @property
    def asked(self) -> str:
        """What its asker asked, as the audit and a spawn queue's entry keep it (the
        command's words, never read back to start it)."""
        return f"task start {self.task.id}"


def held_start(task: TaskRecord, origin: HeldOrigin) -> HeldStart | None:
    """The start of ``task``, whose wait is over, from ``origin``, as whoever asked for it
    (``None``: it has no agent to start)."""
    if task.agent is None:
        return None
    asker = asker_of(task)
    by = asker.who if asker is not None else "operator"
    return HeldStart(task, task_request(task, task.agent, origin=origin, by=by), asker)
