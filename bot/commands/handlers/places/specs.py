"""The specs of `egress`, `forge`, `pr` and `hosts`: their words, help and flags, without
their handlers."""

from __future__ import annotations

from bot.commands.parsing.grammar import ArgSpec, CommandSpec, FlagSpec

_AGENT = ArgSpec("NAME", "The agent's name, e.g. `coder-1`.", agent=True)


EGRESS_BLOCK = CommandSpec(
    name="block",
    summary="Cut a locked agent off its allow-list, at once.",
    args=(_AGENT,),
    control=True,
    description=(
        "Closes the agent's way to the hosts in its `egress_allow` and cuts the "
        "connections open through it; the metering proxy and the heartbeat endpoint stay "
        "reachable. The block lasts across restarts until `egress unblock NAME`."
    ),
    examples=("egress block coder-1",),
)


EGRESS_UNBLOCK = CommandSpec(
    name="unblock",
    summary="Let a blocked agent reach its allow-list again.",
    args=(_AGENT,),
    control=True,
    description="Undoes `egress block NAME`; a running agent can reach its allow-list at once.",
    examples=("egress unblock coder-1",),
)


EGRESS = CommandSpec(
    name="egress",
    summary="Show an agent's network and what it was refused; block or unblock it.",
    args=(ArgSpec("NAME", "The agent's name, e.g. `coder-1`.", required=False),),
    description=(
        "An agent with `egress: locked` (the default) reaches only the metering proxy, the "
        "heartbeat endpoint and the hosts in its `egress_allow`. `egress NAME` shows its "
        "mode, allow-list and block, and every refused attempt, counted by destination and "
        "reason. `egress block NAME` cuts the allow-list; `egress unblock NAME` gives it "
        "back. Both need the operator role."
    ),
    examples=("egress coder-1", "egress block coder-1"),
    subcommands=(EGRESS_BLOCK, EGRESS_UNBLOCK),
)


FORGE = CommandSpec(
    name="forge",
    summary="List the issues given to agents: their state and pull requests.",
    args=(
        ArgSpec(
            "WHAT",
            "`list` (the default) or `all`, ended runs too.",
            required=False,
            choices=("list", "all"),
        ),
    ),
    description=(
        "One row per forge run: the issue (a link), its title as its author wrote it, the "
        "agent working on it, where it is (`queued`, `working`, `waiting` for review, "
        "`unpublished`: done but its pull request not opened, `failed`, `stopped`, `ended`) "
        "and its pull request; below it, why each `unpublished` run's pull request was not "
        "opened, in full. A forge whose credential or login was found wrong at start is said "
        "first: it is held (its events refused) until that is fixed and Fleetwarden "
        "restarted. `forge all` adds the runs that ended lately."
    ),
    examples=("forge", "forge all"),
)


PR = CommandSpec(
    name="pr",
    summary="Open the pull request of an agent's forge run.",
    args=(ArgSpec("NAME", "The agent working on the issue, e.g. `coder-1`."),),
    flags=(FlagSpec("draft", "bool", "Open it as a draft."),),
    control=True,
    description=(
        "Pushes the agent's branch (what its git door took) and opens one pull request "
        "from it to its base, titled as the issue, with the person who gave the agent the "
        "issue asked to review and the provenance footer in its description. When the "
        "branch already has an open pull request, it is shown instead: a run never opens "
        "a second one. The forge's `draft` setting opens drafts anyway. A run whose pull "
        "request could not be opened when its agent said done (`unpublished`) is published "
        "with it: its summary posted on the pull request, its status comment updated. It "
        "pushes the run's own branch only: one merged or discarded from chat meanwhile "
        "opens nothing, and an `unpublished` run then ends, said on its issue."
    ),
    examples=("pr coder-1", "pr coder-1 --draft"),
)


HOSTS = CommandSpec(
    name="hosts",
    summary="List the fleet's machines: reachable or not, agents, load, disk, agent CLIs.",
    description=(
        "One row for this machine (`local`) and one for each host in the config's "
        "`hosts:`: whether its SSH link is up and since when (or why not: unreachable, or "
        "its host key refused — `fleetwarden hosts trust NAME` records a key), its running "
        "agents against its `max_agents`, its load average, the free disk under its state "
        "dir, and the agent CLIs it has with their versions, as its last probe found them."
    ),
    examples=("hosts",),
)
