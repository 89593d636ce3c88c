"""The specs of `queue`, `cancel` and `schedule`: their words, help and flags, without
their handlers."""

from __future__ import annotations

from bot.commands.parsing.grammar import ArgSpec, CommandSpec

QUEUE = CommandSpec(
    name="queue",
    summary="List the launches waiting for a free slot or for their budget, and why.",
    description=(
        "A `spawn` beyond a concurrency cap (`limits.max_running`, or `max_running` on an "
        "account or a budget) waits here, as does one a queued budget deferred. Each entry "
        "shows its number, place, agent, runtime, who asked, why it waits, since when and "
        "(when deferred) not before when. Entries start oldest first when a slot frees, as "
        "the person who asked, in the room they asked in; they survive a restart. Forge "
        "runs waiting to start (their agent works on another issue, a concurrency cap is full, "
        "or a budget holds them) "
        "are listed after them: the issue, the agent, why it waits and since when; each "
        "starts by itself when it is let (`forge` lists every forge run)."
    ),
    examples=("queue",),
)


CANCEL = CommandSpec(
    name="cancel",
    summary="Drop a waiting launch from the queue.",
    args=(ArgSpec("ID", "The entry's number as `queue` shows it, or an agent's name."),),
    control=True,
    description=(
        "Removes the entry, or every entry waiting for that agent: it will not start. An "
        "entry being started at this moment can no longer be cancelled."
    ),
    examples=("cancel 3", "cancel coder-2"),
)


SCHEDULE_ADD = CommandSpec(
    name="add",
    summary="Run a command at set times, as you, until the schedule is removed.",
    args=(
        ArgSpec(
            "CRON",
            'When to run it: a crontab expression in quotes, e.g. "0 2 * * *" — minute, hour, '
            "day of month, month, day of week.",
        ),
        ArgSpec(
            "COMMAND",
            "The command to run, as you would type it: the rest of the line.",
            rest=True,
        ),
    ),
    control=True,
    admin_only=True,
    description=(
        "COMMAND is checked now — it must be a command you may run, and not `schedule` "
        "itself — and saved with CRON. At each time CRON names, in the configured "
        "`timezone` (UTC unless set), COMMAND runs as if you typed it then, in this room: "
        "your role is looked up again, and if you are no longer an admin or operator the "
        "run is refused; either way it is in the audit trail as yours, from the schedule. "
        "Schedules survive restarts; a run missed while Fleetwarden was down is made up at "
        "start if it was due in the last 5 minutes. As in crontab, 0 and 7 are Sunday; "
        "giving both a day of month and a day of week is refused (make two schedules)."
    ),
    examples=(
        'schedule add "0 2 * * *" spawn reviewer --prompt "review yesterday\'s merges"',
        'schedule add "*/30 9-17 * * mon-fri" ps',
    ),
)


SCHEDULE_LIST = CommandSpec(
    name="list",
    summary="List the schedules: what runs when, and how the last run went.",
    description=(
        "Each schedule's id, crontab expression, command, who set it up, its next run "
        "(in the configured `timezone`) and its last run with the outcome."
    ),
    examples=("schedule list",),
)


SCHEDULE_REMOVE = CommandSpec(
    name="remove",
    summary="Remove a schedule: its command no longer runs.",
    args=(ArgSpec("ID", "The schedule's number, as `schedule list` shows it."),),
    control=True,
    admin_only=True,
    description="A run already under way finishes; no later one starts.",
    examples=("schedule remove 3",),
)


SCHEDULE = CommandSpec(
    name="schedule",
    summary="List the schedules; add or remove one.",
    description=(
        "Without a subcommand, the same as `schedule list`. `schedule add` and "
        "`schedule remove` need the admin role."
    ),
    examples=("schedule", 'schedule add "0 9 * * mon" usage --window 7d'),
    subcommands=(SCHEDULE_ADD, SCHEDULE_LIST, SCHEDULE_REMOVE),
)
