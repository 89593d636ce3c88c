"""The specs of the agent commands handled here (`forget`, `freeze`, `stop`, `msgs`,
`restart`, `resume`, `logs`, `runs`): their words, help and flags, without their
handlers, so that the command table loads without them."""

from __future__ import annotations

from typing import Final

from bot.commands.parsing.grammar import ArgSpec, CommandSpec, FlagSpec

FORGET = CommandSpec(
    name="forget",
    summary="Take an ended agent out of `ps`; its runs and usage stay for reports.",
    args=(ArgSpec("NAME", "The agent, as `ps` shows it; it must not be running.", agent=True),),
    control=True,
    admin_only=True,
    description=(
        "For an agent that has ended (exited, failed or stopped), typically one a `roster "
        "reload` removed: `ps` and the watchdog no longer see it. Its runs, usage and audit "
        "trail stay in the ledger, and `usage` and the reports still count them. An agent "
        "still running or starting is refused: `stop NAME` first. A later `spawn NAME` "
        "starts it afresh. The rules `always` answers taught it are forgotten too."
    ),
    examples=("forget old-coder",),
)


FREEZE = CommandSpec(
    name="freeze",
    summary="Pause an agent's processes now, or every running agent's (admin).",
    args=(
        ArgSpec("NAME", "The agent, or `all` for every running agent (asks first).", agent=True),
    ),
    flags=(FlagSpec("reason", "str", "Why, for `ps` and the audit trail; quote it.", "TEXT"),),
    control=True,
    admin_only=True,
    description=(
        "Freezes the agent's control group with the kernel's freezer (or, where it has "
        "none, sends SIGSTOP to every process of its run: in a sandbox, every process of "
        "its namespace), at once and whatever its budget says. The freeze is recorded with "
        "who froze it and why: `ps` shows it, the watchdog leaves the agent alone, and no "
        "budget reset lifts it; `resume NAME` (admin) continues it. `freeze all` first "
        "names the agents it would pause and acts only on your `yes` in the same place "
        "within 60 s."
    ),
    examples=('freeze coder-1 --reason "pushing to the wrong branch"', "freeze all"),
)


STOP = CommandSpec(
    name="stop",
    summary="Stop an agent, or every agent (`stop all`, admin).",
    args=(
        ArgSpec("NAME", "The agent's name, e.g. `coder-1`; or `all` for every agent.", agent=True),
    ),
    flags=(FlagSpec("force", "bool", "Kill at once with SIGKILL instead of asking first."),),
    control=True,
    description=(
        "Sends SIGTERM to the agent's whole process group, so whatever it started stops "
        "too, then SIGKILL if it is still there after the grace period. `--force` sends "
        "SIGKILL at once. The watchdog restarts no agent an operator stopped. `stop all` "
        "(admin) stops every running agent and every one waiting for a restart, together, "
        "and first empties the spawn queue so nothing starts in their place; it names "
        "them and acts only on your `yes` in the same place within 60 s."
    ),
    examples=("stop coder-1 --force", "stop all"),
)


DEFAULT_LIMIT: Final = 20


MOST: Final = 200


MSGS = CommandSpec(
    name="msgs",
    summary="List the recent messages between agents, or one agent's.",
    args=(
        ArgSpec(
            "NAME",
            "The agent whose messages to list, sent and received; leave it out for all.",
            required=False,
        ),
    ),
    flags=(
        FlagSpec(
            "limit",
            "int",
            f"How many messages to show, 1-{MOST} (default {DEFAULT_LIMIT}).",
            "N",
            minimum=1,
            maximum=MOST,
        ),
    ),
    description=(
        "What agents said to each other with `fw-msg`, newest last: each message's number, "
        "when it was sent (UTC), who sent it to whom, what it was (a message, a task handed "
        "on, a review's verdict), its receipt — queued, delivered into the receiver's "
        "session, or refused and why — and its text, cut to one line. Refused messages are "
        "listed too: every message is kept in the ledger. Texts are the agents' own, "
        "redacted when they were sent."
    ),
    examples=("msgs", "msgs coder-1 --limit 50"),
)


RESTART = CommandSpec(
    name="restart",
    summary="Stop an agent and start it again; `restart all` (admin) restarts each in turn.",
    args=(
        ArgSpec(
            "NAME", "The agent's name, e.g. `coder-1`; or `all` for every live agent.", agent=True
        ),
    ),
    flags=(
        FlagSpec("force", "bool", "With `all`: restart agents mid-turn too."),
        FlagSpec("only", "str", "With `all`: only the agents idle now.", "idle", choices=("idle",)),
    ),
    control=True,
    description=(
        "Stops the agent as `stop` does (SIGTERM, then SIGKILL after the grace period), then "
        "starts it again with the runtime, model, prompt and directory it was spawned with. "
        "`restart all` (admin) restarts every live agent one at a time, each back (running "
        "or idle) before the next, within 60 s; an agent mid-turn (running) when its turn "
        "comes is skipped and named, unless `--force`; `--only idle` restarts only the "
        "agents idle (waiting for input) when their turn comes. It names them and acts only "
        "on your `yes` in the same place within 60 s, and only on the agents it named. A "
        "frozen agent is left alone and named, even with `--force`: `resume NAME` first. "
        "The restarts go on while the room answers other commands; `stop all` or `freeze "
        "all` cancels them. Its summary, posted there when done, lists what it restarted, "
        "what it skipped and what it could not restart."
    ),
    examples=("restart coder-1", "restart all --only idle"),
)


RESUME = CommandSpec(
    name="resume",
    summary="Continue a frozen agent, or every frozen agent.",
    args=(ArgSpec("NAME", "The frozen agent, as `ps` shows it, or `all`.", agent=True),),
    control=True,
    description=(
        "Continues (SIGCONT) the processes a freeze paused and says whose freeze it lifted. "
        "A budget with `cutoff: freeze` pauses its agents when it reaches its limit and "
        "continues them when its window resets; `resume` continues one now, but its budget "
        "is still at its limit, so its model requests are still refused until the reset, a "
        "higher limit (`budget set`) or a burst. A freeze an admin made with `freeze` lasts "
        "until `resume`; lifting it, and `resume all`, need the admin role."
    ),
    examples=("resume coder-1", "resume all"),
)


_AGENT = ArgSpec("NAME", "The agent's name, e.g. `coder-1`.", agent=True)


LOGS = CommandSpec(
    name="logs",
    summary="Show what an agent did lately, as readable lines (or its raw output).",
    args=(_AGENT,),
    flags=(
        FlagSpec(
            "lines",
            "int",
            "How many entries (or raw lines) to show, 1-10000 (default 40).",
            "N",
            minimum=1,
            maximum=10000,
        ),
        FlagSpec("raw", "bool", "Show the raw output, exactly as the agent wrote it."),
    ),
    description=(
        "Shows the agent's latest work read from its output: its messages, one line per "
        "tool it used, what it waits for and its errors — the last 40 entries unless "
        "`--lines` says otherwise. `--raw` shows the last lines as written instead (a "
        "headless CLI's JSON stream). Secrets are redacted either way."
    ),
    examples=("logs coder-1 --lines 200", "logs coder-1 --raw"),
)


RUNS = CommandSpec(
    name="runs",
    summary="List an agent's latest runs, each with its summary.",
    args=(_AGENT,),
    flags=(
        FlagSpec(
            "last",
            "int",
            "How many runs to show, 1-20 (default 5).",
            "N",
            minimum=1,
            maximum=20,
        ),
    ),
    description=(
        "Each run with how it ended and why, its wall time, turns, the model requests, "
        "tokens and cost Fleetwarden metered, what it was quoted when it was admitted, its "
        "task's projection beside its actual, the "
        "models that served it (downgrades included), its last message, and its workdir "
        "with the git HEAD before and after; then its latest calls through the MCP door "
        "(server, tool, outcome, time, bytes, price), each with its run."
    ),
    examples=("runs coder-1", "runs coder-1 --last 10"),
)
