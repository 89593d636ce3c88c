"""The command specs of the work register: ``task`` (and ``task new|start|done|cancel``),
``tasks``, ``mission`` (and ``mission new``) and ``missions``; their help texts."""

from __future__ import annotations

from typing import Final

from bot.commands.parsing.grammar import ArgSpec, CommandSpec, FlagSpec
from fleet.ledger.records.tasks import TASK_STATES

STATE_CHOICES: Final = ("open", "ended", *TASK_STATES)
"""What ``tasks --state`` takes: every state, or ``open`` / ``ended`` for several."""
_TASK = ArgSpec("TASK", "The task: its number (`12` or `#12`) or its name (`fix-login`).")
_MISSION_NAME = (
    "Mission names are 1-32 characters: lowercase letters, digits and '-', starting with a letter."
)

TASK_NEW = CommandSpec(
    name="new",
    summary="Make a task, with what it is projected to cost.",
    args=(ArgSpec("TITLE", "What is to be done: the rest of the line.", rest=True),),
    flags=(
        FlagSpec("agent", "str", "The agent that does it (its name); or at `task start`.", "A"),
        FlagSpec("repo", "str", "The repository of the config's `repos:` it is done on.", "REPO"),
        FlagSpec("mission", "str", "The mission it is part of (`missions`).", "M"),
        FlagSpec(
            "after",
            "str",
            "The tasks it waits for, by number or name, comma-separated (`3,fix-login`): "
            "started, it is held until they are done.",
            "TASKS",
        ),
        FlagSpec("body", "str", "More on what is to be done; quote it.", "TEXT"),
    ),
    control=True,
    description=(
        "Makes a task in the register and says its projection, kept from then on: the "
        "median and p90 of what finished tasks of its kind cost (the same agent, runtime "
        "and repository, else the nearest kind with history), and how many it was reckoned "
        "from. Flags may stand before or after the title (`--` ends them: what follows is "
        "title, as typed). `task start` gives it to its agent."
    ),
    examples=(
        "task new --agent coder --repo app Fix the login page",
        "task new --agent coder --after 3 --mission release-2 Write the release notes",
        "task new Fix the login page --agent coder --mission release-2",
    ),
)

TASK_START = CommandSpec(
    name="start",
    summary="Give a task to its agent: a run through the same admission as `spawn`.",
    args=(_TASK,),
    flags=(
        FlagSpec("agent", "str", "The agent that does it (needed when the task names none).", "A"),
    ),
    control=True,
    description=(
        "Starts the task's agent with the task as its prompt, on the task's repository, "
        "through the budgets, caps and queue every `spawn` passes; its runs and their "
        "metered spend are the task's. A task that waits for others (`--after`) is held "
        "until they are done, then started here by itself, as you. A failed task, or one "
        "in review, may be started again."
    ),
    examples=("task start 12", "task start fix-login --agent coder-2"),
)

TASK_DONE = CommandSpec(
    name="done",
    summary="Mark a task done: what it cost is kept, the tasks waiting for it start.",
    args=(_TASK,),
    control=True,
    description=(
        "Ends the task as done, keeping what its runs cost and how far its projection was "
        "off; the tasks that wait for it start, where their start was asked for."
    ),
    examples=("task done 12",),
)

TASK_CANCEL = CommandSpec(
    name="cancel",
    summary="Cancel a task: it will not be done.",
    args=(_TASK,),
    control=True,
    description=(
        "Ends the task as cancelled. A run of it that is going on is not stopped (`stop "
        "AGENT` stops it); the tasks waiting for it are told and stay held until cancelled "
        "in turn."
    ),
    examples=("task cancel 12",),
)

TASK = CommandSpec(
    name="task",
    summary="Tell a task's story; make, start, finish or cancel one.",
    args=(_TASK,),
    description=(
        "`task TASK` tells the task: its state and why, where it came from and who asked, "
        "its mission, agent and repository, what it waits for, its runs and how each "
        "ended, its spend projected against its actual (tokens exact), its branch and "
        "pull request. `task new`, `task start`, `task done` and `task cancel` need the "
        "operator role."
    ),
    examples=("task 12", "task new --agent coder Fix the login page"),
    subcommands=(TASK_NEW, TASK_START, TASK_DONE, TASK_CANCEL),
)

TASKS = CommandSpec(
    name="tasks",
    summary="List the tasks: open ones first, then the latest ended.",
    flags=(
        FlagSpec("mission", "str", "Only this mission's tasks (and its sub-missions').", "M"),
        FlagSpec(
            "state",
            "str",
            "Only the tasks in this state; `open` or `ended` for several.",
            "S",
            choices=STATE_CHOICES,
        ),
    ),
    description=(
        "One line a task: its number and name, state, agent, and its projected median "
        "against what its runs cost so far. The open ones all; of the ended, the latest "
        "few and how many more."
    ),
    examples=("tasks", "tasks --mission release-2 --state open"),
)

MISSION_NEW = CommandSpec(
    name="new",
    summary="Make a mission: a group of tasks, and of missions.",
    args=(
        ArgSpec("NAME", "Its name, e.g. `release-2`."),
        ArgSpec("TITLE", "What it is for: the rest of the line.", required=False, rest=True),
    ),
    flags=(
        FlagSpec("in", "str", "The mission it is part of.", "PARENT"),
        FlagSpec(
            "pipeline",
            "str",
            "Make it from a pipeline of the config's `pipelines:`: a task per stage, the "
            "first started now, each next one once the stages it waits for pass their gates.",
            "P",
        ),
    ),
    control=True,
    description=(
        "`task new --mission NAME` puts a task in it. With `--pipeline P`, its tasks are the "
        "pipeline's stages, started one after another through their gates; `mission NAME` "
        "shows them. " + _MISSION_NAME
    ),
    examples=(
        "mission new release-2 Ship the second release",
        "mission new docs --in release-2",
        "mission new login --pipeline ship Fix the login page",
    ),
)

_STAGE = ArgSpec(
    "STAGE",
    "The stage answered, as the ask's notice names it (needed when more than one asks).",
    required=False,
)

MISSION_APPROVE = CommandSpec(
    name="approve",
    summary="Pass the gate of a pipeline's stage that asks an operator: the next stage starts.",
    args=(ArgSpec("NAME", "The mission's name."), _STAGE),
    control=True,
    description=(
        "The stage named — whose gate is `approve` and whose work is over — passes it. "
        "With no stage named, the one stage asking does; when several ask, name one."
    ),
    examples=("mission approve login plan", "mission approve login"),
)

MISSION_DENY = CommandSpec(
    name="deny",
    summary="Refuse the gate of a pipeline's stage that asks an operator: the mission stops.",
    args=(ArgSpec("NAME", "The mission's name."), _STAGE),
    control=True,
    description=(
        "The stage named (none named: the one asking) fails; the other stages still open "
        "are cancelled, their runs stopped, and the later ones never start."
    ),
    examples=("mission deny login plan", "mission deny login"),
)

MISSION_ADD = CommandSpec(
    name="add",
    summary="Put tasks in a mission (a forge issue's task, or one made without --mission).",
    args=(
        ArgSpec("NAME", "The mission's name."),
        ArgSpec("TASKS", "The tasks, by number or name, comma-separated: `3,fix-login`."),
    ),
    control=True,
    description="A task is in one mission at a time: one in another moves to this one.",
    examples=("mission add release-2 3,fix-login",),
)

MISSION = CommandSpec(
    name="mission",
    summary="Show a mission: its progress, spend, tasks and sub-missions; or make one.",
    args=(ArgSpec("NAME", "The mission's name, e.g. `release-2`."),),
    description=(
        "Its title, progress (`2 of 3 done`), the sums of its tasks' projections against "
        "what they cost, its tasks by state and each sub-mission with its own totals; made "
        "from a pipeline, its stages with their tasks and gates. `mission new`, `mission "
        "add`, `mission approve` and `mission deny` need the operator role."
    ),
    examples=("mission release-2", "mission new release-2 Ship the second release"),
    subcommands=(MISSION_NEW, MISSION_ADD, MISSION_APPROVE, MISSION_DENY),
)

MISSIONS = CommandSpec(
    name="missions",
    summary="List the missions, each with its progress and spend.",
    description=(
        "The newest missions, each with its progress (`2 of 3 done`) and the sums of its "
        "tasks' projections against what they cost, its sub-missions' tasks included."
    ),
    examples=("missions",),
)
