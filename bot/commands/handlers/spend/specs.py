"""The specs of `accounts`, `budget` and `raise`: their words, help and flags, without
their handlers."""

from __future__ import annotations

from bot.commands.parsing.grammar import ArgSpec, CommandSpec, FlagSpec

ACCOUNTS = CommandSpec(
    name="accounts",
    summary="List the accounts that pay for agents: windows used, resets, status, agents.",
    description=(
        "One row per provider window of each account (Claude's `5h` and `7d`, Codex's "
        "`primary` and `secondary`, an API key's request and token limits): the share used "
        "as the provider itself reported it, where the even-spread line says it should be "
        "by now, the time to its reset (the provider's word, or unknown when it gave none), "
        "the provider's status, and the agents on the account. An account the provider "
        "refused, or whose window is spent, says why and until when. Credentials are never "
        "shown."
    ),
    examples=("accounts",),
)


_SCOPE = ArgSpec(
    "SCOPE", "Whose budget: `global`, `group:`, `agent:`, `account:` or `provider:NAME`."
)


_MOMENT = (
    "`HH:MM` (the next such time, in the configured timezone), an ISO date and time "
    "(`2025-04-01T09:00`), or a duration from now (`2h`, `1d12h`)"
)


BUDGET_SET = CommandSpec(
    name="set",
    summary="Set a scope's budget: its limit per window.",
    args=(
        _SCOPE,
        ArgSpec(
            "LIMIT",
            "Tokens per window (`5M`, `500k`, `1200000`); with `--usd`, dollars (`25`, `12.50`).",
        ),
    ),
    flags=(
        FlagSpec(
            "window",
            "str",
            "When the allowance resets (required): a duration (`5h`, `7d`, `90m`), `daily`, "
            "`weekly`, `monthly` or `fixed`.",
            "W",
        ),
        FlagSpec("reset-at", "str", f"When the current window ends: {_MOMENT}.", "T"),
        FlagSpec(
            "confidence",
            "str",
            "How sure `--reset-at` or a calendar window's midnight is: `user` (default: "
            "you set it), `provider` (copied from the provider), `estimated`, `unknown`.",
            "C",
            choices=("provider", "user", "estimated", "unknown"),
        ),
        FlagSpec("usd", "bool", "LIMIT is in US dollars, not tokens."),
        FlagSpec(
            "cutoff",
            "str",
            "What happens at the limit (default: what the budget it replaces says, else "
            "`refuse`); `ask` freezes its agents and asks to raise it or stop them.",
            "C",
            choices=("refuse", "freeze", "stop", "ask"),
        ),
    ),
    control=True,
    admin_only=True,
    description=(
        "Replaces the budget of SCOPE, the config's included (it keeps that budget's ladder, "
        "account and tolerance), and survives restarts until `budget unset SCOPE`. Calendar "
        "windows (`daily`, `weekly`, `monthly`) reset at midnight in the configured timezone "
        "and take no `--reset-at`; `fixed` needs one. Over pace or at its limit once set, "
        "the answer says so and what that does to its agents and to new launches. On any "
        "problem nothing changes."
    ),
    examples=(
        "budget set global 50M --window 7d",
        "budget set agent:coder-1 25 --usd --window daily",
        "budget set group:backend 5M --window fixed --reset-at 2025-04-01T00:00",
    ),
)


BUDGET_ALLOW_BURST = CommandSpec(
    name="allow-burst",
    summary="Let a scope spend past its pace for a while.",
    args=(_SCOPE,),
    flags=(
        FlagSpec("until", "str", f"When the burst ends (required): {_MOMENT}.", "T"),
        FlagSpec("reason", "str", "Why, for the report and the audit trail; quote it.", "TEXT"),
    ),
    control=True,
    admin_only=True,
    description=(
        "Until the burst ends, the scope's agents are not downgraded or held for being over "
        "pace; the hard limit still holds. `budget`, `pace` and the report show it with who "
        "granted it, until when and why."
    ),
    examples=(
        'budget allow-burst group:backend --until 18:00 --reason "release day"',
        "budget allow-burst agent:coder-1 --until 2h",
    ),
)


_UNSET_DESCRIPTION = (
    "Removes the budget `budget set` (or a `raise budget`) gave SCOPE: the config's budget "
    "of SCOPE is in force again, or, without one, the next scope up governs its agents. "
    "Survives restarts, and is audited as every command is. The config's own budgets are "
    "changed in the config file."
)


BUDGET_UNSET = CommandSpec(
    name="unset",
    summary="Undo `budget set`: back to the config's budget of the scope, or none.",
    args=(_SCOPE,),
    control=True,
    admin_only=True,
    description=_UNSET_DESCRIPTION,
    examples=("budget unset global", "budget unset agent:coder-1"),
)


BUDGET_REMOVE = CommandSpec(
    name="remove",
    summary="The same as `budget unset`.",
    args=(_SCOPE,),
    control=True,
    admin_only=True,
    description=_UNSET_DESCRIPTION,
    examples=("budget remove global",),
)


BUDGET_END_BURST = CommandSpec(
    name="end-burst",
    summary="Undo `budget allow-burst`: end a scope's bursts now.",
    args=(_SCOPE,),
    control=True,
    admin_only=True,
    description=(
        "Every burst granted on SCOPE ends now, and its agents are paced again. The grants "
        "stay on record, with the time they ended."
    ),
    examples=("budget end-burst group:backend",),
)


BUDGET = CommandSpec(
    name="budget",
    summary="Show every budget and how it stands; set one, or allow a burst.",
    description=(
        "One row per budget: its scope, window and next reset (with how sure it is: "
        "`provider`, `set by you`, `estimated` or `unknown`), use against the limit, the "
        "pace ratio (1.00× is the even spread of the limit over the window), the status "
        "(under, on or over pace, or exhausted), the enforcement step, and where the numbers "
        "come from: `provider` (its quota headers), `metering` (our proxy) or `estimated`. "
        "Active bursts are listed below. The most specific scope with a budget governs an "
        "agent: its own, else its group's, else the global one. `budget set` and "
        "`budget allow-burst` need the admin role, as do their ways back: `budget unset` "
        "(or `budget remove`) and `budget end-burst`."
    ),
    examples=("budget", "budget unset global"),
    subcommands=(BUDGET_SET, BUDGET_UNSET, BUDGET_REMOVE, BUDGET_ALLOW_BURST, BUDGET_END_BURST),
)


RAISE = CommandSpec(
    name="raise",
    summary="Raise the cap of a run that reached it, and continue it.",
    args=(
        ArgSpec("NAME", "The agent whose run is capped, e.g. `coder`.", agent=True),
        ArgSpec(
            "AMOUNT",
            "How much more, in the cap's measure: `+$2` (dollars), `+50k` (tokens), or a "
            "bare `+2` in the measure the run reached. Default: the raise its ask offered "
            "(the cap the task began with, unless `run_budget` sets `offer_usd` / "
            "`offer_tokens`). After "
            "`raise budget`: the budget's scope.",
            required=False,
        ),
        ArgSpec(
            "MORE",
            "After `raise budget SCOPE`: how much more, in the limit's measure (default: "
            "its ask's offer, half the limit).",
            required=False,
        ),
    ),
    control=True,
    description=(
        "A run whose `run_budget` has `cutoff: ask` is frozen at its cap and its operators "
        "are asked once, in its thread (and on its issue for a forge run): `raise NAME "
        "+AMOUNT` lifts the cap by AMOUNT — for the live run and the agent's settings, so a "
        "restart keeps it — answers the ask, and continues the run; it is told again when "
        "it reaches the new cap. `stop NAME` stops it instead. The same as ✅ (raise by the "
        "offer) or ❌ (stop) on the ask's message, or `yes` / `no` in the thread. Works "
        "after the ask timed out and left the run frozen, and on any live capped run. "
        "`raise budget SCOPE [+AMOUNT]` does the same for a budget with `cutoff: ask` at "
        "its limit: it raises the limit (as `budget set` would, recorded with who) and its "
        "frozen agents continue. An operator answers the budget's open ask by at most its "
        "offer; any other raise of a budget (none asked, more than the offer, after its "
        "ask timed out) needs the admin role, as `budget set` does."
    ),
    examples=("raise coder +$2", "raise budget global +$25"),
)
