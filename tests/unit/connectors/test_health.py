"""A connector's link health: its transitions, and what the other connectors are told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.health import ERROR_CHARS, DownTeller, HealthReport, LinkHealth
from fleet.timing.clock import ManualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _link(clock: ManualClock) -> LinkHealth:
    return LinkHealth("matrix", clock)


def test_a_new_link_is_down_until_connected_and_since_moves_only_at_a_change() -> None:
    """Connected and logged in is up; `since` is the time of the last up/down change."""
    clock = ManualClock(T0)
    link = _link(clock)
    assert not link.report().up and link.report().since == T0
    clock.advance(5)
    link.connected()
    assert link.report().up and link.report().since == T0 + timedelta(seconds=5)
    clock.advance(5)
    link.connected()  # each sync that works says so again: no change
    assert link.report().since == T0 + timedelta(seconds=5)
    clock.advance(1)
    link.event()
    assert link.report().last_event_at == T0 + timedelta(seconds=11)
    assert link.report().since == T0 + timedelta(seconds=5)


def test_lost_keeps_the_error_and_logged_out_is_not_logged_in() -> None:
    """A lost link is down with its last error and its time; a refused login is logged out."""
    clock = ManualClock(T0)
    link = _link(clock)
    link.connected()
    clock.advance(2)
    link.lost(ConnectionError("connection refused"))
    report = link.report()
    assert not report.up and not report.connected and report.logged_in
    assert report.last_error == "ConnectionError: connection refused"
    assert report.last_error_at == report.since == T0 + timedelta(seconds=2)
    link.lost("M_UNKNOWN_TOKEN", logged_out=True)
    assert not link.report().logged_in and link.report().last_error == "M_UNKNOWN_TOKEN"
    link.connected()
    assert link.report().up and link.report().last_error == "M_UNKNOWN_TOKEN"  # kept


def test_the_last_error_is_one_bounded_line_with_nothing_hidden() -> None:
    """A server's words are kept on one line, cut to ERROR_CHARS, escapes shown as code points."""
    link = _link(ManualClock(T0))
    link.lost("first line\nfake: ✅ all good \x1b[31m\u202e" + "x" * 5000)
    error = link.report().last_error
    assert error is not None
    assert "\n" not in error and "\x1b" not in error and "\u202e" not in error
    assert len(error) <= ERROR_CHARS


def test_listeners_hear_each_up_down_change_once() -> None:
    """subscribe: called at each change of up, never at a repeat or an event."""
    link = _link(ManualClock(T0))
    heard: list[bool] = []
    link.subscribe(lambda report: heard.append(report.up))
    link.connected()
    link.connected()
    link.event()
    link.lost("timeout")
    link.lost("timeout")
    link.connected()
    assert heard == [True, False, True]


def _reports(*links: LinkHealth) -> dict[str, HealthReport]:
    return {link.report().connector: link.report() for link in links}


def test_down_is_told_once_after_the_threshold_and_back_once() -> None:
    """Down past `after` seconds: told once, however long it lasts; back: told once."""
    clock = ManualClock(T0)
    link = _link(clock)
    teller = DownTeller(after=10)
    link.connected()
    assert teller.step(_reports(link), clock.now()) == []
    link.lost("refused")
    assert teller.next_check(_reports(link), clock.now()) == 10
    clock.advance(9)
    assert teller.step(_reports(link), clock.now()) == []
    assert teller.next_check(_reports(link), clock.now()) == 1
    clock.advance(1)
    [tell] = teller.step(_reports(link), clock.now())
    assert tell.down and tell.report.last_error == "refused"
    for _ in range(5):  # retries, each failing
        clock.advance(30)
        link.lost("refused")
        assert teller.step(_reports(link), clock.now()) == []
    assert teller.next_check(_reports(link), clock.now()) is None
    link.connected()
    assert teller.step(_reports(link), clock.now()) == []  # up, not yet for `after`
    assert teller.next_check(_reports(link), clock.now()) == 10
    clock.advance(10)
    [back] = teller.step(_reports(link), clock.now())
    assert (
        not back.down
        and back.report.up
        and back.report.since == clock.now() - timedelta(seconds=10)
    )
    assert teller.step(_reports(link), clock.now()) == []
    assert teller.next_check(_reports(link), clock.now()) is None


def test_a_sync_working_now_and_then_through_an_outage_tells_down_once_and_back_once() -> None:
    """Down 10 min with one sync working every 61 s: one down notice, one back notice."""
    clock = ManualClock(T0)
    link = _link(clock)
    teller = DownTeller(after=60)
    link.connected()
    clock.advance(300)
    tells = teller.step(_reports(link), clock.now())
    start = clock.now()
    link.lost("timeout")
    while clock.now() - start < timedelta(minutes=10):
        clock.advance(61)
        tells += teller.step(_reports(link), clock.now())
        link.connected()  # the blip: one sync works...
        tells += teller.step(_reports(link), clock.now())
        clock.advance(1)
        link.lost("timeout")  # ...and the next fails again
        tells += teller.step(_reports(link), clock.now())
        assert link.report().since == clock.now()  # the live state moves at each blip
    link.connected()  # the outage ends
    while (wait := teller.next_check(_reports(link), clock.now())) is not None:
        clock.advance(wait)
        tells += teller.step(_reports(link), clock.now())
    assert [t.down for t in tells] == [True, False]
    assert tells[0].report.last_error == "timeout" and tells[1].report.up


def test_flapping_within_the_threshold_tells_nobody() -> None:
    """Down and up again, each time within `after`: no notice either way."""
    clock = ManualClock(T0)
    link = _link(clock)
    teller = DownTeller(after=10)
    link.connected()
    for _ in range(20):
        link.lost("timeout")
        clock.advance(9)
        assert teller.step(_reports(link), clock.now()) == []
        link.connected()
        clock.advance(1)
        assert teller.step(_reports(link), clock.now()) == []


def test_never_up_or_stopped_is_never_told() -> None:
    """A connector not yet up, or one the app stopped, is no outage to tell of."""
    clock = ManualClock(T0)
    starting, stopped = LinkHealth("discord", clock), _link(clock)
    stopped.connected()
    stopped.closed()
    teller = DownTeller(after=1)
    clock.advance(60)
    assert teller.step(_reports(starting, stopped), clock.now()) == []
    assert teller.next_check(_reports(starting, stopped), clock.now()) is None
