"""What the real Slack connector posts on the fake Slack: paced under Slack's limits with
its ``ratelimited`` waited out, hostile text inert, alerts that ping, choices as buttons
answered by a click and replaced in place, and runs shown as agent sessions."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from connectors.base import Choice, EventId, OutboundMessage, RoomId, RunState, ThreadId
from tests.integration.connectors.slack.rig import Rig, slack_rig

pytestmark = pytest.mark.integration

HOSTILE = "<!channel> <!here> <@U0BOSS001> <!subteam^S0TEAM01|@team> &amp; <https://evil|ok>"


def posts(rig: Rig) -> int:
    return sum(call.method == "chat.postMessage" for call in rig.world.calls)


def say(rig: Rig, text: str, thread: str | None = None, **more: object) -> OutboundMessage:
    return OutboundMessage(
        room=RoomId(rig.channel),
        markdown=text,
        thread_id=None if thread is None else ThreadId(thread),
        **more,  # type: ignore[arg-type]
    )


async def test_a_burst_is_merged_and_paced_without_errors(tmp_path: Path) -> None:
    """Forty agents' lines sent at once into one thread all arrive, in order, in a few
    messages posted at most once a second: no send fails, nothing is refused."""
    async with slack_rig(tmp_path) as rig:
        thread = await rig.connector.open_thread(RoomId(rig.channel), "coder", "coder started")
        lines = [f"agent-{n} says line {n}" for n in range(40)]
        sent = await asyncio.gather(*(rig.connector.send(say(rig, line, thread)) for line in lines))
        assert all(len(result.event_ids) == 1 for result in sent)
        stored = [m.text for m in rig.world.messages(rig.channel, thread_ts=thread)[1:]]
        assert re.findall(r"agent-\d+ says line \d+", "\n".join(stored)) == lines
        assert len(stored) < 10 and "ratelimited" not in rig.world.errors_sent


async def test_many_agents_threads_interleaved_are_merged_per_thread(tmp_path: Path) -> None:
    """Four agents, each in its thread, all talking at once: each thread gets its lines in
    order in one or two messages; the channel is not flooded and no send fails."""
    async with slack_rig(tmp_path) as rig:
        room = RoomId(rig.channel)
        threads = [
            await rig.connector.open_thread(room, f"a{n}", f"a{n} started") for n in range(4)
        ]
        lines = [(thread, f"{thread} line {k}") for k in range(5) for thread in threads]
        await asyncio.gather(
            *(rig.connector.send(say(rig, text, thread)) for thread, text in lines)
        )
        for thread in threads:
            replies = [m.text for m in rig.world.messages(rig.channel, thread_ts=thread)[1:]]
            assert "\n".join(replies).split("\n") == [f"{thread} line {k}" for k in range(5)]
            assert len(replies) <= 2
        assert "ratelimited" not in rig.world.errors_sent


async def test_ratelimited_is_waited_out_never_surfaced(tmp_path: Path) -> None:
    """Where Slack allows fewer posts than the pacing assumes, its ``ratelimited`` answers
    are waited out (their Retry-After) and the same post sent again: every send succeeds."""
    async with slack_rig(tmp_path) as rig:
        rig.world.limits.post_rate = 0.5
        asks = (Choice("Approve", "✅"),)  # buttons: never merged, each its own post
        sent = [await rig.connector.send(say(rig, f"ask {n}", choices=asks)) for n in range(3)]
        assert [rig.world.find(rig.channel, s.event_ids[0]).text for s in sent] == [  # type: ignore[union-attr]
            "ask 0",
            "ask 1",
            "ask 2",
        ]
        assert "ratelimited" in rig.world.errors_sent


async def test_hostile_text_is_inert_in_what_slack_stores(tmp_path: Path) -> None:
    """Agent text naming <!channel>, <!here>, users and groups reaches Slack escaped, in
    the text and in the blocks: no mention, no link of its own."""
    async with slack_rig(tmp_path) as rig:
        markdown = f"{HOSTILE}\n\n`{HOSTILE}`\n\n```\n{HOSTILE}\n```"
        [ts] = (await rig.connector.send(say(rig, markdown))).event_ids
        stored = rig.world.find(rig.channel, ts)
        assert stored is not None
        shown = [stored.text, *(b["text"]["text"] for b in stored.blocks)]
        for text in shown:
            assert "<" not in text and "&lt;!channel&gt;" in text
        [post] = [c for c in rig.world.calls if c.method == "chat.postMessage"]
        assert "link_names" not in post.args and "parse" not in post.args


async def test_a_look_alike_address_label_is_shown_with_its_real_link(tmp_path: Path) -> None:
    """A link labelled ``gіthub.com`` (a Cyrillic ``і``), or in full-width letters, reaches
    Slack as its label followed by the real link, never as a link hidden behind it."""
    async with slack_rig(tmp_path) as rig:
        evil = "https://evil.example/login"
        for label in ("g\u0456thub.com", "\uff47\uff49\uff54\uff48\uff55\uff42.com"):
            [ts] = (await rig.connector.send(say(rig, f"see [{label}]({evil})"))).event_ids
            stored = rig.world.find(rig.channel, ts)
            assert stored is not None
            for text in (stored.text, *(b["text"]["text"] for b in stored.blocks)):
                assert re.findall(r"<[^>]*>", text) == [f"<{evil}>"], text
                assert f"{label} (<{evil}>)" in text
        [ts] = (await rig.connector.send(say(rig, f"see [the guide]({evil})"))).event_ids
        assert f"<{evil}|the guide>" in rig.world.find(rig.channel, ts).text  # type: ignore[union-attr]


async def test_an_alert_pings_the_on_call_users(tmp_path: Path) -> None:
    """An alert without mentions starts with the configured on-call users' mentions."""
    async with slack_rig(tmp_path, on_call=["U0ONCALL01"]) as rig:
        [ts] = (await rig.connector.send(say(rig, "coder **failed**", alert=True))).event_ids
        stored = rig.world.find(rig.channel, ts)
        assert stored is not None and stored.text == "<@U0ONCALL01> coder *failed*"


async def test_a_click_answers_and_the_edit_drops_the_buttons(tmp_path: Path) -> None:
    """Approve by button is the ✅ reaction to the message; Yes by button is an addressed
    ``yes`` in its thread; the edit that answers it replaces it without the buttons."""
    async with slack_rig(tmp_path) as rig:
        thread = await rig.connector.open_thread(RoomId(rig.channel), "coder", "coder started")
        choices = (
            Choice("Approve", "✅", style="primary"),
            Choice("Yes", "yes", as_reply=True),
            Choice("Deny", "❌", style="danger"),
        )
        [ts] = (
            await rig.connector.send(say(rig, "coder asks: run `ls`?", thread, choices=choices))
        ).event_ids
        stored = rig.world.find(rig.channel, ts)
        assert stored is not None and [b["type"] for b in stored.blocks] == ["section", "actions"]
        await rig.world.person_clicks(rig.ann, rig.channel, ts, label="Approve")
        got = await rig.next()
        assert (got.text, got.reacts_to, got.thread_id, got.sender) == ("✅", ts, thread, rig.ann)
        assert got.event_id is not None and got.event_id.startswith("action:")
        await rig.world.person_clicks(rig.ann, rig.channel, ts, label="Yes")
        reply = await rig.next()
        assert (reply.text, reply.addressed, reply.thread_id, reply.reacts_to) == (
            "yes",
            True,
            thread,
            None,
        )
        await rig.connector.edit(RoomId(rig.channel), EventId(ts), "✅ Allowed once by ann")
        stored = rig.world.find(rig.channel, ts)
        assert stored is not None and stored.text == "✅ Allowed once by ann"
        assert [b["type"] for b in stored.blocks] == ["section"]


async def test_edits_of_one_message_are_coalesced_the_last_wins(tmp_path: Path) -> None:
    """Many edits of one message at once: it ends with the last text, in fewer updates."""
    async with slack_rig(tmp_path) as rig:
        [ts] = (await rig.connector.send(say(rig, "progress 0"))).event_ids
        edits = [
            rig.connector.edit(RoomId(rig.channel), EventId(ts), f"progress {n}")
            for n in range(1, 8)
        ]
        await asyncio.gather(*edits)
        stored = rig.world.find(rig.channel, ts)
        assert stored is not None and stored.text == "progress 7"
        assert sum(c.method == "chat.update" for c in rig.world.calls) < 7


async def test_a_run_s_state_is_its_thread_s_agent_session(tmp_path: Path) -> None:
    """show_run_state sets the thread's session: processing, suspended, active, closed;
    its title the first call's, escaped and within 200 characters."""
    async with slack_rig(tmp_path) as rig:
        room = RoomId(rig.channel)
        thread = await rig.connector.open_thread(room, "coder", "coder started")
        title = "fix <!channel> " + "x" * 300
        for state in (RunState.WORKING, RunState.WAITING, RunState.IDLE, RunState.ENDED):
            await rig.connector.show_run_state(room, thread, state, title)
        session = rig.world.sessions[(rig.channel, thread)]
        assert session.history == ["processing", "suspended", "active", "closed"]
        assert session.title is not None and len(session.title) <= 200
        assert session.title.startswith("fix &lt;!channel&gt; x")


async def test_a_workspace_without_sessions_turns_them_off_quietly(tmp_path: Path) -> None:
    """A workspace refusing agent sessions: no error for the caller, and no more asking."""
    async with slack_rig(tmp_path) as rig:
        rig.world.sessions_allowed = False
        room = RoomId(rig.channel)
        thread = await rig.connector.open_thread(room, "coder", "coder started")
        await rig.connector.show_run_state(room, thread, RunState.WORKING, "t")
        await rig.connector.show_run_state(room, thread, RunState.IDLE, "t")
        asked = [c for c in rig.world.calls if c.method == "agents.sessions.setStatus"]
        assert len(asked) == 1 and rig.world.sessions == {}


async def test_agent_sessions_off_in_the_config_asks_nothing(tmp_path: Path) -> None:
    """``agent_sessions: false``: show_run_state does nothing."""
    async with slack_rig(tmp_path, agent_sessions=False) as rig:
        room = RoomId(rig.channel)
        thread = await rig.connector.open_thread(room, "coder", "coder started")
        await rig.connector.show_run_state(room, thread, RunState.WORKING, "t")
        assert not any(c.method == "agents.sessions.setStatus" for c in rig.world.calls)


async def test_slack_s_stop_is_a_stop_command_for_the_thread_s_agent(tmp_path: Path) -> None:
    """Stop on a run's session is ``stop <agent>`` (the thread's topic in the ledger),
    addressed, in that thread, from the person who clicked it."""
    async with slack_rig(tmp_path) as rig:
        room = RoomId(rig.channel)
        thread = await rig.connector.open_thread(room, "coder", "coder started")
        await rig.ledger.chat.bind_thread("slack", rig.channel, "coder", thread)
        await rig.connector.show_run_state(room, thread, RunState.WORKING, "fix it")
        await rig.world.person_stops_session(rig.ann, rig.channel, thread)
        got = await rig.next()
        assert (got.text, got.addressed, got.thread_id, got.sender) == (
            "stop coder",
            True,
            thread,
            rig.ann,
        )
        assert got.event_id is not None and got.event_id.startswith("Ev")


async def test_links_name_the_workspace_channel_and_thread(tmp_path: Path) -> None:
    """A message's link is Slack's archive link, naming its thread for a reply."""
    async with slack_rig(tmp_path) as rig:
        room = RoomId(rig.channel)
        link = rig.connector.message_link(
            room, EventId("1700000000.000200"), ThreadId("1700000000.000100")
        )
        assert link == (
            f"https://fleet-team.slack.com/archives/{rig.channel}/p1700000000000200"
            f"?thread_ts=1700000000.000100&cid={rig.channel}"
        )
        assert (await rig.connector.health()).ok
