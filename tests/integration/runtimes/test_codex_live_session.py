"""A live Codex session (``codex app-server``, the real pinned CLI) spoken to through
Fleetwarden's protocol against the fake provider: what is asked, what allow and deny do,
what the model hears, turns sent while one runs, and interrupts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleet.ledger.records.approvals import Decision
from fleet.model import AgentSpec, PermissionMode
from fleet.names import AgentName
from fleet.sessions.base import Asked, Effect, TurnEnded
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.runtimes.codex_live import ACCEPT, MODEL, LiveCodex

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

TOUCH = Turn(text="", tool=ToolCall("exec_command", {"cmd": "touch made.txt"}))
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
EDIT = Turn(text="", tool=ToolCall("apply_patch", freeform=PATCH))
DONE = Turn(text="(done)")
SLOW = Turn(text=" ".join("word" for _ in range(30)), delay_between_events=0.2)


def spec(mode: PermissionMode, **fields: Any) -> AgentSpec:
    return AgentSpec(
        AgentName("cx"),
        runtime="codex",
        model=MODEL,
        prompt="do it",
        secret_env=("OPENAI_API_KEY",),
        sandbox="none",
        permissions=mode,
        **fields,
    )


def asked(effect: Effect) -> bool:
    return isinstance(effect, Asked)


def ended(effect: Effect) -> bool:
    return isinstance(effect, TurnEnded)


def user_words(fake: FakeProvider) -> list[list[str]]:
    """Per model request, the user's words it carried, in order."""
    out = []
    for request in fake.requests:
        items = request.body.get("input") if isinstance(request.body, dict) else None
        words = [
            part.get("text", "")
            for item in items or []
            if item.get("type") == "message" and item.get("role") == "user"
            for part in item.get("content") or []
        ]
        out.append([w for w in words if not w.startswith("<")])
    return out


def last_input(fake: FakeProvider) -> str:
    body = fake.requests[-1].body
    return json.dumps(body.get("input") if isinstance(body, dict) else None)


async def test_an_asked_command_runs_when_allowed(tmp_path: Path) -> None:
    """With ``ask``, a shell command is asked (its command line, unwrapped); allow runs it."""
    async with (
        FakeProvider(TOUCH, Turn(text="made it"), default=DONE, accept=ACCEPT) as fake,
        LiveCodex(spec(PermissionMode.ASK), fake, tmp_path) as live,
    ):
        effect = await live.until(asked)
        assert isinstance(effect, Asked)
        assert (effect.ask.tool, effect.ask.subject) == ("commandExecution", "touch made.txt")
        assert effect.ask.pattern == "Bash(touch made.txt)"
        assert not (live.work / "made.txt").exists()
        await live.answer(effect.ask.native_id, Decision.ALLOW)
        await live.until(ended)
        assert (live.work / "made.txt").exists()


async def test_a_denied_command_does_not_run_and_the_model_hears_why(tmp_path: Path) -> None:
    """Deny with a reason: the command does not run, and the model's next request carries
    the refusal and then the operator's reason."""
    async with (
        FakeProvider(TOUCH, Turn(text="ok, not touching"), default=DONE, accept=ACCEPT) as fake,
        LiveCodex(spec(PermissionMode.ASK), fake, tmp_path) as live,
    ):
        effect = await live.until(asked)
        assert isinstance(effect, Asked)
        await live.answer(effect.ask.native_id, Decision.DENY, "use /tmp instead")
        await live.until(ended)
        assert not (live.work / "made.txt").exists()
        heard = last_input(fake)
        assert "rejected by user" in heard
        assert "The operator denied `touch made.txt`: use /tmp instead" in heard
        assert heard.index("rejected by user") < heard.index("use /tmp instead")


async def test_an_asked_edit_shows_its_file_and_diff(tmp_path: Path) -> None:
    """With ``ask``, an edit is asked with its file and diff; deny leaves it unwritten and
    the model hears why; a second edit allowed is written."""
    async with (
        FakeProvider(
            EDIT, Turn(text="fine"), EDIT, Turn(text="ok"), default=DONE, accept=ACCEPT
        ) as fake,
        LiveCodex(spec(PermissionMode.ASK), fake, tmp_path) as live,
    ):
        effect = await live.until(asked)
        assert isinstance(effect, Asked)
        assert (effect.ask.tool, effect.ask.subject) == ("fileChange", "hello.txt")
        assert "hello.txt (add)" in effect.ask.detail and "hello" in effect.ask.detail
        await live.answer(effect.ask.native_id, Decision.DENY, "not that file")
        await live.until(ended)
        assert not (live.work / "hello.txt").exists()
        assert "patch rejected by user" in last_input(fake)
        assert "not that file" in last_input(fake)
        await live.send("try again")
        effect = await live.until(asked)
        assert isinstance(effect, Asked)
        await live.answer(effect.ask.native_id, Decision.ALLOW)
        await live.until(ended)
        assert (live.work / "hello.txt").read_text() == "hello\n"


async def test_edits_mode_lets_workdir_edits_pass_and_asks_for_commands(tmp_path: Path) -> None:
    """With ``edits``, an edit inside the workdir is written without asking; a command is
    still asked."""
    async with (
        FakeProvider(EDIT, TOUCH, Turn(text="done"), default=DONE, accept=ACCEPT) as fake,
        LiveCodex(spec(PermissionMode.EDITS), fake, tmp_path) as live,
    ):
        effect = await live.until(asked)
        assert isinstance(effect, Asked)
        assert effect.ask.tool == "commandExecution"
        assert (live.work / "hello.txt").read_text() == "hello\n"
        assert [e for e in live.effects if isinstance(e, Asked)] == [effect]
        await live.answer(effect.ask.native_id, Decision.DENY)
        await live.until(ended)
        assert not (live.work / "made.txt").exists()


@pytest.mark.parametrize("rule", ["Bash(touch *)", "Bash(touch made.txt)"])
async def test_an_allow_rule_runs_a_command_without_asking(rule: str, tmp_path: Path) -> None:
    """An ``allow:`` rule lets its command run unasked: a prefix rule as Codex's own
    execpolicy rule, an exact one answered by Fleetwarden."""
    async with FakeProvider(TOUCH, Turn(text="done"), default=DONE, accept=ACCEPT) as fake:
        agent = spec(PermissionMode.ASK, allow=(rule,))
        async with LiveCodex(agent, fake, tmp_path) as live:
            await live.until(ended)
            assert (live.work / "made.txt").exists()
            assert not [e for e in live.effects if isinstance(e, Asked)]


async def test_a_deny_rule_holds_even_when_nothing_asks(tmp_path: Path) -> None:
    """With ``full`` (Codex never asks), a ``deny:`` rule still refuses its command, as
    Codex's own execpolicy rule, and the model reads the rule."""
    async with FakeProvider(TOUCH, Turn(text="done"), default=DONE, accept=ACCEPT) as fake:
        agent = spec(PermissionMode.FULL, deny=("Bash(touch *)",))
        async with LiveCodex(agent, fake, tmp_path) as live:
            await live.until(ended)
            assert not (live.work / "made.txt").exists()
            assert "Bash(touch *) denies it" in last_input(fake)


async def test_read_only_declines_without_asking(tmp_path: Path) -> None:
    """With ``read-only``, a command that would change something is declined by the
    agent's mode, unasked, and the model hears why."""
    async with (
        FakeProvider(TOUCH, EDIT, Turn(text="done"), default=DONE, accept=ACCEPT) as fake,
        LiveCodex(spec(PermissionMode.READ_ONLY), fake, tmp_path) as live,
    ):
        await live.until(ended)
        assert not (live.work / "made.txt").exists()
        assert not (live.work / "hello.txt").exists()
        assert not [e for e in live.effects if isinstance(e, Asked)]
        assert "read-only" in last_input(fake)


async def test_a_send_while_a_turn_runs_arrives_in_order(tmp_path: Path) -> None:
    """A turn sent while one runs reaches the same process, after the first words; a
    turn sent when idle starts the next turn there."""
    async with (
        FakeProvider(
            SLOW, Turn(text="both"), Turn(text="third"), default=DONE, accept=ACCEPT
        ) as fake,
        LiveCodex(spec(PermissionMode.ASK), fake, tmp_path) as live,
    ):
        await live.until(lambda _: live.live.turn_id is not None and bool(fake.requests))
        pid = live.proc.pid if live.proc else None
        await live.send("and then this")
        await live.until(ended)
        assert user_words(fake)[-1][-2:] == ["do it", "and then this"]
        await live.send("one more")
        await live.until(ended)
        assert user_words(fake)[-1][-3:] == ["do it", "and then this", "one more"]
        assert live.proc is not None and live.proc.pid == pid
        assert live.proc.returncode is None


async def test_interrupt_ends_the_turn_and_keeps_the_agent(tmp_path: Path) -> None:
    """``interrupt`` ends the running turn; the process stays and takes the next turn."""
    async with (
        FakeProvider(SLOW, Turn(text="after"), default=DONE, accept=ACCEPT) as fake,
        LiveCodex(spec(PermissionMode.ASK), fake, tmp_path) as live,
    ):
        await live.until(lambda _: live.live.turn_id is not None and bool(fake.requests))
        await live.interrupt()
        await live.until(ended)
        assert any('"status":"interrupted"' in line for line in live.lines)
        assert live.proc is not None and live.proc.returncode is None
        await live.send("go on")
        await live.until(ended)
        assert user_words(fake)[-1][-1] == "go on"
        assert any('"text":"after"' in line for line in live.lines)


@pytest.mark.parametrize("mode", [PermissionMode.EDITS, PermissionMode.READ_ONLY])
async def test_reading_the_workdir_passes_unasked(mode: PermissionMode, tmp_path: Path) -> None:
    """With ``edits`` or ``read-only``, ``cat notes.txt`` (which Codex asks about) runs
    unasked: the model reads the file."""
    read = Turn(text="", tool=ToolCall("exec_command", {"cmd": "cat notes.txt"}))
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("ship on Friday\n")
    async with (
        FakeProvider(read, Turn(text="read it"), default=DONE, accept=ACCEPT) as fake,
        LiveCodex(spec(mode), fake, tmp_path) as live,
    ):
        await live.until(ended)
        assert not [e for e in live.effects if isinstance(e, Asked)]
        assert "ship on Friday" in last_input(fake)
