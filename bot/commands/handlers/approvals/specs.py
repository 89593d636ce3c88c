"""The specs of the approval desk's commands (`approve`, `deny`, `answer`, `pending`,
`permissions`, `interrupt`): their words, help and flags, without their handlers."""

from __future__ import annotations

from typing import Final

from bot.commands.parsing.grammar import ArgSpec, CommandSpec
from fleet.model import PermissionMode

_ID = ArgSpec("ID", "The request's id, as its message and `pending` show it, e.g. `k7q2`.")


APPROVE = CommandSpec(
    name="approve",
    summary="Let an agent do what it asked: once, or always.",
    args=(
        _ID,
        ArgSpec(
            "MODE",
            "`always`: allow every later ask like it too.",
            required=False,
            choices=("always",),
        ),
    ),
    description=(
        "Answers approval request ID: the agent's CLI goes on. With `always`, the agent "
        "also stops asking for what matches the request's pattern (shown on its message). "
        "Operators, admins and whoever started the agent may answer; the first answer "
        "wins. The same as a ✅ (or 🔁) reaction on the request's message, or `yes` "
        "(`always`) in the agent's thread."
    ),
    examples=("approve k7q2", "approve k7q2 always"),
)


DENY = CommandSpec(
    name="deny",
    summary="Refuse what an agent asked, saying why.",
    args=(_ID, ArgSpec("REASON", "Why: the agent's model reads it.", required=False, rest=True)),
    description=(
        "Answers approval request ID with no: the CLI does not act, and its model is told "
        "REASON. The same as a ❌ reaction on the request's message, or `no REASON` in the "
        "agent's thread. A question is declined."
    ),
    examples=("deny k7q2", "deny k7q2 use the staging database instead"),
)


ANSWER = CommandSpec(
    name="answer",
    summary="Answer the question an agent asked.",
    args=(_ID, ArgSpec("TEXT", "Your answer: the rest of the line, as typed.", rest=True)),
    description=(
        "Gives question ID its answer: the agent's CLI gets TEXT as what you said. The same "
        "as a reply in the agent's thread while the question is open."
    ),
    examples=("answer m3pa use the staging database",),
)


PENDING = CommandSpec(
    name="pending",
    summary="List the approval requests waiting for an answer.",
    description=(
        "Every open request across the fleet, oldest first: its id, the agent, the tool, "
        "what it would act on and how long it has waited."
    ),
    examples=("pending",),
)


RULES: Final = "rules"


FORGET: Final = "forget"


PERMISSIONS = CommandSpec(
    name="permissions",
    summary="Change what a running agent may do without asking; list or forget learned rules.",
    args=(
        ArgSpec("NAME", "The agent's name, e.g. `coder-1`.", agent=True),
        ArgSpec(
            "MODE",
            "`ask` (everything is asked), `edits` (edits in the workdir pass), `full` "
            "(sandboxed agents only) or `read-only`; or `rules` (list the rules `always` "
            "answers taught it), or `forget` (forget one of them, or `all`).",
            choices=(*(m.value for m in PermissionMode), RULES, FORGET),
        ),
        ArgSpec(
            "RULE",
            "With `forget`: the rule as `permissions NAME rules` shows it, or `all`.",
            required=False,
            rest=True,
        ),
    ),
    control=True,
    description=(
        "Sets the agent's permission mode: at once where its CLI can change it in its "
        "session, else from its next turn; the answer says which. `permissions NAME rules` "
        "lists the rules `approve ID always` taught the agent, with who taught each and "
        "when; they hold across its restarts until `permissions NAME forget RULE` (or "
        "`all`) or `forget NAME`."
    ),
    examples=("permissions coder-1 ask", "permissions coder-1 forget Bash(npm test)"),
)


INTERRUPT = CommandSpec(
    name="interrupt",
    summary="End an agent's current turn; the agent keeps running.",
    args=(ArgSpec("NAME", "The agent's name, e.g. `coder-1`.", agent=True),),
    control=True,
    description=(
        "Stops what the agent is doing now, as Esc would in its terminal, and keeps its "
        "session: `send` gives it the next turn. Only agents in a live session can be "
        "interrupted."
    ),
    examples=("interrupt coder-1",),
)


APPROVAL_COMMANDS = (APPROVE, DENY, ANSWER, PENDING, PERMISSIONS, INTERRUPT)
