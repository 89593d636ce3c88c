"""The specs of ``roster add``, ``roster set`` and ``roster remove`` (handled with ``roster``
by :mod:`bot.commands.handlers.overview`), and the keys ``roster add``'s flags write."""

from __future__ import annotations

from bot.commands.parsing.grammar import ArgSpec, CommandSpec, FlagSpec

_NAME = ArgSpec("NAME", "The agent's name in the roster, e.g. `coder-1`.")
_WRITTEN = (
    "The file the agents live in (the roster file `agents:` names, else the config file) is "
    "edited in place, its comments and order kept, checked as `roster reload` checks it "
    "(nothing is written when it would be refused: the problem is shown) and applied as a "
    "reload applies it. A file edited by hand since Fleetwarden last read it is not "
    "overwritten: `roster reload` first."
)

ADD_KEYS: tuple[tuple[str, str], ...] = (
    ("runtime", "Which agent CLI runs it (required), e.g. `claude`."),
    ("model", "The model it asks for."),
    ("repo", "The repository of the config's `repos:` it works on."),
    ("role", 'What it is for, in one line its peers are told (quote it: `--role "reviews PRs"`).'),
    ("class", "Its class in the team, one word, e.g. `reviewer`."),
    ("backend", "How it runs: `subprocess` or `tmux`."),
    ("host", "The host of the config's `hosts:` it runs on."),
    (
        "workdir",
        "Its working directory (it must exist; a relative one is read from the config "
        "file's folder). Default: `agents/NAME/work` in the state dir.",
    ),
    ("account", "The account its model requests are metered against."),
    ("permissions", "What it may do without asking."),
)
"""``roster add``'s string flags: (the key each writes, as the config spells it; help)."""

TYPED_KEYS: tuple[str, ...] = ("argv",)
"""``roster add``'s flags whose value is read as YAML, as ``roster set`` reads a value."""

_ARGV = FlagSpec(
    "argv",
    "str",
    "The command line of `--runtime command`, program first, as a list in one quoted word "
    "(YAML or JSON): `--argv '[python3, -u, bot.py]'`.",
    "ARGV",
)

ROSTER_ADD = CommandSpec(
    name="add",
    summary="Add an agent to the roster file.",
    args=(_NAME,),
    flags=(
        *(FlagSpec(key, "str", text, key.upper()) for key, text in ADD_KEYS),
        _ARGV,
        FlagSpec("autostart", "bool", "Start it with Fleetwarden (and now)."),
    ),
    control=True,
    admin_only=True,
    description=(
        "Writes a new entry at the end of the roster with the keys given; any other key "
        "follows with `roster set`. An agent of `--runtime command` runs its own command "
        "line, given in the same command with `--argv` (`roster add answer --runtime command "
        """--argv '[python3, -c, "print(42)"]'`), never through a shell, in its workdir: """
        "a program of your own is found there when `--workdir` names the folder holding "
        "it (`roster add bot --runtime command --argv '[python3, -u, bot.py]' --workdir "
        "bot`, with `bot/bot.py` beside the config). "
        f"{_WRITTEN} An unknown runtime is refused with the list."
    ),
    examples=(
        "roster add coder-2 --runtime claude --model opus",
        "roster add bot --runtime command --argv '[python3, -u, bot.py]' --workdir bot",
    ),
)

ROSTER_SET = CommandSpec(
    name="set",
    summary="Set keys of a roster agent in the roster file, one or several at once.",
    args=(
        _NAME,
        ArgSpec("KEY", "The agent's key, as the config spells it, e.g. `model`."),
        ArgSpec(
            "VALUE",
            "Read as YAML: a scalar (`gpt-5`, `30`, `true`) or a flow list or mapping "
            "(`[Read, Edit]`, `{A: '1'}`); `null` takes the key out (its default applies). "
            "More KEY VALUE pairs may follow (`runtime command argv [python3, bot.py]`).",
            rest=True,
            quoted=True,
        ),
    ),
    control=True,
    admin_only=True,
    description=(
        "Sets (or, with `null`, takes out) a key of the agent's entry; an unknown key is "
        "refused with the keys there are, and a secret written in is refused as the config "
        "refuses it (name the variable instead: `secret_env`). Several KEY VALUE pairs are "
        "set together and checked as one edit, for keys that only go together: `roster set "
        "coder runtime command argv [python3, -u, bot.py]`. A value of several words is "
        'quoted when what follows it would read as pairs (`role "reviews model changes"`). '
        f"{_WRITTEN} A running agent keeps its old settings until `restart`."
    ),
    examples=(
        "roster set coder model gpt-5",
        "roster set coder runtime command argv [python3, -u, bot.py]",
    ),
)

ROSTER_REMOVE = CommandSpec(
    name="remove",
    summary="Remove an agent from the roster file.",
    args=(_NAME,),
    control=True,
    admin_only=True,
    description=(
        "Takes the agent's entry out of the roster. A running agent is refused: `stop` it "
        "first. So is one another agent's `talks_to` names, with the `roster set` that "
        f"takes it out of each such list (`roster set coder talks_to null`). {_WRITTEN}"
    ),
    examples=("roster remove coder-2",),
)
