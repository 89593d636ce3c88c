"""Refused egress made visible: counted per agent in the real ledger (migration 13), shown by
`egress NAME`, and told in one notice per agent per hour, however many refusals come."""

from __future__ import annotations

from typing import Any

from bot.commands.handlers.places.egress import refusals_text
from fleet.ledger import Ledger
from fleet.notices import Notice
from fleet.sandbox.egress.egress_proxy import Refusal
from fleet.sandbox.egress.refusals import RefusalBook
from fleet.timing.clock import ManualClock


async def test_refusals_are_counted_in_the_ledger_and_told_once_an_hour(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Many refusals make one notice per agent; more within the hour wait for the next one;
    the ledger counts every refusal by destination and reason."""
    posted: list[Notice] = []

    async def post(notice: Notice) -> Any:
        posted.append(notice)

    book = RefusalBook(ledger.refusals, post, clock)
    for _ in range(5):
        book.note(Refusal("coder", "localhost", 443, "it resolves to 127.0.0.1"))
    book.note(Refusal("other", "evil.example", 443, "not on the agent's allow-list"))
    await book.flush()
    assert sorted(n.agents[0] for n in posted) == ["coder", "other"]
    first = next(n for n in posted if n.agents == ("coder",))
    assert "5 egress attempt(s) refused" in first.markdown and "`localhost:443`" in first.markdown
    book.note(Refusal("coder", "github.com", 22, "CONNECT goes only to port 443, not 22"))
    clock.advance(30 * 60)
    await book.flush()
    assert len(posted) == 2  # within the hour: counted, not told
    clock.advance(31 * 60)
    await book.flush()
    assert len(posted) == 3 and "github.com:22" in posted[-1].markdown
    counts = await book.counts("coder")
    assert {(c.target, c.count) for c in counts} == {("localhost:443", 5), ("github.com:22", 1)}
    assert await book.totals() == {"coder": 6, "other": 1}
    text = refusals_text(counts, clock.now())
    assert "Refused: 6 attempt(s)" in text and "forward proxy" in text
