"""The specs of `dashboard` and `verify`: their words, help and flags, without their
handlers."""

from __future__ import annotations

from bot.commands.parsing.grammar import ArgSpec, CommandSpec

DASHBOARD_REVOKE = CommandSpec(
    name="revoke",
    summary="End your dashboard sessions, in every browser.",
    description=(
        "Every dashboard session you opened ends at once, and links you were sent but did "
        "not use stop working. Ask `dashboard` for a new link."
    ),
    examples=("dashboard revoke",),
)


DASHBOARD = CommandSpec(
    name="dashboard",
    summary="Get a one-time sign-in link to the web dashboard, sent to you privately.",
    description=(
        "The link signs you in once, within 10 minutes, and your browser then stays signed "
        "in with your current role (12 hours at most). It comes in a direct message — on the "
        "console, as the answer — never in a shared room. The dashboard only shows: the "
        "fleet, each agent's live transcript and runs, budgets, usage, accounts, hosts, "
        "approvals and the audit trail; commands stay in chat. If your role changes or you "
        "are removed, your sessions and unused links end at once, for good. Needs the "
        "config's `dashboard:` section."
    ),
    examples=("dashboard", "dashboard revoke"),
    subcommands=(DASHBOARD_REVOKE,),
)


VERIFY = CommandSpec(
    name="verify",
    summary="Answer an operator's Matrix emoji verification (console only).",
    args=(
        ArgSpec("ID", "The verification's id, as the console showed it."),
        ArgSpec(
            "ANSWER",
            "`yes` if the emojis match the operator's, `no` if not.",
            choices=("yes", "no"),
        ),
    ),
    control=True,
    admin_only=True,
    description=(
        "When an operator verifies the bot from their Matrix client, the console shows the "
        "emojis their client shows. `yes` if they match: the bot signs the operator's "
        "identity and trusts their cross-signed devices; `no`: the verification is cancelled "
        "and nothing is signed. Only on the console (or `fleetwarden matrix verify`), never "
        "in the Matrix room being verified."
    ),
    examples=("verify k3mzq2 yes",),
)
