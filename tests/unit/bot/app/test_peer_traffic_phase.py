"""The listeners the app gives the postbox (:mod:`bot.app.phases.fleet.peer_traffic`): each
message it records or delivers told in chat through the notice board, what a fold still
holds told when the app stops, a review's with its verdict, and both agents' dashboard pages
rendered again when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from bot.acl import Acl
from bot.app.phases.fleet.peer_traffic import Heard, show_peer_traffic, tell_peer_traffic
from bot.app.stops import Stops
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.pages.views import Views
from bot.dashboard.serving.live import Full, LiveHub
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger import Ledger
from fleet.ledger.records.peers import NewMessage, NewReview, ReviewState
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.notices import Delivery, Notice
from fleet.timing.clock import ManualClock
from tests.postgres_server import free_port
from tests.unit.bot.dashboard.test_dashboard_server import FixedViews


class Postbox:
    """A postbox's listeners, called as the postbox calls them."""

    def __init__(self) -> None:
        self.listeners: list[Heard] = []

    def listen(self, callback: Heard) -> None:
        self.listeners.append(callback)


async def test_each_message_is_told_and_the_fold_is_told_at_the_stop(
    ledger: Ledger, clock: ManualClock
) -> None:
    postbox, stops, posted = Postbox(), Stops(), list[Notice]()

    async def post(notice: Notice) -> Delivery:
        posted.append(notice)
        return Delivery()

    tell_peer_traffic(postbox, post, clock, stops)
    (heard,) = postbox.listeners
    first = await ledger.messages.add_message(NewMessage("coder", "reviewer", "one"))
    second = await ledger.messages.add_message(NewMessage("coder", "reviewer", "two"))
    await heard(first)
    await heard(second)  # within the gap: held
    assert [n.markdown for n in posted] == ["✉ **coder** → **reviewer**:\n> one"]
    await stops.run()
    assert [n.markdown for n in posted][1:] == ["✉ **coder** → **reviewer**:\n> two"]
    assert posted[1].agents == ("coder", "reviewer") and not posted[1].home_too


async def test_the_dashboard_listens_only_when_it_runs(ledger: Ledger, clock: ManualClock) -> None:
    postbox = Postbox()
    show_peer_traffic(postbox, None)
    assert postbox.listeners == []
    signins = SignIns(ledger.dashboard, Acl([]), clock)
    server = DashboardServer(
        DashboardSection(listen=f"127.0.0.1:{free_port()}").settings(),
        views=cast(Views, FixedViews()),
        signins=signins,
        metrics=Metrics(),
        state_dir=Path("/nonexistent"),
        environ={},
    )
    rendered: list[str] = []

    async def render(topic: str) -> str:
        rendered.append(topic)
        return f"<p>{len(rendered)}</p>"

    server.hub = LiveHub(render, signins.live, tick=3600)  # renders only when poked
    show_peer_traffic(postbox, server)
    assert postbox.listeners == [server.on_message]
    watcher = server.hub.watch("agent:reviewer")
    assert not isinstance(watcher, Full)
    assert await watcher.next(30) == "<p>1</p>"
    refused = await ledger.messages.add_message(
        NewMessage("coder", "<b>x</b>", "hi", state="refused", why="no agent named <b>x</b>")
    )
    await postbox.listeners[0](refused)  # a name that is no agent's makes no page's topic
    sent = await ledger.messages.add_message(NewMessage("coder", "reviewer", "look"))
    await postbox.listeners[0](sent)
    assert await watcher.next(30) == "<p>2</p>"
    assert rendered == ["agent:reviewer", "agent:reviewer"]
    await server.hub.stop()


async def test_a_reviews_verdict_is_told_with_it_once_answered(
    ledger: Ledger, clock: ManualClock
) -> None:
    postbox, stops, posted = Postbox(), Stops(), list[Notice]()

    async def post(notice: Notice) -> Delivery:
        posted.append(notice)
        return Delivery()

    tell_peer_traffic(postbox, post, clock, stops, ledger.reviews)
    (heard,) = postbox.listeners
    task = await ledger.tasks.add_task(NewTask("Fix login", "chat", "op"), NO_PROJECTION)
    asked = await ledger.reviews.add_review(NewReview(task.id, "coder", "reviewer", 1, 2))
    early = NewMessage("reviewer", "coder", "still reading", kind="review", task_id=task.id)
    await heard(await ledger.messages.add_message(early))  # not answered yet: no verdict
    assert await ledger.reviews.answer(asked.id, "changes", "rename the flag")
    clock.advance(60)  # past the fold's gap
    answer = NewMessage("reviewer", "coder", "rename the flag", kind="review", task_id=task.id)
    await heard(await ledger.messages.add_message(answer))
    await stops.run()
    assert [n.markdown for n in posted] == [
        "✉ **reviewer** → **coder**, review:\n> still reading",
        "✉ **reviewer** → **coder**, review: changes, back to coder:\n> rename the flag",
    ]


async def test_a_verdict_that_ends_the_rounds_says_it_went_to_a_human(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Round 2 of 2 asking for changes, and an approval, are told as going to a human,
    never as delivered to the coder."""
    postbox, stops, posted = Postbox(), Stops(), list[Notice]()

    async def post(notice: Notice) -> Delivery:
        posted.append(notice)
        return Delivery()

    tell_peer_traffic(postbox, post, clock, stops, ledger.reviews)
    (heard,) = postbox.listeners
    answers: list[tuple[str, ReviewState, int]] = [
        ("Fix login", "changes", 2),
        ("Fix logout", "approved", 1),
    ]
    for title, state, round_ in answers:
        task = await ledger.tasks.add_task(NewTask(title, "chat", "op"), NO_PROJECTION)
        asked = await ledger.reviews.add_review(NewReview(task.id, "coder", "reviewer", round_, 2))
        assert await ledger.reviews.answer(asked.id, state, "said")
        verdict = NewMessage(
            "reviewer", "coder", "said", kind="review", task_id=task.id, state="delivered"
        )
        await heard(await ledger.messages.add_message(verdict))
        clock.advance(60)  # past the fold's gap
    await stops.run()
    assert [n.markdown for n in posted] == [
        "✉ **reviewer** → **coder**, review: changes, to a human:\n> said",
        "✉ **reviewer** → **coder**, review: approve, to a human:\n> said",
    ]
