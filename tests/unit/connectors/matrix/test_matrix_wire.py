"""Tests for connectors.matrix.wire: nio error responses to exceptions, the write retry policy."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
import nio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import ConnectorAuthError, ConnectorError, RateLimited
from connectors.matrix import wire
from fleet.timing.clock import ManualClock

OK = nio.RoomSendResponse(event_id="$sent", room_id="!r")


def error(
    errcode: str | None = None,
    message: str = "refused",
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    retry_after_ms: int | None = None,
) -> nio.RoomSendError:
    """A nio error response as the client returns it, with its HTTP status when ``status``."""
    response = nio.RoomSendError(
        message=message, status_code=errcode, retry_after_ms=retry_after_ms, room_id="!r"
    )
    if status is not None:
        response.transport_response = SimpleNamespace(status=status, headers=headers or {})
    return response


# --- reading error responses -------------------------------------------------------------


def test_http_status_from_transport_response() -> None:
    """The HTTP status is read from the transport response when there is one."""
    assert wire.http_status(error("M_FORBIDDEN", status=403)) == 403
    assert wire.http_status(error("M_FORBIDDEN")) is None
    assert (
        wire.http_status(SimpleNamespace(transport_response=SimpleNamespace(status="403"))) is None
    )


@pytest.mark.parametrize(
    ("response", "text"),
    [
        (error("M_FORBIDDEN", "not allowed", status=403), "M_FORBIDDEN not allowed (HTTP 403)"),
        (error("M_FORBIDDEN", "not allowed"), "M_FORBIDDEN not allowed"),
        (error(None, "bad gateway", status=502), "bad gateway (HTTP 502)"),
        (error("M_UNKNOWN", ""), "M_UNKNOWN unknown error"),
        (object(), "unknown error"),
    ],
    ids=["full", "no-status", "no-errcode", "no-message", "not-a-response"],
)
def test_describe(response: Any, text: str) -> None:
    """The description names errcode, message and HTTP status as far as they are known."""
    assert wire.describe(response) == text


@pytest.mark.parametrize(
    "response",
    [
        error("M_UNKNOWN_TOKEN", status=401),
        error("M_MISSING_TOKEN", status=401),
        error("M_UNKNOWN_TOKEN"),
        error("M_FORBIDDEN", status=401),
    ],
    ids=["unknown-token", "missing-token", "no-status", "any-401"],
)
def test_auth_failures(response: Any) -> None:
    """Unknown or missing token errcodes, or HTTP 401, are auth failures."""
    assert wire.is_auth_failure(response)


@pytest.mark.parametrize(
    "response",
    [error("M_FORBIDDEN", status=403), error("M_LIMIT_EXCEEDED", status=429), error(status=500)],
    ids=["forbidden", "rate-limited", "server-error"],
)
def test_not_auth_failures(response: Any) -> None:
    """Other refusals are not auth failures."""
    assert not wire.is_auth_failure(response)


@pytest.mark.parametrize(
    ("response", "transient"),
    [
        (error("M_UNKNOWN", status=500), True),
        (error(None, "Bad Gateway", status=502), True),
        (error(None, "proxy says no", status=404), True),
        (error("M_FORBIDDEN"), True),
        (error("M_FORBIDDEN", status=403), False),
        (error("M_TOO_LARGE", status=413), False),
        (error("M_NOT_FOUND", status=404), False),
    ],
    ids=["500", "502-no-json", "4xx-no-errcode", "no-status", "403", "413", "404-matrix"],
)
def test_is_transient(response: Any, transient: bool) -> None:
    """5xx, answers without a Matrix errcode and non-network errors are worth retrying."""
    assert wire.is_transient(response) is transient


@pytest.mark.parametrize(
    ("response", "seconds"),
    [
        (error("M_LIMIT_EXCEEDED", retry_after_ms=2500, status=429), 2.5),
        (error("M_LIMIT_EXCEEDED", retry_after_ms=2500), 2.5),
        (error("M_LIMIT_EXCEEDED", status=429, headers={"Retry-After": "7"}), 7.0),
        (
            error("M_LIMIT_EXCEEDED", retry_after_ms=0, status=429, headers={"Retry-After": "3"}),
            3.0,
        ),
        (error("M_LIMIT_EXCEEDED", status=429, headers={"Retry-After": "-5"}), 0.0),
        (error("M_LIMIT_EXCEEDED", status=429, headers={"Retry-After": "0"}), 0.0),
        (error("M_LIMIT_EXCEEDED", status=429), 1.0),
        (error("M_LIMIT_EXCEEDED"), 1.0),
        (
            error(status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            1.0,
        ),
        (error(status=429, headers={"Retry-After": "nan"}), 1.0),
        (error(status=429, headers={"Retry-After": "inf"}), 1.0),
    ],
    ids=[
        "body",
        "body-no-transport",
        "header",
        "zero-body-uses-header",
        "negative-header",
        "zero-header",
        "no-hint",
        "no-transport",
        "http-date",
        "nan",
        "infinity",
    ],
)
def test_retry_after(response: Any, seconds: float) -> None:
    """The wait comes from ``retry_after_ms``, then ``Retry-After`` seconds, else 1 s."""
    assert wire.retry_after(response) == seconds


@given(st.text(max_size=20))
def test_retry_after_any_header_is_a_finite_non_negative_wait(header: str) -> None:
    """Whatever the Retry-After header says, the wait is a finite number of seconds ≥ 0."""
    wait = wire.retry_after(error(status=429, headers={"Retry-After": header}))
    assert 0.0 <= wait < float("inf")


def test_error_for_auth_failure() -> None:
    """A rejected token becomes ConnectorAuthError naming the call."""
    exc = wire.error_for(error("M_UNKNOWN_TOKEN", "Invalid token", status=401), "sync")
    assert type(exc) is ConnectorAuthError
    assert str(exc) == (
        "sync: the homeserver rejected the bot's login: M_UNKNOWN_TOKEN Invalid token (HTTP 401)"
    )


@pytest.mark.parametrize(
    "response",
    [
        error("M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=1500, status=429),
        error("M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=1500),
        error(None, "slow down", status=429, headers={"Retry-After": "1.5"}),
    ],
    ids=["errcode-and-429", "errcode-only", "429-only"],
)
def test_error_for_rate_limit(response: Any) -> None:
    """M_LIMIT_EXCEEDED or HTTP 429 becomes RateLimited with the server's wait."""
    exc = wire.error_for(response, "send to !r")
    assert isinstance(exc, RateLimited)
    assert exc.retry_after == 1.5
    assert str(exc).startswith("send to !r: rate limited by the homeserver (")


def test_error_for_other_refusal() -> None:
    """Any other error is a plain ConnectorError with the server's words."""
    exc = wire.error_for(error("M_FORBIDDEN", "not in room", status=403), "send to !r")
    assert type(exc) is ConnectorError
    assert str(exc) == "send to !r: M_FORBIDDEN not in room (HTTP 403)"


def test_expect_passes_ok_response_through() -> None:
    """An ok response is returned as is."""
    assert wire.expect(OK, nio.RoomSendResponse, "send") is OK


def test_expect_raises_for_error_response() -> None:
    """An error response raises the matching ConnectorError."""
    with pytest.raises(ConnectorAuthError):
        wire.expect(error("M_UNKNOWN_TOKEN", status=401), nio.RoomSendResponse, "send")


async def test_call_returns_ok_response() -> None:
    """One awaited request that succeeds gives its response."""

    async def request() -> Any:
        return OK

    assert await wire.call(request(), nio.RoomSendResponse, "send") is OK


@pytest.mark.parametrize(
    "failure",
    [aiohttp.ClientConnectionError("refused"), TimeoutError(), OSError("unreachable")],
    ids=["client-error", "timeout", "os-error"],
)
async def test_call_transport_failure_is_connector_error(failure: Exception) -> None:
    """A transport exception becomes ConnectorError (not auth, not rate limit), chained."""

    async def request() -> Any:
        raise failure

    with pytest.raises(ConnectorError, match=r"^send: cannot reach the homeserver") as caught:
        await wire.call(request(), nio.RoomSendResponse, "send")
    assert type(caught.value) is ConnectorError
    assert caught.value.__cause__ is failure


# --- with_retries ------------------------------------------------------------------------


class Sleeper:
    """Stands in for ``asyncio.sleep`` in :mod:`wire`: records waits and moves the clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self._real_sleep = asyncio.sleep

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        await self._real_sleep(0)


class Script:
    """A request that plays back responses and raises exceptions in order, counting calls."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def sleeper(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Sleeper:
    fake = Sleeper(clock)
    monkeypatch.setattr(wire, "asyncio", SimpleNamespace(sleep=fake.sleep, timeout=asyncio.timeout))
    return fake


async def retry(script: Script, clock: ManualClock) -> Any:
    """``script`` through :func:`wire.with_retries` as a send."""
    return await wire.with_retries(script, nio.RoomSendResponse, "send to !r", clock)


async def test_with_retries_first_success(clock: ManualClock, sleeper: Sleeper) -> None:
    """A request that succeeds at once is made once, without waiting."""
    script = Script(OK)
    assert await retry(script, clock) is OK
    assert (script.calls, sleeper.waits) == (1, [])


async def test_with_retries_server_errors_back_off_exponentially(
    clock: ManualClock, sleeper: Sleeper
) -> None:
    """5xx answers are retried after 1, 2, 4 s until one succeeds."""
    script = Script(error(status=500), error(status=502), error("M_UNKNOWN", status=503), OK)
    assert await retry(script, clock) is OK
    assert (script.calls, sleeper.waits) == (4, [1.0, 2.0, 4.0])


async def test_with_retries_transport_failures_retried(
    clock: ManualClock, sleeper: Sleeper
) -> None:
    """Connection errors, timeouts and OS errors are retried like 5xx."""
    script = Script(aiohttp.ClientConnectionError("reset"), TimeoutError(), OSError("down"), OK)
    assert await retry(script, clock) is OK
    assert sleeper.waits == [1.0, 2.0, 4.0]


async def test_with_retries_gives_up_after_five_attempts(
    clock: ManualClock, sleeper: Sleeper
) -> None:
    """Five failures in a row raise the last error; there is no sixth attempt."""
    script = Script(*[error(None, "down", status=502)] * 5, OK)
    with pytest.raises(ConnectorError, match="down"):
        await retry(script, clock)
    assert (script.calls, sleeper.waits) == (5, [1.0, 2.0, 4.0, 8.0])


async def test_with_retries_last_transport_failure_raised(
    clock: ManualClock, sleeper: Sleeper
) -> None:
    """When every attempt fails to connect, the error says the homeserver cannot be reached."""
    failure = OSError("unreachable")
    script = Script(*[failure] * 5)
    with pytest.raises(ConnectorError, match="cannot reach the homeserver"):
        await retry(script, clock)
    assert script.calls == 5


async def test_with_retries_rate_limit_waits_as_asked(clock: ManualClock, sleeper: Sleeper) -> None:
    """A rate limit is retried after exactly the wait the server asks for."""
    limited = error("M_LIMIT_EXCEEDED", retry_after_ms=3_500, status=429)
    script = Script(limited, limited, OK)
    assert await retry(script, clock) is OK
    assert sleeper.waits == [3.5, 3.5]


async def test_with_retries_stops_at_time_budget(clock: ManualClock, sleeper: Sleeper) -> None:
    """A wait that would end past 60 s from the first try raises instead of sleeping."""
    limited = error("M_LIMIT_EXCEEDED", retry_after_ms=30_000, status=429)
    script = Script(limited, limited, limited, OK)
    with pytest.raises(RateLimited) as caught:
        await retry(script, clock)
    assert caught.value.retry_after == 30.0
    assert (script.calls, sleeper.waits) == (3, [30.0, 30.0])


async def test_with_retries_wait_beyond_budget_raises_at_once(
    clock: ManualClock, sleeper: Sleeper
) -> None:
    """A server asking for more than the whole budget gets no retry."""
    script = Script(error("M_LIMIT_EXCEEDED", retry_after_ms=61_000, status=429), OK)
    with pytest.raises(RateLimited):
        await retry(script, clock)
    assert (script.calls, sleeper.waits) == (1, [])


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (error("M_UNKNOWN_TOKEN", status=401), ConnectorAuthError),
        (error("M_FORBIDDEN", status=403), ConnectorError),
        (error("M_TOO_LARGE", status=413), ConnectorError),
    ],
    ids=["auth", "forbidden", "too-large"],
)
async def test_with_retries_permanent_errors_raised_at_once(
    response: Any, kind: type[ConnectorError], clock: ManualClock, sleeper: Sleeper
) -> None:
    """Auth failures and other 4xx refusals are raised on the first attempt."""
    script = Script(response, OK)
    with pytest.raises(kind) as caught:
        await retry(script, clock)
    assert type(caught.value) is kind
    assert (script.calls, sleeper.waits) == (1, [])


async def test_with_retries_other_exceptions_propagate(
    clock: ManualClock, sleeper: Sleeper
) -> None:
    """An exception that is not a transport failure (a bug) is not retried or wrapped."""
    script = Script(KeyError("bug"), OK)
    with pytest.raises(KeyError):
        await retry(script, clock)
    assert script.calls == 1
