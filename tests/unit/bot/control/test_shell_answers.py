"""A shell's command through the real router (:meth:`Router.answer`), as the config's
``shell: {as: ID}``: the role looked up as it runs, the audit naming the shell, the reply
handed back with its exit status and nothing posted anywhere."""

from __future__ import annotations

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from bot.commands.routing.sources import SHELL
from bot.commands.specs import COMMANDS
from bot.control.answers import ShellAnswers
from bot.control.wire import EXIT_OK, EXIT_REFUSED, NO_OPERATOR
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import OPERATOR, T0, VIEWER, Calls


@pytest.fixture
def acl() -> Acl:
    return Acl([Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)])


@pytest.fixture
def shell_answers_router(ledger: Ledger, calls: Calls, acl: Acl) -> Router:
    return Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=calls.table(),
        audit=ledger.audit,
        chat=ledger.chat,
    )


def shell_as(router: Router, who: str | None) -> ShellAnswers:
    return ShellAnswers(
        router, lambda: who, ManualClock(T0), redact=lambda t: t.replace("s3cr3t", "[redacted]")
    )


async def test_an_operators_command_runs_and_is_audited_as_the_shells(
    shell_answers_router: Router, calls: Calls, ledger: Ledger
) -> None:
    """The command reaches its handler as the shell's operator, its answer comes back with
    exit 0, and the audit names connector and source ``shell``."""
    answer = await shell_as(shell_answers_router, OPERATOR)("send coder-1 run the tests")
    assert (answer.exit, answer.outcome, answer.command) == (EXIT_OK, "ok", "send")
    assert answer.text == "ran **send**"
    [req] = calls.requests
    assert (req.message.connector, req.message.sender, req.source) == (SHELL, OPERATOR, SHELL)
    [entry] = await ledger.audit.audit_entries()
    assert (entry.connector, entry.sender, entry.command, entry.outcome, entry.source) == (
        SHELL,
        OPERATOR,
        "send",
        "ok",
        SHELL,
    )


async def test_a_viewer_is_refused_a_control_command_with_exit_1(
    shell_answers_router: Router, calls: Calls, ledger: Ledger
) -> None:
    """A role that may not run the command is refused (exit 1, its reason as data), audited
    denied."""
    answer = await shell_as(shell_answers_router, VIEWER)("stop coder-1")
    assert (answer.exit, answer.outcome) == (EXIT_REFUSED, "denied")
    assert answer.data is not None and "needs the operator role" in str(answer.data["error"])
    assert calls.requests == []
    [entry] = await ledger.audit.audit_entries()
    assert (entry.outcome, entry.source) == ("denied", SHELL)


async def test_the_role_is_looked_up_as_each_command_runs(
    shell_answers_router: Router, acl: Acl, calls: Calls
) -> None:
    """An operator the ACL no longer lists is refused from then on, and audited."""
    answers = shell_as(shell_answers_router, OPERATOR)
    assert (await answers("ps")).exit == EXIT_OK
    acl.replace([Grant(VIEWER, Role.VIEWER)])
    refused = await answers("ps")
    assert (refused.exit, refused.outcome) == (EXIT_REFUSED, "denied")
    assert "operators:" in refused.text


async def test_without_a_shell_operator_nothing_runs_and_the_fix_is_said(
    shell_answers_router: Router, calls: Calls, ledger: Ledger
) -> None:
    """With no ``shell: {as: ID}`` every command is refused with the key to add."""
    answer = await shell_as(shell_answers_router, None)("ps")
    assert (answer.exit, answer.text) == (EXIT_REFUSED, NO_OPERATOR)
    assert calls.requests == [] and await ledger.audit.audit_entries() == []


async def test_the_answer_passes_the_redactor(shell_answers_router: Router, calls: Calls) -> None:
    """Every word of an answer, its text and its data, is redacted before it leaves."""
    plain = await ShellAnswers(shell_answers_router, lambda: OPERATOR, ManualClock(T0))(
        "s3cr3t now"
    )
    assert "s3cr3t" in plain.text  # the refusal names the word it could not read
    answer = await shell_as(shell_answers_router, OPERATOR)("s3cr3t now")
    assert answer.exit == EXIT_REFUSED
    assert "s3cr3t" not in answer.text and "s3cr3t" not in str(answer.data)
    assert "[redacted]" in answer.text
