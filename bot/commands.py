"""The command table operators type, and the markdown help rendered from it."""

from __future__ import annotations

from collections.abc import Sequence

from bot.errors import ParseError
from bot.grammar import ArgSpec, CommandSpec, FlagSpec, show, suggest, walk
from fleet.windows import DEFAULT_WINDOW, WINDOWS

_NAME_RULE = "Names are 1-32 characters: lowercase letters, digits and '-', starting with a letter."
_AGENT = ArgSpec("NAME", "The agent's name, e.g. `coder-1`.")

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
        "model requests used since local midnight (`usage` has the details)."
    ),
    examples=("ps",),
)

SPAWN = CommandSpec(
    name="spawn",
    summary="Start an agent.",
    args=(_AGENT,),
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
    ),
    control=True,
    description=(
        "Starts an agent called NAME. Spawning is idempotent: if NAME is already running "
        "you are shown its state and no second process is started. " + _NAME_RULE
    ),
    examples=(
        "spawn coder-1 --runtime claude",
        'spawn docs --model sonnet --prompt "tidy the README" --workdir /srv/app',
    ),
)

STOP = CommandSpec(
    name="stop",
    summary="Stop an agent.",
    args=(_AGENT,),
    flags=(FlagSpec("force", "bool", "Kill at once with SIGKILL instead of asking first."),),
    control=True,
    description=(
        "Sends SIGTERM to the agent's whole process group, so whatever it started stops "
        "too, then SIGKILL if it is still there after the grace period. `--force` sends "
        "SIGKILL at once."
    ),
    examples=("stop coder-1", "stop coder-1 --force"),
)

RESTART = CommandSpec(
    name="restart",
    summary="Stop an agent and start it again with the same settings.",
    args=(_AGENT,),
    control=True,
    description=(
        "Stops the agent as `stop` does (SIGTERM, then SIGKILL after the grace period), then "
        "starts it again with the runtime, model, prompt and directory it was spawned with."
    ),
    examples=("restart coder-1",),
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

LOGS = CommandSpec(
    name="logs",
    summary="Show the last lines of an agent's output.",
    args=(_AGENT,),
    flags=(
        FlagSpec(
            "lines",
            "int",
            "How many lines to show, 1-10000 (default 40).",
            "N",
            minimum=1,
            maximum=10000,
        ),
    ),
    description=(
        "Shows the end of what the agent has written to its terminal: 40 lines unless "
        "`--lines` says otherwise."
    ),
    examples=("logs coder-1", "logs coder-1 --lines 200"),
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
    ),
    description=(
        "Sums what the metering proxy recorded, per agent and model: requests, input, "
        "output, cache read and cache write tokens, and the cost where the model has a "
        "price in the config. Requests that were cut short, could not be metered, were "
        "refused or failed are counted below the table. `--window` is `5h`, `today` (the "
        "default: since local midnight), `7d` or `30d`."
    ),
    examples=("usage", "usage coder-1 --window 7d"),
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
    summary="Read the roster again from the config file and apply it.",
    control=True,
    description=(
        "Reads the config file again and validates it; on any problem nothing changes and "
        "the problems are shown. Otherwise agents new to the roster become known (and start, "
        "if `autostart`), and agents that are not running get their new settings. Running "
        "agents are never touched: a changed one keeps running as it was until `restart`."
    ),
    examples=("roster reload",),
)

ROSTER = CommandSpec(
    name="roster",
    summary="Show the roster: the agents the config file defines.",
    description=(
        "Lists each roster agent with its runtime, model, class, backend, restart policy "
        "and whether it starts with Fleetwarden. `roster reload` applies an edited config."
    ),
    examples=("roster", "roster reload"),
    subcommands=(ROSTER_RELOAD,),
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
    SEND,
    LOGS,
    WATCH,
    USAGE,
    ROSTER,
    WHOAMI,
)


def help_text(specs: Sequence[CommandSpec], name: str | None, *, prefix: str = "!") -> str:
    """Markdown help: a table of every command, or the details of command ``name``."""
    every = list(walk(specs))
    if name is None or not name.strip():
        rows = [f"| {_cell(_code(spec.usage))} | {_cell(spec.summary)} |" for spec in every]
        return "\n".join(
            [
                "| command | what it does |",
                "|---|---|",
                *rows,
                "",
                "Type `help COMMAND` for details. Commands start with "
                f"{_code(prefix)} in chat rooms; on the console the prefix is optional.",
            ]
        )
    wanted = name.strip()
    if wanted.startswith(prefix):
        wanted = wanted[len(prefix) :]
    wanted = " ".join(wanted.lower().split())
    for spec in every:
        if spec.name == wanted:
            return _details(spec, prefix)
    guess = suggest(wanted, [spec.name for spec in every])
    hint = f"did you mean '{guess}'? Try" if guess else "try"
    raise ParseError(f"help: unknown command {show(wanted)} — {hint} {prefix}help")


def _details(spec: CommandSpec, prefix: str) -> str:
    parts = [_code(spec.usage), spec.summary]
    if spec.description:
        parts.append(spec.description)
    if spec.control:
        parts.append("Needs the operator role.")
    if spec.args:
        lines = []
        for arg in spec.args:
            choices = f" One of: {', '.join(arg.choices)}." if arg.choices else ""
            optional = " (optional)" if not arg.required else ""
            lines.append(f"- {_code(arg.name)}{optional} — {arg.help}{choices}")
        parts.append("**Arguments**\n" + "\n".join(lines))
    if spec.flags:
        lines = [
            f"- {_code(flag.usage.strip('[]'))} — {flag.help}"
            + (f" One of: {', '.join(flag.choices)}." if flag.choices else "")
            for flag in spec.flags
        ]
        parts.append("**Flags**\n" + "\n".join(lines))
    if spec.subcommands:
        lines = [f"- {_code(sub.usage)} — {sub.summary}" for sub in spec.subcommands]
        parts.append("**Subcommands**\n" + "\n".join(lines))
    if spec.examples:
        body = "\n".join(prefix + example for example in spec.examples)
        parts.append(f"**Examples**\n```text\n{body}\n```")
    return "\n\n".join(parts)


def _code(text: str) -> str:
    """``text`` as a markdown code span (spec texts contain no backticks)."""
    return f"`{text}`"


def _cell(text: str) -> str:
    """``text`` safe inside a markdown table cell: pipes escaped, one line."""
    return text.replace("|", "\\|").replace("\n", " ")
