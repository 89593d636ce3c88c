"""Slack end to end: the real ``fleetwarden run`` on the fake Slack (Socket Mode through
the real slack-bolt), people writing in the control channel and in the agents' threads, as
the Slack app lets them."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import FAKE_KEY, Turn
from tests.fakes.slack.socket_mode import Hub
from tests.fakes.slack.state import Message
from tests.integration.budgets.priced import MODEL, USAGE
from tests.integration.connectors.slack.slack_run import eventually, slack_run

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]


async def test_spawn_from_the_channel_opens_the_agents_thread_and_session(tmp_path: Path) -> None:
    """A mention spawns c1: the answer is the root of c1's thread, which is a Slack agent
    session (processing, titled); the prefix works too; the viewers' group may look but
    not spawn; a stranger gets nothing."""
    async with slack_run(tmp_path, names=("c1",)) as run:
        world, people = run.world, run.people
        said = await run.answer(people.ann, "spawn c1 --runtime stub", mention=True)
        assert any("c1" in m.text for m in said), [m.text for m in said]
        thread = await eventually(lambda: run.thread_of("c1"))
        session = await eventually(lambda: world.sessions.get((run.channel, thread)))
        assert session.title and "c1" in session.title
        assert "processing" in session.history
        ps = await run.answer(people.ann, "!ps")
        assert any("c1" in m.text for m in ps)
        refused = await run.answer(people.vic, "!spawn c2 --runtime stub")
        assert any("viewer" in m.text for m in refused), [m.text for m in refused]
        before = len(run.bots())
        await run.says(people.sam, "!ps")
        await run.answer(people.ann, "!whoami")
        assert not any("sam" in m.text.lower() for m in run.bots()[before:])


HOSTILE = "<!channel> ping <@U0EVIL1> <!subteam^S0EVIL1> & <https://evil.example|click>"
ASKER = Path(__file__).parents[3] / "fakes" / "agents" / "asking_agent.py"


def asker_entry(workdir: Path) -> str:
    """The roster entry of ``asker`` (tests/fakes/agents/asking_agent.py), asking before each
    tool."""
    work = workdir / "asker-work"
    work.mkdir()
    shutil.copy(ASKER, work / ASKER.name)
    return (
        f"  - name: asker\n    runtime: command\n"
        f"    argv: [{sys.executable}, -I, {ASKER.name}]\n    workdir: ./asker-work\n"
        "    permissions: ask\n    approval_timeout: 30m\n"
    )


def agent_log(workdir: Path, agent: str) -> str:
    log = workdir / "state" / "agents" / agent / "output.log"
    return log.read_text(errors="replace") if log.exists() else ""


def buttons(message: Message) -> list[str]:
    """The labels of the buttons a message shows."""
    return [
        element["text"]["text"]
        for block in message.blocks or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]


async def test_an_approval_is_answered_by_its_button_in_the_agents_thread(
    tmp_path: Path,
) -> None:
    """asker asks to run a command: its thread shows the request with Approve / Always /
    Deny and the session waits on a person; a viewer's click is refused, said once, and
    changes nothing; the operator's Approve allows it, the message is replaced in place
    without its buttons, and the session works again."""
    async with slack_run(tmp_path, agents=asker_entry(tmp_path), names=("asker",)) as run:
        world, people = run.world, run.people
        await run.answer(people.ann, "!spawn asker")
        thread = await eventually(lambda: run.thread_of("asker"))
        await eventually(lambda: "asking agent ready" in agent_log(tmp_path, "asker"))
        ask = {"id": "call_1", "tool": "Bash", "subject": f"rm -rf build {HOSTILE}"}
        await run.says(people.ann, json.dumps(ask), thread)
        request = await eventually(lambda: next((m for m in run.bots(thread) if buttons(m)), None))
        assert buttons(request) == ["Approve", "Always", "Deny"]
        for inert in ("<!channel>", "<@U0EVIL1>", "<!subteam^S0EVIL1>", "<https://evil"):
            assert inert not in request.text and inert not in json.dumps(request.blocks)
        assert "&lt;!channel&gt;" in request.text
        session = world.sessions[(run.channel, thread)]
        await eventually(lambda: session.status == "suspended")

        before = len(run.bots(thread))
        await world.person_clicks(people.vic, run.channel, request.ts, label="Approve")
        refusal = await eventually(lambda: run.bots(thread)[before:])
        assert "vic" in refusal[0].text or people.vic in refusal[0].text
        assert "ANSWER call_1" not in agent_log(tmp_path, "asker")
        await world.person_clicks(people.vic, run.channel, request.ts, label="Approve")

        await world.person_clicks(people.ann, run.channel, request.ts, label="Approve")
        await eventually(lambda: "ANSWER call_1 allow" in agent_log(tmp_path, "asker"))
        await eventually(lambda: request.edited and not buttons(request))
        assert "Allowed" in request.text or "allowed" in request.text
        told = [m for m in run.bots(thread) if "is not an answer" in m.text]
        assert len(told) == 1  # the viewer is told once
        await eventually(lambda: session.status == "processing")
        assert "suspended" in session.history


async def test_slacks_stop_on_the_session_stops_the_run_as_stop_does(tmp_path: Path) -> None:
    """Stop on c1's session (agent_session_stopped) is `stop c1` from whoever clicked: a
    viewer's is refused as their typed `stop` would be; the operator's stops c1 and the
    session closes."""
    async with slack_run(tmp_path, names=("c1",)) as run:
        world, people = run.world, run.people
        await run.answer(people.ann, "!spawn c1 --runtime stub")
        thread = await eventually(lambda: run.thread_of("c1"))
        session = await eventually(lambda: world.sessions.get((run.channel, thread)))
        before = len(run.bots(thread))
        await world.person_stops_session(people.vic, run.channel, thread)
        refused = await eventually(lambda: run.bots(thread)[before:])
        assert "viewer" in refused[0].text, refused[0].text
        await world.person_stops_session(people.ann, run.channel, thread)
        await run.posted("Stopped", thread)
        await eventually(lambda: session.status == "closed")
        ps = await run.answer(people.ann, "!ps")
        rows = [line for m in ps for line in m.text.splitlines() if line.startswith("c1 ")]
        assert rows and all("stopped" in row for row in rows), [m.text for m in ps]


async def test_a_command_during_a_socket_refresh_is_answered_once(tmp_path: Path) -> None:
    """Slack asks for a new socket (`disconnect`, refresh_requested) and then closes the
    old one: a command written meanwhile is answered exactly once; so is one written while
    every socket is lost, once Fleetwarden has reconnected."""
    async with slack_run(tmp_path) as run:
        world, people = run.world, run.people
        hub = world.sockets
        assert isinstance(hub, Hub)

        async def answered_once(text: str, count: int) -> None:
            await run.says(people.ann, text)
            await eventually(lambda: sum(people.ann in m.text for m in run.bots()) >= count)
            await eventually(lambda: not hub.pending)  # acked: Slack sends it no more
            await run.answer(people.ann, "!help ps")  # handled after anything before it
            assert sum(people.ann in m.text for m in run.bots()) == count

        await world.refresh_sockets()
        await answered_once("!whoami", 1)
        await world.drop_sockets()
        await answered_once("!whoami", 2)


PRICED = """\
providers:
  anthropic:
    upstream: {upstream}
prices:
  {model}: {{input: 3.0, output: 15.0}}
"""
CAPPED = """\
  - name: coder
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
    run_budget: {{max_usd: 0.30, cutoff: ask, ask_within: 30m}}
"""


async def test_a_spend_ask_is_raised_by_its_button(tmp_path: Path) -> None:
    """coder's run reaches its $0.30 cap: its thread asks with Raise / Stop and the session
    waits; the operator's Raise lifts the cap by the offer, the held request is served and
    the ask, replaced in place, says who raised it."""
    with fake_provider_thread(default=Turn(text="spent", usage=USAGE)) as provider:
        async with slack_run(
            tmp_path,
            agents=CAPPED.format(model=MODEL),
            more=PRICED.format(upstream=provider.base_url, model=MODEL),
            env={"ANTHROPIC_API_KEY": FAKE_KEY},
            names=("coder",),
        ) as run:
            world, people = run.world, run.people
            await run.answer(people.ann, "!spawn coder")
            thread = await eventually(lambda: run.thread_of("coder"))
            await run.says(people.ann, "ask 3", thread)
            ask = await run.posted("reached its $0.30 cap", thread)
            assert buttons(ask) == ["Raise", "Stop"]
            session = world.sessions[(run.channel, thread)]
            await eventually(lambda: session.status == "suspended")
            await world.person_clicks(people.ann, run.channel, ask.ts, label="Raise")
            await run.posted("answer 3/3: spent", thread)
            await eventually(lambda: ask.edited and not buttons(ask))
            assert "Raised" in ask.text
            assert len(provider.requests) == 3


def burst_roster(count: int) -> str:
    """``count`` agents that start with Fleetwarden, say a line and fail at once."""
    return "".join(
        f"  - name: b{n}\n    runtime: command\n    autostart: true\n"
        f"    argv: [sh, -c, 'echo working; exit 3']\n"
        for n in range(count)
    )


async def test_fifty_agents_failing_at_once_are_paced_into_the_channel(tmp_path: Path) -> None:
    """50 agents start and fail at once: every failure is told in the control channel,
    posted no faster than Slack takes (never a `ratelimited` answer from Slack, nothing
    lost), never more than one message a failure. (How many of them wait for the same
    place, and so are merged, depends on how fast this machine starts them: the merge
    itself is proven on a burst the test controls, in ``test_slack_outbound.py``.)"""
    names = tuple(f"b{n}" for n in range(50))
    async with slack_run(tmp_path, agents=burst_roster(50), names=names) as run:

        def told() -> set[str]:
            return {name for name in names for m in run.bots() if f"*{name}* failed" in m.text}

        await eventually(lambda: len(told()) == 50, within=180)
        assert "ratelimited" not in run.world.errors_sent
        posts = [c for c in run.world.calls if c.method == "chat.postMessage"]
        assert len(posts) <= 50


async def test_the_guides_walk_from_a_mention_to_an_approved_tool_call(tmp_path: Path) -> None:
    """docs/slack.md with no key: `@Fleetwarden spawn demo --prompt "count to 3"` opens
    demo's thread; `tool ls -la` there asks with buttons; Approve lets it, and the stub
    says so in the thread."""
    demo = "  - name: demo\n    runtime: stub\n"
    async with slack_run(tmp_path, agents=demo, names=("demo",)) as run:
        world, people = run.world, run.people
        await run.answer(people.ann, 'spawn demo --prompt "count to 3"', mention=True)
        thread = await eventually(lambda: run.thread_of("demo"))
        await run.says(people.ann, "tool ls -la", thread)
        request = await eventually(lambda: next((m for m in run.bots(thread) if buttons(m)), None))
        assert "ls -la" in request.text and buttons(request) == ["Approve", "Always", "Deny"]
        await world.person_clicks(people.ann, run.channel, request.ts, label="Approve")
        await run.posted("tool 1: ls -la — allowed", thread)
