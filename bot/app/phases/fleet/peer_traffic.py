"""What agents say to each other, shown to the operator as it happens: each message the
postbox records or delivers told in both agents' threads (:mod:`bot.chat.peer_traffic`),
and both agents' dashboard pages rendered again. The postbox is the fleet's
(:mod:`fleet.peers`); these are the listeners the app gives it — the chat's once the
notifier and the postbox are made (the fleet phase), the dashboard's once its server runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from bot.app.stops import Stop, Stops
from bot.chat.peer_traffic import FoldSettings, PeerTraffic, verdicts_of
from fleet.ledger.records.peers import MessageRecord
from fleet.ledger.stores.peers.reviews import ReviewsStore
from fleet.notices import Delivery, Notice
from fleet.timing.clock import Clock

if TYPE_CHECKING:  # the dashboard's server (and jinja2) loads only where one is configured
    from bot.dashboard.serving.server import DashboardServer

Heard = Callable[[MessageRecord], Awaitable[None]]


class Listened(Protocol):
    """The postbox, as its listeners see it: each message recorded (queued or refused)
    and each delivery is given to every listener."""

    def listen(self, callback: Heard) -> None: ...


def tell_peer_traffic(
    postbox: Listened,
    post: Callable[[Notice], Awaitable[Delivery]],
    clock: Clock,
    stops: Stops,
    reviews: ReviewsStore | None = None,
    settings: FoldSettings | None = None,
) -> PeerTraffic:
    """Every message between agents told in chat through ``post`` (the notifier's), from
    now on, a review's with its verdict read from ``reviews`` (the ledger's); what a fold
    still holds is told when the app stops."""
    verdicts = None if reviews is None else verdicts_of(reviews)
    traffic = PeerTraffic(post, clock, settings, verdicts=verdicts)
    stops.add(Stop.PEER_TRAFFIC, traffic.stop)
    postbox.listen(traffic.heard)
    return traffic


def show_peer_traffic(postbox: Listened, server: DashboardServer | None) -> None:
    """Both agents' dashboard pages rendered again at each message (no server: nothing)."""
    if server is not None:
        postbox.listen(server.on_message)
