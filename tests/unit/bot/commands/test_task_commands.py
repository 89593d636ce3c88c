"""The work register's commands through the router, over a real ledger (SQLite) and the
register over an admission whose fleet is a fake (each launch a run in the ledger, heard as
the keeper emits it): a task made with its projection, started as ``spawn`` starts one,
held for another and started by itself once that is done, listed, told, ended; missions
made and summed; every bad input answered with its fix; hostile titles and bodies escaped;
viewers see, operators change."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.spawn.launching import Launching
from bot.commands.handlers.work.board import TaskBoard
from bot.commands.handlers.work.missions import MissionCommands
from bot.commands.handlers.work.specs import MISSION, MISSIONS, TASK, TASKS
from bot.commands.handlers.work.starts import ChatTaskStarts
from bot.commands.handlers.work.tasks import TaskCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from bot.commands.specs import SPAWN
from bot.control.answers import ShellAnswers
from bot.control.wire import EXIT_OK
from fleet.errors import UnknownAgent
from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NewTask
from fleet.tasks.register import Register
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.fleet import no_runs
from tests.fakes.doubles.launches import an_admission
from tests.fakes.doubles.stores import task_runs_of
from tests.unit.chat_fakes import OPERATOR, T0, VIEWER, FakeConnector, message
from tests.unit.fleet.metering.test_run_watch import AGENT, used
from tests.unit.fleet.tasks.test_ledger_register import Fleet

ROOM = "!work:example.org"
HOSTILE = "<b>bold</b> @room [click](https://evil.example) ```fence``` **x**"


class TaskFleet(Fleet):
    """The register's fake fleet, with what ``spawn``'s family reads of it."""

    outputs = SimpleNamespace(stories=None, open_runs=no_runs)

    async def status(self, name: str) -> Any:
        """Whether ``name`` runs: its last run still open (``UnknownAgent``: it never ran)."""
        run = await self.ledger.runs.last_run(name)
        if run is None:
            raise UnknownAgent(name)
        return SimpleNamespace(state=SimpleNamespace(is_live=run.ended_at is None))


class Rig:
    """The router over the work commands and ``spawn``, and the fake fleet."""

    async def stop_agent(self, name: str, *, by: str = "operator") -> None:
        run = await self.ledger.runs.last_run(name)
        assert run is not None
        await self.fleet.end(name, run.id, "stopped")

    def __init__(self, ledger: Ledger, clock: ManualClock, tmp_path: Path) -> None:
        self.ledger, self.clock, self.chat = ledger, clock, FakeConnector()
        self.task_runs = task_runs_of(ledger)
        self.fleet = TaskFleet(ledger, tmp_path, self.task_runs)
        fleet = cast(Any, self.fleet)
        admission = an_admission(fleet, slots=None, budgets=None, tasks=self.task_runs)
        self.register = Register(
            tasks=ledger.tasks,
            missions=ledger.missions,
            actuals=ledger.actuals,
            runs=self.task_runs,
            admission=admission,
            stop=self,
        )
        spawn = Handlers(
            fleet=fleet, clock=clock, launching=Launching(admission), register=self.register
        )
        tasks = TaskCommands(register=self.register, launches=spawn, fleet=fleet)
        families = (
            spawn,
            tasks,
            TaskBoard(
                register=self.register, missions=ledger.missions, runs=ledger.runs, clock=clock
            ),
            MissionCommands(register=self.register, missions=ledger.missions),
        )
        table = {name: h for family in families for name, h in family.table().items()}
        self.router = Router(
            grammar=Grammar((SPAWN, TASK, TASKS, MISSION, MISSIONS)),
            acl=Acl([Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)]),
            handlers=table,
            audit=ledger.audit,
            chat=ledger.chat,
        )
        chat = self.chat
        named = lambda n: chat if n == chat.name else None  # noqa: E731
        starts = ChatTaskStarts(clock, self.router, named, tasks.held)
        self.register.held.listen(starts.start)
        self._events = 0

    async def ask(self, text: str, sender: str = OPERATOR, event: str | None = None) -> str:
        """What the router answers ``text`` (the last message, if several); ``event``: its
        event's id (an operator schedule's runs are ``schedule:<id>:<when>``)."""
        self._events += 1
        msg = message(text, sender=sender, room=ROOM, event_id=event or f"$e{self._events}")
        await self.router.handle(self.chat, msg)
        assert self.chat.sent, f"no answer to {text!r}"
        said = self.chat.sent[-1].markdown
        self.chat.sent.clear()
        return said

    async def finish(self, task_ref: str, tokens: int = 4000, usd: float | None = 0.04) -> None:
        """The run of the task ``task_ref`` names ends, having used ``tokens``."""
        task = await self.register.find(task_ref)
        self.clock.advance(5)
        since = (self.clock.now() - T0).total_seconds()
        await self.ledger.metering.record_metering([used(since, tokens, usd)], [])
        self.clock.advance(5)
        await self.fleet.end(AGENT, task.runs[-1], "finished")
        await self.register.settled()  # what waited for it started


@pytest.fixture
def tasks_rig(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> Rig:
    return Rig(ledger, clock, tmp_path)


async def test_a_task_is_made_started_and_done_as_its_run_ends(tasks_rig: Rig) -> None:
    made = await tasks_rig.ask(f"!task new --agent {AGENT} Fix the login page")
    assert made.startswith("Task #1 fix-the-login-page made: no projection yet: no finished")
    started = await tasks_rig.ask("!task start 1")
    assert "Task #1 fix-the-login-page · no projection yet" in started
    assert (await tasks_rig.register.find("1")).state == "working"
    await tasks_rig.finish("1")
    story = await tasks_rig.ask("!task fix-the-login-page", sender=VIEWER)
    assert story.startswith("**Task #1 fix-the-login-page** · done")
    assert f"agent {AGENT} · runtime claude" in story
    assert "actual 4,000 tokens, $0.04" in story and "- run 1 ·" in story
    assert "finished" in story and f"asked by {OPERATOR}" in story


async def test_the_projection_comes_from_finished_tasks_and_is_said(tasks_rig: Rig) -> None:
    for n in range(3):
        await tasks_rig.ask(f"!task new --agent {AGENT} Job {n}")
        await tasks_rig.ask(f"!task start {n + 1}")
        await tasks_rig.finish(str(n + 1), tokens=1000 * (n + 1), usd=0.1 * (n + 1))
    made = await tasks_rig.ask(f"!task new --agent {AGENT} One more")
    assert made.startswith(
        f"Task #4 one-more made: projected $0.20 (p90 $0.28) from 3 past tasks (agent {AGENT}"
    )
    listed = await tasks_rig.ask("!tasks", sender=VIEWER)
    assert listed.splitlines()[0] == "Tasks: 1 open, 3 ended"
    assert f"- #4 one-more · todo · {AGENT} · $0.20→0 tok" in listed
    assert f"- #1 job-0 · done · {AGENT} · –→$0.10" in listed
    assert f"- #3 job-2 · done · {AGENT} · $0.15→$0.30" in listed  # as projected then


async def test_a_waiting_task_starts_by_itself_where_it_was_asked(tasks_rig: Rig) -> None:
    assert (await tasks_rig.ask("!mission new release-2 Ship it")).startswith(
        "Mission release-2 made"
    )
    await tasks_rig.ask(f"!task new --agent {AGENT} --mission release-2 First")
    made = await tasks_rig.ask(f"!task new --agent {AGENT} --mission release-2 --after 1 Second")
    assert made.startswith("Task #2 second made")
    held = await tasks_rig.ask("!task start second")
    assert held == "Task #2 second waits for #1 first (todo): it starts here once that is done."
    assert (await tasks_rig.register.find("2")).state == "queued"
    await tasks_rig.ask("!task start 1")
    mission = await tasks_rig.ask("!mission release-2", sender=VIEWER)
    assert "0 of 2 done" in mission and "Tasks: 1 queued, 1 working" in mission
    await tasks_rig.finish("1")
    (told,) = tasks_rig.chat.sent
    assert told.markdown.startswith("What task #2 waited for is done; started now:")
    assert "Task #2 second ·" in told.markdown
    second = await tasks_rig.register.find("2")
    assert second.state == "working" and len(second.runs) == 1
    tasks_rig.chat.sent.clear()
    assert "1 of 2 done" in await tasks_rig.ask("!mission release-2")
    story = await tasks_rig.ask("!task 2")
    assert "Waits for: #1 first (done)" in story and "mission release-2" in story


async def test_a_held_start_is_the_registers_request_audited_as_its_asker(tasks_rig: Rig) -> None:
    """The start of a task whose wait is over is the launch the register built for its
    asker, carried out as ``task start`` of it and audited ``task:<id>`` as them."""
    await tasks_rig.ask(f"!task new --agent {AGENT} First")
    await tasks_rig.ask(f"!task new --agent {AGENT} --after 1 Second")
    await tasks_rig.ask("!task start 2")
    await tasks_rig.ask("!task start 1")
    await tasks_rig.finish("1")
    assert tasks_rig.chat.sent[0].markdown.startswith(
        "What task #2 waited for is done; started now:"
    )
    assert (await tasks_rig.register.find("2")).state == "working"
    entry = (await tasks_rig.ledger.audit.audit_entries())[0]
    assert (entry.source, entry.command, entry.outcome) == ("task:2", "task start", "ok")
    assert (entry.sender, entry.room, entry.text) == (OPERATOR, ROOM, "task start 2")


async def test_a_held_start_whose_asker_may_no_longer_change_the_fleet_is_refused(
    tasks_rig: Rig,
) -> None:
    """The ACL as of now: an asker who is now a viewer starts nothing; the refusal is
    audited ``denied``, said in their room, and the task is back to ``todo``."""
    await tasks_rig.ask(f"!task new --agent {AGENT} First")
    await tasks_rig.ask(f"!task new --agent {AGENT} --after 1 Second")
    await tasks_rig.ask("!task start 2")
    where = {"connector": tasks_rig.chat.name, "room": ROOM, "thread": None, "sender": VIEWER}
    await tasks_rig.ledger.tasks.set_fields(2, asked_in=json.dumps(where))  # a viewer by now
    await tasks_rig.ask("!task start 1")
    await tasks_rig.finish("1")
    (told,) = tasks_rig.chat.sent
    assert f"not run: {VIEWER} set this up and is now a viewer" in told.markdown
    second = await tasks_rig.register.find("2")
    assert second.state == "todo" and "`task start 2` starts it" in second.why
    entry = (await tasks_rig.ledger.audit.audit_entries())[0]
    assert (entry.source, entry.command, entry.outcome) == ("task:2", "task start", "denied")


async def test_sub_missions_sum_into_their_mission(tasks_rig: Rig) -> None:
    await tasks_rig.ask("!mission new big The big one")
    made = await tasks_rig.ask("!mission new small --in big")
    assert made.startswith("Mission small made, part of big.")
    await tasks_rig.ask(f"!task new --agent {AGENT} --mission small Inner")
    await tasks_rig.ask(f"!task new --agent {AGENT} --mission big Outer")
    shown = await tasks_rig.ask("!mission big")
    assert shown.startswith("**Mission big** — The big one\n0 of 2 done")
    assert "\n\nSub-missions:\n- small: 0 of 1 done" in shown
    listed = await tasks_rig.ask("!missions", sender=VIEWER)
    assert "- small (in big): 0 of 1 done" in listed and "- big: 0 of 2 done" in listed
    only = await tasks_rig.ask("!tasks --mission small")
    assert "#1 inner" in only and "#2 outer" not in only


async def test_done_and_cancel_end_a_task_and_stop_its_run(tasks_rig: Rig) -> None:
    await tasks_rig.ask(f"!task new --agent {AGENT} Busy")
    await tasks_rig.ask("!task start 1")
    cancelled = await tasks_rig.ask("!task cancel 1")
    assert cancelled.startswith("Task #1 busy is cancelled.")
    assert f"{AGENT}'s run of it was stopped." in cancelled
    assert AGENT not in tasks_rig.fleet.running
    await tasks_rig.ask(f"!task new --agent {AGENT} Quick")
    done = await tasks_rig.ask("!task done #2")
    assert done == "Task #2 quick is done. It cost 0 tokens."
    assert "already ended: done" in await tasks_rig.ask("!task done 2")
    again = await tasks_rig.ask("!task start 2")
    assert again == "task #2 quick is done: `task new` makes another to do again"
    ended = await tasks_rig.ask("!tasks --state ended")
    assert ended.startswith("Tasks (ended): 0 open, 2 ended")


async def test_task_new_takes_its_flags_before_or_after_the_title(tasks_rig: Rig) -> None:
    """`task new TITLE --agent A --mission M` (the order people type) and `task new --agent
    A TITLE` make the same task; after `--` flag-like words are the title's."""
    await tasks_rig.ask("!mission new m")
    await tasks_rig.ask(f"!task new Fix the login --agent {AGENT} --mission m")
    await tasks_rig.ask(f"!task new --agent {AGENT} --mission m Fix the login")
    await tasks_rig.ask(f"!task new --agent {AGENT} -- Drop --mission from the docs")
    first, second, third = await tasks_rig.ledger.tasks.tasks()
    for task in (first, second):
        assert (task.title, task.agent, task.mission is not None) == ("Fix the login", AGENT, True)
    assert (third.title, third.mission) == ("Drop --mission from the docs", None)


async def test_a_mistyped_subcommand_that_names_no_task_says_the_one_meant(tasks_rig: Rig) -> None:
    """`task nwe` (no task so named) says it names no task, and that `task new` is near."""
    said = await tasks_rig.ask("!task nwe")
    assert said.startswith("no task 'nwe'") and said.endswith("or did you mean `task new`?")


async def test_a_spawn_with_a_prompt_says_its_task(tasks_rig: Rig) -> None:
    said = await tasks_rig.ask(f'!spawn {AGENT} --prompt "tidy the README"')
    assert "Task #1 tidy-the-readme · no projection yet" in said
    await tasks_rig.ask(f"!spawn {AGENT}")  # no prompt: no task
    assert len(await tasks_rig.ledger.tasks.tasks()) == 1


async def test_a_schedules_spawn_with_a_prompt_is_a_task_of_the_schedule(tasks_rig: Rig) -> None:
    await tasks_rig.ask(
        f'!spawn {AGENT} --prompt "nightly: bump deps"', event="schedule:7:2026-11-26"
    )
    [task] = await tasks_rig.ledger.tasks.tasks()
    assert (task.source, task.source_ref, task.title) == ("schedule", "7", "nightly: bump deps")
    assert (await tasks_rig.ask("!task 1")).count("schedule") >= 1


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("!task 404", "no task '404': `tasks` lists them"),
        ("!task <b>x</b>", "no task \\<b\\>x\\</b\\>: `tasks` lists them by number and name"),
        ("!task start 404", "no task '404'"),
        ("!task new --mission nope Fix", "no mission 'nope': `mission new nope` makes it"),
        ("!task new --mission B@D Fix", "no mission B@D: `missions` lists them"),
        ("!task new --agent Bad_Name Fix", "invalid agent name Bad\\_Name: use 1-32"),
        ("!task new --after 9 Fix", "no task '9': `tasks` lists them"),
        ("!task new --after , Fix", "--after names no task: give numbers or names"),
        ("!task new Fix it --agnet coder", "unknown flag '--agnet' (did you mean '--agent'?"),
        ("!task new --repo app Fix", "no repositories"),
        ("!mission nope", "no mission 'nope': `mission new nope` makes it"),
        ("!mission new Bad!", "invalid mission name 'Bad!'"),
        ("!mission new new", "'new' cannot be a mission's name"),
        ("!mission new m --in nope", "no mission 'nope'"),
        ("!tasks --state nope", "--state must be one of open, ended, todo"),
    ],
)
async def test_bad_input_is_answered_with_the_fix(tasks_rig: Rig, text: str, answer: str) -> None:
    said = await tasks_rig.ask(text)
    assert answer.lower() in said.lower(), said


async def test_a_task_without_an_agent_says_how_to_give_it_one(tasks_rig: Rig) -> None:
    await tasks_rig.ask("!task new Nobody does it")
    said = await tasks_rig.ask("!task start 1")
    assert said == "task #1 nobody-does-it has no agent: `task start 1 --agent NAME` gives it one"
    started = await tasks_rig.ask(f"!task start 1 --agent {AGENT}")
    assert "Task #1 nobody-does-it" in started
    assert (await tasks_rig.register.find("1")).agent == AGENT


async def test_a_mission_name_is_made_once(tasks_rig: Rig) -> None:
    await tasks_rig.ask("!mission new m")
    assert await tasks_rig.ask("!mission new m") == "mission m exists: `mission m` shows it"


async def test_viewers_see_and_operators_change(tasks_rig: Rig) -> None:
    denied = await tasks_rig.ask("!task new Fix", sender=VIEWER)
    assert "operator" in denied and await tasks_rig.register.board() == []
    assert "operator" in await tasks_rig.ask("!mission new m", sender=VIEWER)
    assert (await tasks_rig.ask("!tasks", sender=VIEWER)).startswith("Tasks: none.")
    assert (await tasks_rig.ask("!missions", sender=VIEWER)).startswith("No missions.")


async def test_hostile_titles_and_bodies_are_plain_text(tasks_rig: Rig) -> None:
    body = "line <i>one</i> ``` @room " + "y" * 10_000
    await tasks_rig.ask(f'!task new --agent {AGENT} --body "{body}" {HOSTILE}')
    task = await tasks_rig.register.find("1")
    assert task.body == body
    for text in (await tasks_rig.ask("!task 1"), await tasks_rig.ask("!tasks")):
        assert "<b>" not in text and "[click](" not in text and "```" not in text
        assert "**x**" not in text and len(text) < 2000
    story = await tasks_rig.ask("!task 1")
    assert "\\<b\\>bold\\</b\\>" in story and "\\[click\\]" in story
    assert "more characters" in story  # the body clipped
    made = await tasks_rig.register.new(NewTask(HOSTILE, "chat", "x", agent=AGENT))
    waited = await tasks_rig.ask(f"!task new --after {made.id} Next")
    assert waited.startswith("Task #3 next made")


async def test_mission_add_puts_tasks_made_elsewhere_in_a_mission(tasks_rig: Rig) -> None:
    await tasks_rig.ask("!mission new release Ship it")
    await tasks_rig.ask(f"!task new --agent {AGENT} First")
    await tasks_rig.ask(f"!task new --agent {AGENT} Second")
    added = await tasks_rig.ask("!mission add release 1,second")
    assert added.startswith("Mission release now has #1 first, #2 second")
    assert (await tasks_rig.ask("!mission release")).startswith(
        "**Mission release** — Ship it\n0 of 2"
    )
    assert "no task" in await tasks_rig.ask("!mission add release 1,99")
    assert "no mission" in await tasks_rig.ask("!mission add nowhere 1")
    assert "names no task" in await tasks_rig.ask("!mission add release ,")
    denied = await tasks_rig.ask("!mission add release 1", sender=VIEWER)
    assert "mission add" in denied and "Mission release now has" not in denied


async def test_a_spawn_of_a_running_agent_opens_no_task(tasks_rig: Rig) -> None:
    """A spawn with a prompt of an agent that runs starts nothing, so it opens no task for
    the run that never starts; the agent's task goes on."""
    await tasks_rig.ask(f'!spawn {AGENT} --prompt "first"')
    again = await tasks_rig.ask(f'!spawn {AGENT} --prompt "second"')  # it runs already
    assert "already" in again and "Task #2" not in again
    assert [task.id for task in await tasks_rig.ledger.tasks.tasks()] == [1]
    assert (await tasks_rig.register.find("1")).state == "working"


async def test_task_tasks_and_mission_answer_with_the_registers_rows_as_data(
    tasks_rig: Rig,
) -> None:
    """From a shell, ``task``, ``tasks`` and ``mission`` answer with data: each task as
    ``fleetwarden tasks --json`` has it, the mission with its tasks; never the text."""
    answers = ShellAnswers(tasks_rig.router, lambda: OPERATOR, tasks_rig.clock)
    assert (await answers("mission new auth Sign-in work")).exit == EXIT_OK
    await tasks_rig.ask(f"!task new --agent {AGENT} --mission auth Fix the login page")
    await tasks_rig.ask("!task start 1")
    await tasks_rig.finish("1")

    one = await answers("task 1")
    assert one.exit == EXIT_OK and one.data is not None
    row = one.data["task"]
    assert isinstance(row, dict)
    assert (row["id"], row["name"], row["state"], row["mission"]) == (
        1,
        "fix-the-login-page",
        "done",
        "auth",
    )
    assert (row["actual_tokens"], row["agent"], row["runs"]) == (4000, AGENT, 1)
    listed = await answers("tasks --state ended")
    assert listed.data == {"tasks": [row]}
    mission = await answers("mission auth")
    assert mission.data is not None and mission.data["tasks"] == [row]
    assert mission.data["mission"] == {
        "id": 1,
        "name": "auth",
        "title": "Sign-in work",
        "parent": None,
        "created_by": f"{OPERATOR} on shell",
        "created_at": T0.isoformat(),
    }
