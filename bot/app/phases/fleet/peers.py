"""The app's peers phase: the postbox of the messages between the fleet's agents
(:mod:`fleet.peers`), delivering as runs start and end and as live sessions' turns end, told
in both agents' threads; the hand-off of the tasks one agent gives another; and the peer
door's desk (what ``fw-msg`` reaches), opened in the registry of desks."""

from __future__ import annotations

from dataclasses import dataclass

from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.fleet.launching import Fleeted
from bot.app.phases.fleet.peer_traffic import tell_peer_traffic
from bot.app.stops import Stop
from fleet.peers.door import PeerDesk
from fleet.peers.handoff import Handoff
from fleet.peers.postbox import Postbox


@dataclass(frozen=True, slots=True)
class Peered:
    """What the peers phase made."""

    postbox: Postbox  # messages between agents: listen to hear each one
    handoff: Handoff  # the tasks handed on, each started through the admission
    desk: PeerDesk  # what the peer door reaches: the postbox, tasks handed on, the roster


async def start_peers(at: Grounds, ledgered: Ledgered, fleeted: Fleeted, desks: Desks) -> Peered:
    """The postbox over the started fleet, with what waited while Fleetwarden was away on
    its way, and the hand-off; the peer door reaches them from now on (its review desk: the
    review stage's, once one is made)."""
    ledger, fleet = ledgered.ledger, fleeted.fleet
    postbox = Postbox(
        messages=ledger.messages,
        runs=ledger.runs,
        fleet=fleet,
        admission=fleeted.admission,
        redact=at.redactor.redact,
        clock=at.clock,
        max_chars=at.cfg.defaults.message_chars,
        queue=at.cfg.defaults.message_queue,
    )
    at.stops.add(Stop.POSTBOX, postbox.stop)
    # Told in both agents' threads from the first message on, waiting ones swept at start.
    tell_peer_traffic(postbox, ledgered.notifier.post, at.clock, at.stops, ledger.reviews)
    fleet.subscribe(postbox.hear)  # a run's start or end, a turn's end: the next message
    await postbox.start()
    register = fleeted.register
    handoff = Handoff(postbox=postbox, register=register, tasks=ledger.tasks, runs=ledger.runs)
    at.stops.add(Stop.HANDOFFS, handoff.stop)
    fleet.subscribe(handoff.hear)  # a peer's run that ended takes the task handed to it
    await handoff.sweep()  # and those that waited while Fleetwarden was away
    desk = PeerDesk(postbox, handoff, fleeted.peer_roster.peers_text, desks.verdicts)
    desks.open_peers(desk)  # `fw-msg` reaches the postbox from now on
    return Peered(postbox, handoff, desk)
