"""The approval commands: ``approve``, ``deny``, ``pending``; the levers on a live
session, ``permissions NAME MODE`` and ``interrupt NAME``; and what ``always`` answers
taught an agent, ``permissions NAME rules`` and ``permissions NAME forget RULE|all``.

``approve`` and ``deny`` are open to every role in the grammar: who may answer is decided per
request (operators, admins and the agent's starter,
:mod:`bot.commands.handlers.approvals.answers`). ``permissions`` and ``interrupt`` need the
operator role and act through the fleet's live sessions (:class:`SessionLevers`); where the
fleet has none, they say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from bot.approvals.render import learned_table, pending_table
from bot.approvals.shown import inline_code, tool_name
from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.approvals.answers import ApprovalDesk
from bot.commands.handlers.approvals.specs import (
    ANSWER,
    APPROVE,
    DENY,
    FORGET,
    INTERRUPT,
    PENDING,
    PERMISSIONS,
    RULES,
)
from bot.commands.routing.request import Reply, Request
from bot.render import machine
from bot.text.agent_text import escape
from fleet.approvals.service import Approvals
from fleet.approvals.spend import CHANNEL as SPEND
from fleet.ledger.records.approvals import ApprovalRequest, AskKind, Decision
from fleet.model import PermissionMode
from fleet.timing.clock import Clock

Medium = Callable[[str], tuple[str, bool]]
"""Of a connector's name: the command prefix shown there, and whether people can react."""


@runtime_checkable
class SessionLevers(Protocol):
    """The fleet's levers on a live session."""

    async def interrupt(self, name: str, *, by: str = "operator") -> str:
        """End ``name``'s turn in progress, keeping the agent; what was done, in words."""
        ...

    async def set_permissions(
        self, name: str, mode: PermissionMode, *, by: str = "operator"
    ) -> str:
        """Change ``name``'s mode, in its session where its CLI can; what was done."""
        ...


class ApprovalCommands(Family):
    """The handlers of :data:`APPROVAL_COMMANDS`."""

    def __init__(
        self,
        approvals: Approvals,
        desk: ApprovalDesk,
        clock: Clock,
        levers: SessionLevers | None,
        prefix: str = "",
        *,
        medium: Medium | None = None,
    ) -> None:
        """``medium``: of a connector's name, the command prefix shown there and whether
        its people can react to a message (default: ``prefix``, and they can)."""
        self._approvals = approvals
        self._desk = desk
        self._clock = clock
        self._levers = levers
        self._medium = medium if medium is not None else (lambda _name: (prefix, True))

    def _prefix_on(self, req: Request) -> str:
        return self._medium(req.message.connector)[0]

    @command(APPROVE)
    async def approve(self, req: Request) -> Reply:
        args = req.command.args
        decision = Decision.ALWAYS if args.get("MODE") == "always" else Decision.ALLOW
        done = await self._desk.answer(
            req.arg("ID"),
            msg=req.message,
            role=req.role,
            decision=decision,
            how=args.get("VIA", "command"),
            reason=args.get("ANSWER"),
        )
        return _answered(done)

    @command(DENY)
    async def deny(self, req: Request) -> Reply:
        args = req.command.args
        done = await self._desk.answer(
            req.arg("ID"),
            msg=req.message,
            role=req.role,
            decision=Decision.DENY,
            how=args.get("VIA", "command"),
            reason=(args.get("REASON") or "").strip() or None,
        )
        return _answered(done)

    @command(ANSWER)
    async def answer(self, req: Request) -> Reply:
        request = await self._approvals.get(req.arg("ID"))
        if request.kind is not AskKind.QUESTION:
            raise CommandError(
                f"`{request.id}` is no question: `{self._prefix_on(req)}approve {request.id}` or "
                f"`{self._prefix_on(req)}deny {request.id} [REASON]` answers it"
            )
        done = await self._desk.answer(
            request.id,
            msg=req.message,
            role=req.role,
            decision=Decision.ALLOW,
            how="command",
            reason=req.arg("TEXT").strip(),
        )
        return _answered(done)

    @command(PENDING)
    async def pending(self, req: Request) -> str:
        prefix, reactions = self._medium(req.message.connector)
        pending = await self._approvals.pending()
        return pending_table(pending, self._clock.now(), prefix, reactions=reactions)

    @command(PERMISSIONS)
    async def permissions(self, req: Request) -> Reply:
        name, verb = req.arg("NAME"), req.arg("MODE")
        rule = (req.command.args.get("RULE") or "").strip()
        if verb == RULES:
            learned = await self._approvals.learned_rules(name)
            return Reply(learned_table(name, learned, self._prefix_on(req)), topic=name)
        if verb == FORGET:
            return await self._forget(name, rule, self._prefix_on(req))
        if rule:
            raise CommandError(
                f"`permissions NAME {verb}` takes nothing after the mode; to forget a learned "
                f"rule: `{self._prefix_on(req)}permissions {name} forget RULE`"
            )
        mode = PermissionMode(verb)
        said = await self._live().set_permissions(name, mode, by=req.who)
        return Reply(said, topic=name, detail=f"{name} → {mode.value}")

    async def _forget(self, name: str, rule: str, prefix: str) -> Reply:
        if not rule:
            raise CommandError(
                f"say which rule to forget: `{prefix}permissions {name} forget RULE`, "
                f"as `{prefix}permissions {name} rules` shows it, or `all`"
            )
        every = rule.lower() == "all"
        gone = await self._approvals.forget_rules(name, None if every else rule)
        if every:
            text = f"**{name}** forgot {gone} learned rule{'s' if gone != 1 else ''}."
        elif gone:
            text = f"**{name}** forgot {inline_code(rule)}: it asks for that again."
        else:
            raise CommandError(
                f"{name} has no learned rule {inline_code(rule)}: "
                f"`{prefix}permissions {name} rules` lists them"
            )
        return Reply(text, topic=name, detail=f"{name} forgot {'all' if every else rule}")

    @command(INTERRUPT)
    async def interrupt(self, req: Request) -> Reply:
        name = req.arg("NAME")
        return Reply(await self._live().interrupt(name, by=req.who), topic=name)

    def _live(self) -> SessionLevers:
        if self._levers is None:
            raise CommandError("this Fleetwarden drives no live sessions: nothing to act on")
        return self._levers


def _answered(done: ApprovalRequest) -> Reply:
    if done.channel == SPEND:  # an ask at a cap or a limit: raised by its offer, or stopped
        what = "raised by the offer" if done.decision is not Decision.DENY else "stopped"
        text = f"💸 `{done.id}` answered: {escape(done.agent)} {what}."
    elif done.kind is AskKind.QUESTION:
        verb = "declined" if done.decision is Decision.DENY else "answered"
        text = f"Question `{done.id}` of **{done.agent}** {verb}."
    elif done.decision is Decision.DENY:
        text = (
            f"❌ `{done.id}` denied: **{done.agent}** may not use {escape(tool_name(done.tool))}."
        )
    elif done.decision is Decision.ALWAYS and done.pattern:
        rule = inline_code(done.pattern)
        text = f"🔁 `{done.id}` allowed; **{done.agent}** no longer asks for {rule}."
    else:
        text = f"✅ `{done.id}` allowed once: **{done.agent}** goes on."
    detail = f"{done.id} {done.state.value} by {done.how}"
    return Reply(text, detail=detail, data=machine.answered(done))
