"""The ledger's dashboard tables (migration 19) and the sums its pages read, on SQLite and
on PostgreSQL: a link is used once, before it expires; sessions end when revoked."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fleet.ledger import Ledger
from fleet.ledger.stores.operators.dashboard import SignIn
from fleet.timing.clock import ManualClock
from tests.unit.fleet.ledger.test_ledger_metering import event


def link_for(clock: ManualClock, user: str = "@alice:example.org") -> SignIn:
    expires = clock.now() + timedelta(minutes=10)
    return SignIn("matrix", user, "viewer", ("role:1", "role:2"), expires)


async def test_a_link_opens_one_session_once_before_it_expires(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Used once, a link signs in that person with their role and groups; never again."""
    await ledger.dashboard.add_dashboard_link("d-link", link_for(clock), clock.now())
    later = clock.now() + timedelta(hours=12)
    found = await ledger.dashboard.redeem_dashboard_link("d-link", "d-session", clock.now(), later)
    assert found == SignIn("matrix", "@alice:example.org", "viewer", ("role:1", "role:2"), later)
    assert (
        await ledger.dashboard.redeem_dashboard_link("d-link", "d-other", clock.now(), later)
        is None
    )
    session = await ledger.dashboard.dashboard_session("d-session", clock.now())
    assert session is not None and session.user_id == "@alice:example.org"
    assert await ledger.dashboard.dashboard_session("d-other", clock.now()) is None
    assert await ledger.dashboard.live_dashboard_sessions(clock.now()) == {"d-session"}
    assert await ledger.dashboard.dashboard_session("d-session", later) is None  # expired


async def test_an_expired_or_unknown_link_opens_nothing(ledger: Ledger, clock: ManualClock) -> None:
    """Past its ten minutes, or never issued, a link is refused and no session is made."""
    await ledger.dashboard.add_dashboard_link("d-link", link_for(clock), clock.now())
    clock.advance(600)
    until = clock.now() + timedelta(hours=1)
    assert await ledger.dashboard.redeem_dashboard_link("d-link", "d-s", clock.now(), until) is None
    assert await ledger.dashboard.redeem_dashboard_link("nope", "d-s", clock.now(), until) is None
    assert await ledger.dashboard.live_dashboard_sessions(clock.now()) == set()


async def test_two_browsers_racing_with_one_link_get_one_session(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The link's use and the session's making are one transaction."""
    await ledger.dashboard.add_dashboard_link("d-link", link_for(clock), clock.now())
    until = clock.now() + timedelta(hours=1)
    results = await asyncio.gather(
        *(
            ledger.dashboard.redeem_dashboard_link("d-link", f"s-{i}", clock.now(), until)
            for i in range(5)
        )
    )
    assert sum(result is not None for result in results) == 1
    assert len(await ledger.dashboard.live_dashboard_sessions(clock.now())) == 1


async def test_revoking_ends_that_persons_sessions_and_voids_their_links(
    ledger: Ledger, clock: ManualClock
) -> None:
    """`dashboard revoke` ends every live session of one person, nobody else's."""
    until = clock.now() + timedelta(hours=1)
    for n in range(2):
        await ledger.dashboard.add_dashboard_link(f"a-{n}", link_for(clock), clock.now())
        await ledger.dashboard.redeem_dashboard_link(f"a-{n}", f"sa-{n}", clock.now(), until)
    await ledger.dashboard.add_dashboard_link("b", link_for(clock, "@bob:example.org"), clock.now())
    await ledger.dashboard.redeem_dashboard_link("b", "sb", clock.now(), until)
    await ledger.dashboard.add_dashboard_link("a-unused", link_for(clock), clock.now())
    assert (
        await ledger.dashboard.end_dashboard_sessions("matrix", "@alice:example.org", clock.now())
        == 2
    )
    assert await ledger.dashboard.live_dashboard_sessions(clock.now()) == {"sb"}
    assert await ledger.dashboard.redeem_dashboard_link("a-unused", "x", clock.now(), until) is None
    await ledger.dashboard.end_dashboard_session("sb", clock.now())
    assert await ledger.dashboard.live_dashboard_sessions(clock.now()) == set()


async def test_the_open_sessions_and_links_are_listed_and_end_for_good(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Live sessions and unused links are listed with whom they sign in; those named are
    ended and voided, the others kept."""
    until = clock.now() + timedelta(hours=1)
    await ledger.dashboard.add_dashboard_link("a", link_for(clock), clock.now())
    await ledger.dashboard.redeem_dashboard_link("a", "sa", clock.now(), until)
    await ledger.dashboard.add_dashboard_link("b", link_for(clock, "@bob:example.org"), clock.now())
    await ledger.dashboard.redeem_dashboard_link("b", "sb", clock.now(), until)
    await ledger.dashboard.add_dashboard_link("a-unused", link_for(clock), clock.now())
    await ledger.dashboard.add_dashboard_link(
        "b-unused", link_for(clock, "@bob:example.org"), clock.now()
    )
    sessions, links = await ledger.dashboard.open_dashboard_signins(clock.now())
    assert {d: who.user_id for d, who in sessions.items()} == {
        "sa": "@alice:example.org",
        "sb": "@bob:example.org",
    }
    assert set(links) == {"a-unused", "b-unused"} and links["a-unused"].role == "viewer"
    await ledger.dashboard.end_dashboard_signins(["sa"], ["a-unused"], clock.now())
    assert await ledger.dashboard.live_dashboard_sessions(clock.now()) == {"sb"}
    assert await ledger.dashboard.redeem_dashboard_link("a-unused", "x", clock.now(), until) is None
    assert (
        await ledger.dashboard.redeem_dashboard_link("b-unused", "y", clock.now(), until)
        is not None
    )
    sessions, links = await ledger.dashboard.open_dashboard_signins(clock.now())
    assert set(sessions) == {"sb", "y"} and links == {}


async def test_usage_sums_split_by_agent_host_model_and_account(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The dashboard's sums: per agent, host, provider, model and account, in a span."""
    now = clock.now()
    await ledger.metering.record_metering(
        [
            event(at=now, account="team"),
            event(at=now, account="team"),
            event(at=now, agent="coder-2"),
            event(at=now - timedelta(days=2)),
        ],
        [],
    )
    sums = await ledger.dashboard.usage_sums(since=now - timedelta(hours=1))
    assert [(s.agent, s.account, s.requests, s.input, s.tokens) for s in sums] == [
        ("coder-1", "team", 2, 200, 2 * 2440),
        ("coder-2", "", 1, 100, 2440),
    ]
    assert sums[0].model == "claude-sonnet-4-20250514" and sums[0].host == "local"
    assert round(sums[0].cost_usd, 6) == 0.025
    mine = await ledger.dashboard.usage_sums(since=now - timedelta(hours=1), agent="coder-2")
    assert [(s.agent, s.requests) for s in mine] == [("coder-2", 1)]
    everything = await ledger.dashboard.usage_sums()
    assert sum(s.requests for s in everything) == 4
    earlier = await ledger.dashboard.usage_sums(until=now - timedelta(days=1))
    assert [s.requests for s in earlier] == [1]


async def test_last_models_says_what_each_agent_asked_for_and_got(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The latest request of each agent: the model asked for, served, and moved from."""
    now = clock.now()
    await ledger.metering.record_metering(
        [
            event(at=now - timedelta(minutes=2)),
            event(
                at=now,
                requested_model="claude-haiku-4-5",
                served_model="claude-haiku-4-5",
                rewritten_from="claude-sonnet-4",
            ),
        ],
        [],
    )
    assert await ledger.dashboard.last_models(now - timedelta(hours=1)) == {
        "coder-1": ("claude-haiku-4-5", "claude-haiku-4-5", "claude-sonnet-4")
    }


async def test_usage_sums_after_a_row_add_only_what_came_since(
    ledger: Ledger, clock: ManualClock
) -> None:
    """`/metrics` keeps running totals: each scrape sums only the rows after the last one."""
    assert await ledger.dashboard.usage_sums_after(0) == ([], 0)
    await ledger.metering.record_metering([event(at=clock.now()), event(at=clock.now())], [])
    sums, last = await ledger.dashboard.usage_sums_after(0)
    assert [(s.agent, s.requests) for s in sums] == [("coder-1", 2)] and last >= 2
    await ledger.metering.record_metering([event(at=clock.now(), agent="coder-2")], [])
    newer, after = await ledger.dashboard.usage_sums_after(last)
    assert [(s.agent, s.requests) for s in newer] == [("coder-2", 1)] and after > last
