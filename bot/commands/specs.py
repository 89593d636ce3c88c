"""The command table operators type (its help is rendered by :mod:`bot.commands.help`)."""

from __future__ import annotations

from bot.commands.handlers.agents.roster_specs import ROSTER_ADD, ROSTER_REMOVE, ROSTER_SET
from bot.commands.handlers.agents.spawn.specs import REPO_FLAGS
from bot.commands.handlers.agents.specs import (
    FORGET,
    FREEZE,
    LOGS,
    MSGS,
    RESTART,
    RESUME,
    RUNS,
    STOP,
)
from bot.commands.handlers.approvals.specs import (
    ANSWER,
    APPROVE,
    DENY,
    INTERRUPT,
    PENDING,
    PERMISSIONS,
)
from bot.commands.handlers.launches.specs import CANCEL, QUEUE, SCHEDULE
from bot.commands.handlers.places.repo_specs import BRANCHES, DIFF, DISCARD, MERGE, PUSH
from bot.commands.handlers.places.specs import EGRESS, FORGE, HOSTS, PR
from bot.commands.handlers.specs import DASHBOARD, VERIFY
from bot.commands.handlers.spend.specs import ACCOUNTS, BUDGET, RAISE
from bot.commands.handlers.work.specs import MISSION, MISSIONS, TASK, TASKS
from bot.commands.parsing.grammar import ArgSpec, CommandSpec, FlagSpec
from fleet.budgets.pacing.report_windows import DEFAULT_WINDOW, WINDOWS
from fleet.permissions.config import MODES

DEFAULT_SINCE = "30d"
"""How far back ``report changes`` looks unless told."""
_NAME_RULE = "Names are 1-32 characters: lowercase letters, digits and '-', starting with a letter."
_AGENT = ArgSpec("NAME", "The agent's name, e.g. `coder-1`.", agent=True)
_NEW_AGENT = ArgSpec("NAME", "The agent's name, e.g. `coder-1`.")  # spawn makes one

HELP = CommandSpec(
    name="help",
    summary="List the commands, or explain one.",
    args=(
        ArgSpec(
            "COMMAND",
            "The command to explain, e.g. `spawn`; leave it out to list every command.",
            required=False,
            rest=True,
        ),
    ),
    description=(
        "Without a command, lists every command with what it does. With one, shows its "
        "usage, arguments, flags and examples."
    ),
    examples=("help", "help spawn"),
)

PS = CommandSpec(
    name="ps",
    summary="List the agents and what each is doing.",
    description=(
        "Shows every agent Fleetwarden knows about with its runtime and state: starting, "
        "running, idle, stalled, or ended (exited, failed, stopped); and the tokens its "
        "model requests used since local midnight (`usage` has the details). An agent a "
        "`roster reload` removed is marked `not in roster`: the watchdog no longer restarts "
        "it, and once it has ended `forget NAME` takes it off the list."
    ),
    examples=("ps",),
)

SPAWN = CommandSpec(
    name="spawn",
    summary="Start an agent.",
    args=(_NEW_AGENT,),
    flags=(
        FlagSpec(
            "runtime", "str", "The agent program to run; the configured default if left out.", "R"
        ),
        FlagSpec(
            "model",
            "str",
            "The model the agent should use; the runtime's default if left out.",
            "M",
        ),
        FlagSpec("prompt", "str", "The first instruction to give the agent; quote it.", "TEXT"),
        FlagSpec("workdir", "str", "The directory the agent works in.", "DIR"),
        FlagSpec(
            "host",
            "str",
            "Run it on this host of the config's `hosts:` (in tmux there), or `local`.",
            "H",
        ),
        FlagSpec("account", "str", "The account or pool that pays for it (`accounts`).", "A"),
        FlagSpec(
            "permissions",
            "str",
            "What it may do without asking (`full`: sandboxed agents only); its roster "
            "entry's mode, else `defaults.permissions`, if left out.",
            "MODE",
            choices=MODES,
        ),
        FlagSpec(
            "urgent",
            "bool",
            "Launch even while the agent's budget is queued: only within a burst an admin "
            "granted (`budget allow-burst`).",
        ),
        FlagSpec(
            "max-tokens",
            "str",
            "Cap this run's spend at N tokens (200000, 200k): past it its model requests "
            "are refused.",
            "N",
        ),
        FlagSpec(
            "max-usd",
            "str",
            "Cap this run's spend at X dollars (at most two decimals; the model needs a price).",
            "X",
        ),
        FlagSpec(
            "quote-under",
            "str",
            "Start only if the run's quote (the p90 in dollars of its past runs, or its cap "
            "if lower) is at most X dollars; else say the quote and how to go ahead.",
            "X",
        ),
        FlagSpec(
            "new",
            "bool",
            "Start a new agent of this name even when it is close to one the fleet has "
            "(without it, such a name is taken for a typo: nothing starts, and the answer "
            "names the agent likely meant).",
        ),
        FlagSpec(
            "if-absent",
            "bool",
            "For scripts (`fleetwarden spawn`): an agent already running is not a failure; "
            "its run is the answer, exit status 0 (without it, 1).",
        ),
        *REPO_FLAGS,
    ),
    control=True,
    description=(
        "Starts an agent called NAME. Spawning is idempotent: if NAME is already running "
        "you are shown its state and no second process is started. Spawning an agent the "
        "roster no longer has makes it an ad hoc agent again (no longer `not in roster`); a "
        "forgotten one starts afresh. The answer says the run's quote, kept on the run: what "
        "a run of the agent usually costs (median and p90 of its past runs on the same "
        "runtime and model), what share of its budget's allowance for today that is, and "
        "what it holds against its budgets until it ends (the p90, or its cap if lower); a "
        "launch its budgets' holds leave no room for waits in the queue for a run to end. "
        "With `--repo` (or `repo:` in "
        "the roster) each run works in a checkout of its own on a branch of its own, which "
        "a new run goes on with unless `--fresh`. " + _NAME_RULE
    ),
    examples=(
        "spawn coder-1 --runtime claude --permissions ask --max-tokens 200k",
        'spawn docs --model sonnet --prompt "tidy the README" --workdir /srv/app',
    ),
)

SEND = CommandSpec(
    name="send",
    summary="Send a message to an agent.",
    args=(
        _AGENT,
        ArgSpec("TEXT", "The message: the rest of the line, exactly as typed.", rest=True),
    ),
    control=True,
    description=(
        "Everything after NAME is sent as typed, apostrophes and all; no quoting needed. "
        "If the whole message is wrapped in one pair of quotes, they are removed."
    ),
    examples=("send coder-1 run the tests and fix what fails", "send docs it's fine, ship it"),
)

USAGE = CommandSpec(
    name="usage",
    summary="Show how many tokens the agents used, and what they cost.",
    args=(
        ArgSpec(
            "NAME",
            "The agent whose usage to show, e.g. `coder-1`; every agent if left out.",
            required=False,
        ),
    ),
    flags=(
        FlagSpec(
            "window",
            "str",
            f"How far back to count (default {DEFAULT_WINDOW}): the last 5 hours, since "
            "midnight, the last 7 or 30 days.",
            "WINDOW",
            choices=WINDOWS,
        ),
        FlagSpec(
            "host",
            "str",
            "Only the agents that ran on this host (`local`: this machine; `hosts` lists "
            "the others).",
            "H",
        ),
    ),
    description=(
        "Sums what the metering proxy recorded, per agent and model: requests, input, "
        "output, cache read and cache write tokens, and the cost where the model has a "
        "price in the config. Requests that were cut short, could not be metered, were "
        "refused or failed are counted below the table. `--window` is `5h`, `today` (the "
        "default: since local midnight), `7d` or `30d`."
    ),
    examples=("usage coder-1 --window 7d", "usage --host box2"),
)

PACE = CommandSpec(
    name="pace",
    summary="Show each budget's pace: used, limit, projection and status.",
    description=(
        "One row per budget: its scope and window (and when it resets, with how sure that "
        "is: `provider`, `set by you`, `estimated` or `unknown`), tokens used and "
        "the limit, the pace ratio (use so far ÷ the even spread of the limit over the "
        "window so far; 1.00× is on pace), the use projected at the reset and when the "
        "limit runs out at the current burn rate, the status (under, on or over pace, or "
        "exhausted), the enforcement step (downgrade, queued until a time, refuse), and "
        "where the numbers come from: `provider` (its quota headers), `metering` (our "
        "proxy) or `estimated`. Active bursts are listed below. No LLM is asked."
    ),
    examples=("pace",),
)

REPORT_CHANGES = CommandSpec(
    name="changes",
    summary="What a merged change cost, per agent, runtime and model.",
    flags=(
        FlagSpec(
            "since",
            "str",
            f"How far back (default {DEFAULT_SINCE}): a duration such as 7d, 30d or 12h; "
            "the changes merged, closed or abandoned since then, and those still open that "
            "a run worked on since then.",
            "DURATION",
        ),
    ),
    description=(
        "A change is a branch an agent's runs work on (an agent with a `repo:`), from its "
        "cut to its end: **merged** (`merge` landed it, or its forge pull request was "
        "merged), **closed** unmerged (its pull request was closed), **abandoned** "
        "(`discard`, or its forge run stopped without a pull request closing), or still "
        "**open**. Per agent, runtime and model served: how many came to each, the median "
        "cost of a merged change, the all-in cost per merged change (all the changes' cost, "
        "merged or not, over the merged ones), the cost and tokens of them all, the median "
        "time from a branch's cut to its merge, and the approvals their runs asked. A "
        "change's cost is the metered cost of every run that worked on it; it counts under "
        "the model that served most of its tokens. Exact from the ledger; the dashboard's "
        "Changes page and `/changes.csv` show the same."
    ),
    examples=("report changes", "report changes --since 7d"),
)

REPORT = CommandSpec(
    name="report",
    summary="Post the pacing report now: the pace table and a chart.",
    description=(
        "The table `pace` shows, with a PNG chart: for every budget's current window, "
        "cumulative use against the even-spread line, the limit, the reset, now, and the "
        "projection to the reset at the current burn rate. Below the table: how far the "
        "week's task projections were off (actual / projected median), and a typical "
        "day's spend per agent (the costliest five) and per budget — the median of the "
        "last 14 whole UTC days from the first with usage. The same report is posted "
        "on the configured schedule. `report changes` reports what merged changes cost."
    ),
    examples=("report", "report changes"),
    subcommands=(REPORT_CHANGES,),
)

WHOAMI = CommandSpec(
    name="whoami",
    summary="Show who you are to Fleetwarden and what you may do.",
    description=(
        "Shows your user id as Fleetwarden sees it and your role. Commands that change "
        "something (spawn, stop, restart, send) need the operator role."
    ),
    examples=("whoami",),
)

ROSTER_RELOAD = CommandSpec(
    name="reload",
    summary="Read the roster, the operators and new repositories again from the config file.",
    control=True,
    description=(
        "Reads the config file again and validates it; on any problem nothing changes and "
        "the problems are shown. So it is, naming each change, when the file changes what "
        "only a start applies: a repository changed or removed, the first `repos:` section, "
        "a new repository on a forge, a new repository with `review:` when nothing had one "
        "at start, anything under `forges:`, a concurrency cap "
        "(`limits.max_running`, or `max_running` on an account or a budget) (restart "
        "Fleetwarden, or undo "
        "those edits); and when a new repository has a path `url` that is no git repository "
        "or a `copy_from` that is not there, as `check-config` says. Otherwise repositories "
        "new to the file are worked on at once, the "
        "`operators` list applies (someone removed or given another role is out of their "
        "dashboard sessions on their next request), agents new to the roster become known "
        "(and start, if `autostart`), and agents that are not running get their new "
        "settings. Running agents are never touched: a changed one keeps running as it was "
        "until `restart`, a removed one until `stop`. The watchdog never restarts a removed "
        "agent; `ps` marks it `not in roster` until it is back in the file or spawned again."
    ),
    examples=("roster reload",),
)

ROSTER = CommandSpec(
    name="roster",
    summary="Show the roster: the agents the config file defines.",
    description=(
        "Lists each roster agent with its runtime, model, class, backend, restart policy "
        "and whether it starts with Fleetwarden; when any agent has them, what it is for "
        "(`role:`) and the peers it may message (`talks_to:`). `roster reload` applies an "
        "edited config; `roster add`, `roster set` and `roster remove` edit it from chat, "
        "keys that go together in one command (a `command` agent with its command line: "
        "`roster add bot --runtime command --argv '[python3, -u, bot.py]' --workdir bot`, "
        "`roster set coder runtime command argv [python3, -u, bot.py]`)."
    ),
    examples=("roster", "roster reload"),
    subcommands=(ROSTER_RELOAD, ROSTER_ADD, ROSTER_SET, ROSTER_REMOVE),
)

WATCH = CommandSpec(
    name="watch",
    summary="Show what an agent's screen shows right now.",
    args=(_AGENT,),
    flags=(
        FlagSpec(
            "follow",
            "bool",
            "Post the screen again whenever it changes: every 10 s, for up to 5 minutes.",
        ),
    ),
    description=(
        "A read-only snapshot of the agent's terminal: the visible pane of a tmux agent, the "
        "last lines of a subprocess agent's output. It goes into the agent's thread where "
        "there is one. With `--follow`, changes are posted for a while (bounded: at most "
        "30 updates, and it ends when the agent does)."
    ),
    examples=("watch coder-1", "watch coder-1 --follow"),
)

COMMANDS: tuple[CommandSpec, ...] = (
    HELP,
    PS,
    SPAWN,
    STOP,
    RESTART,
    FREEZE,
    RESUME,
    RAISE,
    SEND,
    INTERRUPT,
    PERMISSIONS,
    APPROVE,
    DENY,
    ANSWER,
    PENDING,
    LOGS,
    RUNS,
    WATCH,
    MSGS,
    DIFF,
    BRANCHES,
    MERGE,
    PUSH,
    DISCARD,
    PR,
    FORGE,
    USAGE,
    PACE,
    REPORT,
    BUDGET,
    ROSTER,
    FORGET,
    SCHEDULE,
    TASK,
    TASKS,
    MISSION,
    MISSIONS,
    ACCOUNTS,
    QUEUE,
    CANCEL,
    EGRESS,
    HOSTS,
    DASHBOARD,
    VERIFY,
    WHOAMI,
)
