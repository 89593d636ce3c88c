"""The ledger's ``spend_asks`` (migration 27), on SQLite and PostgreSQL: an ask at a run's
cap kept once with its offer and fallback, listed per run, settled once."""

from __future__ import annotations

from fleet.ledger import Ledger
from fleet.ledger.records.approvals import Ask
from fleet.ledger.stores.spend.spend_asks import SpendAsk
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0


async def test_an_ask_is_kept_once_and_settled_once(ledger: Ledger, clock: ManualClock) -> None:
    """Recorded twice, one row; settled twice, the first counts, with who and when."""
    request, _ = await ledger.approvals.open_approval(
        agent="coder",
        run_id=3,
        channel="spend",
        ask=Ask("cap:1", "spend", "coder reached its $2.00 cap", "`raise coder +$2`"),
        deadline=T0,
        starter=None,
    )
    ask = SpendAsk(request.id, "coder", 3, "usd", 2.0, 2.0, "stop", T0)
    await ledger.spend_asks.record_spend_ask(ask)
    await ledger.spend_asks.record_spend_ask(ask)
    assert await ledger.spend_asks.spend_asks_of("coder", 3) == [ask]
    assert await ledger.spend_asks.spend_asks_of("coder", 4) == []
    clock.advance(5)
    assert await ledger.spend_asks.settle_spend_ask(request.id, "raised", 3.5, "@ann:x")
    assert not await ledger.spend_asks.settle_spend_ask(request.id, "stopped", None, None)
    settled = await ledger.spend_asks.spend_ask(request.id)
    assert settled is not None
    assert (settled.outcome, settled.amount, settled.settled_by) == ("raised", 3.5, "@ann:x")
    assert settled.settled_at is not None and settled.settled_at > T0
    assert await ledger.spend_asks.spend_ask("zzzz") is None
