"""The permission policy's configuration: the keys an agent entry and ``defaults`` take —
``permissions`` (a :class:`~fleet.model.PermissionMode`), ``allow`` and ``deny`` (rules of
:mod:`fleet.permissions.rules`), ``approval_timeout`` (``30m``, or seconds) and
``max_open_approvals`` — their checks, and how a spec gets them.

The mode an agent gets is its own, else ``defaults.permissions``, else the one its sandbox
calls for: ``edits`` for a sandboxed agent, the safer ``ask`` for one with ``sandbox:
none``. ``full`` (everything passes unasked) is refused for an unsandboxed agent, at load
and at ``spawn --permissions full``: nothing would then stand between it and the host.
``allow`` and ``deny`` add to those of ``defaults`` (the defaults' first), as Claude Code's
own settings add up across scopes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from fleet.budgets.runs.budget import seconds_of
from fleet.model import AgentSpec, PermissionMode
from fleet.permissions.rules import BadRule, parse_rule

PermissionModeName = Literal["ask", "edits", "full", "read-only"]
MODES: tuple[str, ...] = tuple(mode.value for mode in PermissionMode)
DEFAULT_APPROVAL_TIMEOUT = 1800.0
DEFAULT_MAX_OPEN = 5
MAX_OPEN_LIMIT = 100
MAX_RULES = 200

PERMISSIONS_HELP = (
    "What the agent may do without asking, mapped onto its CLI's own rules: `ask` (every "
    "action the CLI would ask about is asked in chat), `edits` (file edits inside the "
    "workdir pass, other asks come to chat), `full` (everything passes; only with "
    "`sandbox: bwrap`), `read-only` (the CLI's plan / read-only mode)."
)
ALLOW_HELP = (
    "Rules of actions that pass without asking, each a tool's name alone (`Edit`) or with "
    "a pattern of its argument (`Bash(git *)`, `Bash(npm test)`; `*` matches anything), or "
    "an MCP server's tool (`mcp__tracker__search`) or every tool of one (`mcp__tracker`); "
    "translated to the CLI's native rules."
)
DENY_HELP = (
    "Rules (written as in `allow`) of actions refused without asking; a deny wins over an allow."
)
APPROVAL_TIMEOUT_HELP = (
    "How long a question to chat waits for an answer before it is denied (recorded as a "
    "timeout): a duration such as `30m`, `2h` or `1d12h`, or seconds."
)
MAX_OPEN_HELP = (
    f"At most this many of the agent's questions are open in chat at once (1 to "
    f"{MAX_OPEN_LIMIT}); more are denied at once with a reason it sees, and one notice."
)


def default_mode(sandbox: str) -> PermissionMode:
    """The mode of an agent that sets none, and whose ``defaults`` set none either."""
    return PermissionMode.ASK if sandbox == "none" else PermissionMode.EDITS


def unsandboxed_full(who: str, sandbox: str, mode: str | None) -> str | None:
    """What is wrong when ``who`` would run with ``full`` and no sandbox; else ``None``."""
    if mode != PermissionMode.FULL or sandbox != "none":
        return None
    return (
        f"{who} has permissions `full` but no sandbox (`sandbox: none`): everything would "
        "pass unasked, on the host itself. Give it `sandbox: bwrap`, or a mode that asks "
        "(`edits` or `ask`)"
    )


def _rule(text: str) -> str:
    try:
        parse_rule(text)
    except BadRule as exc:
        raise PydanticCustomError("permission_rule", str(exc)) from None
    return text.strip()


PermissionRule = Annotated[str, AfterValidator(_rule)]
Rules = Annotated[tuple[PermissionRule, ...], Field(max_length=MAX_RULES)]
ApprovalTimeout = Annotated[
    float,
    BeforeValidator(seconds_of("approval_timeout")),
    Field(gt=0, le=7 * 86_400, strict=True, allow_inf_nan=False),
]
MaxOpen = Annotated[int, Field(ge=1, le=MAX_OPEN_LIMIT, strict=True)]


@dataclass(frozen=True, slots=True)
class PolicyDefaults:
    """What ``defaults`` sets of the policy, for roster entries and ad hoc agents alike."""

    permissions: PermissionMode | None = None  # None: by the agent's sandbox
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT
    max_open_approvals: int = DEFAULT_MAX_OPEN

    def apply(
        self,
        spec: AgentSpec,
        *,
        permissions: str | None = None,
        allow: tuple[str, ...] = (),
        deny: tuple[str, ...] = (),
        approval_timeout: float | None = None,
        max_open_approvals: int | None = None,
    ) -> AgentSpec:
        """``spec`` with the policy: an entry's own values, else these defaults."""
        mode = permissions or self.permissions or default_mode(spec.sandbox)
        return replace(
            spec,
            permissions=PermissionMode(mode),
            allow=tuple(dict.fromkeys((*self.allow, *allow))),
            deny=tuple(dict.fromkeys((*self.deny, *deny))),
            approval_timeout=approval_timeout or self.approval_timeout,
            max_open_approvals=max_open_approvals or self.max_open_approvals,
        )
