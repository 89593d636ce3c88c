"""Run states in the whole product: the running App tells a connector with threads the
state of a real run's thread — working once the spawn's answer opened it, ended once the
run is stopped — through the redactor's wrapper, once per change."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.app.lifecycle import App
from bot.config import parse_config
from connectors.base import RoomId, RunState
from fleet.timing.clock import SystemClock
from tests.polling import eventually
from tests.unit.chat_fakes import ThreadedConnector

pytestmark = pytest.mark.integration

ROOM = "console"


class ThreadedConsole(ThreadedConnector):
    """The console's name and user, with threads and a home room: every run state it is
    told recorded (:attr:`run_states`)."""

    def __init__(self) -> None:
        super().__init__("console")

    @property
    def home_room(self) -> RoomId | None:
        return RoomId(ROOM)

    def says(self, text: str) -> None:
        self.person_says(ROOM, text, sender="console", addressed=True)


async def test_a_real_runs_thread_is_told_working_then_ended(tmp_path: Path) -> None:
    """A stub agent spawned in the App: its thread is told working (titled by the task the
    spawn made of its prompt) after the spawn's answer opened it, and ended when it is stopped."""
    config = parse_config(
        "state_dir: ./state\nconnectors:\n  console: {}\nmetering: {enabled: false}\n",
        "fleetwarden.yaml",
        base_dir=tmp_path,
    )
    chat = ThreadedConsole()
    app = App(config, clock=SystemClock(), environ={}, connectors=[chat])
    await app.start()
    try:
        chat.says('spawn nightly --prompt "count to 2"')
        await eventually(lambda: chat.run_states, "the run's state told")
        [(room, thread, state, title)] = chat.run_states
        assert (room, state, title) == (ROOM, RunState.WORKING, "count to 2")
        assert [root[1] for root in chat.roots] == ["nightly"]
        assert thread == "$root-1"  # the thread the spawn's answer opened
        chat.says("stop nightly --force")
        await eventually(
            lambda: chat.run_states[-1][2] is RunState.ENDED, "the run's end told", within=20
        )
    finally:
        await app.stop()
    states = [state for _, _, state, _ in chat.run_states]
    assert states[0] is RunState.WORKING and states[-1] is RunState.ENDED
    assert all(a is not b for a, b in itertools.pairwise(states))  # changes only
    assert {(r, t) for r, t, _, _ in chat.run_states} == {(ROOM, thread)}
