"""The ends of stage runs a gate's ask waits for (fleet.pipelines.ends): an expected end
holds the ask until it is heard, an end heard first or never expected holds nothing, and
one never heard holds it no longer than its bound."""

from __future__ import annotations

import asyncio

from fleet.pipelines.ends import RunEnds


async def test_an_expected_end_holds_the_ask_until_it_is_heard() -> None:
    """`told` returns only after `heard` of the run expected."""
    ends = RunEnds()
    ends.expect((3, 7))
    waiting = asyncio.create_task(ends.told(7))
    await asyncio.sleep(0)  # one turn of the loop: it waits
    assert not waiting.done()
    ends.heard(7)
    await asyncio.wait_for(waiting, 5)


async def test_an_end_heard_first_or_not_expected_holds_nothing() -> None:
    """Heard before it was expected, or never expected: `told` returns at once."""
    ends = RunEnds()
    ends.heard(4)
    ends.expect((4,))
    await asyncio.wait_for(ends.told(4), 1)
    await asyncio.wait_for(ends.told(9), 1)
    ends.expect(())  # a task with no run expects nothing


async def test_an_end_never_heard_holds_the_ask_only_to_its_bound() -> None:
    """A run that ended while Fleetwarden was away is never heard: the ask goes anyway."""
    ends = RunEnds(wait=0.01)
    ends.expect((5,))
    await asyncio.wait_for(ends.told(5), 5)
    await asyncio.wait_for(ends.told(5), 1)  # no longer expected
