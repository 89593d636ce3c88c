"""The forges' shared JSON call: its time limit, its size cap, answers that are not
JSON, redirects not followed, the forge's words cut to one line with the credential
blotted out, and when a rate-limited call may be tried again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from fleet.forge.api.rest import ForgeHttp, ForgeRateLimited, next_page, one_line, retry_at
from fleet.forge.model import ForgeApiError
from fleet.timing.clock import ManualClock
from tests.fakes.loopback import LoopbackServer
from tests.unit.chat_fakes import T0

TOKEN = "tok_SecretSecretSecret"


class Odd(LoopbackServer):
    """A server answering the ways a forge (or what stands in front of it) can."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/big", self._big)
        app.router.add_get("/chunked", self._chunked)
        app.router.add_get("/html", self._html)
        app.router.add_get("/moved", self._moved)
        app.router.add_get("/echo", self._echo)
        app.router.add_get("/limited", self._limited)
        app.router.add_get("/listing", self._listing)

    async def before_stop(self) -> None:
        self.release.set()

    async def _slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.json_response({})

    async def _big(self, request: web.Request) -> web.Response:
        return web.json_response({"x": "a" * 5000})

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"a" * 1000)
        await response.write_eof()
        return response

    async def _html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>oops</html>", content_type="text/html")

    async def _moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/html")

    async def _echo(self, request: web.Request) -> web.Response:
        said = f"you sent {request.headers['Authorization']}\nand more " + "x" * 400
        return web.json_response({"message": said}, status=400)

    async def _listing(self, request: web.Request) -> web.Response:
        """Five items two a page, whatever page size was asked (as Gitea cuts pages to its
        MAX_RESPONSE_ITEMS), with their total in ``X-Total-Count`` when asked to."""
        page = int(request.query["page"])
        items = list(range(5))[(page - 1) * 2 : page * 2]
        headers = {"X-Total-Count": "5"} if "counted" in request.query else {}
        return web.json_response(items, headers=headers)

    async def _limited(self, request: web.Request) -> web.Response:
        reset = int((T0 + timedelta(minutes=10)).timestamp())
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
        return web.json_response(
            {"message": "API rate limit exceeded"}, status=403, headers=headers
        )


@pytest.fixture
async def odd() -> AsyncIterator[Odd]:
    async with Odd() as server:
        yield server


@pytest.fixture
async def rest_http(odd: Odd, clock: ManualClock) -> AsyncIterator[ForgeHttp]:
    """A client of ``odd`` with the time limit a forge call has: only a silent server
    reaches it, however slow a loaded machine answers."""
    client = ForgeHttp("Forge", odd.base_url, max_bytes=4096, clock=clock)
    yield client
    await client.close()


async def test_a_silent_forge_is_an_error_after_the_time_limit(odd: Odd) -> None:
    """No answer within the limit is a ForgeApiError with no status, naming the call."""
    client = ForgeHttp("Forge", odd.base_url, timeout=0.3)
    try:
        with pytest.raises(ForgeApiError) as caught:
            await client.call("GET", "/slow", auth=f"token {TOKEN}")
    finally:
        await client.close()
    assert str(caught.value) == "Forge did not answer GET /slow within 0.3 s"
    assert caught.value.status == 0


async def test_answers_past_the_cap_are_refused(rest_http: ForgeHttp) -> None:
    """An answer longer than the cap is refused, declared or chunked."""
    with pytest.raises(ForgeApiError, match="more than the 4096"):
        await rest_http.call("GET", "/big", auth=None)
    with pytest.raises(ForgeApiError, match="more than the 4096"):
        await rest_http.call("GET", "/chunked", auth=None)


async def test_an_answer_that_is_not_json_is_an_error(rest_http: ForgeHttp) -> None:
    """A 200 of HTML (a proxy's page) is an error, not a crash."""
    with pytest.raises(ForgeApiError, match="something not JSON"):
        await rest_http.call("GET", "/html", auth=None)


async def test_redirects_are_answers_not_followed(rest_http: ForgeHttp) -> None:
    """A 302 is not followed: an error unless expected, then an answer."""
    with pytest.raises(ForgeApiError) as caught:
        await rest_http.call("GET", "/moved", auth=f"token {TOKEN}")
    assert caught.value.status == 302
    answer = await rest_http.call("GET", "/moved", auth=f"token {TOKEN}", expect=(302,))
    assert answer.status == 302 and answer.headers["location"] == "/html"


async def test_the_forges_words_are_one_line_cut_and_never_the_credential(
    rest_http: ForgeHttp,
) -> None:
    """The forge's message is flattened, cut to 200 characters, and the call's own
    credential, should the forge echo it, is blotted out."""
    with pytest.raises(ForgeApiError) as caught:
        await rest_http.call("GET", "/echo", auth=f"token {TOKEN}")
    message = str(caught.value)
    assert message.startswith("Forge refused GET /echo: 400 you sent token [credential] and more")
    assert TOKEN not in message and "\n" not in message
    assert len(message) < 260


async def test_a_rate_limited_call_says_when_to_retry(rest_http: ForgeHttp) -> None:
    """403 with no calls left is ForgeRateLimited at the forge's reset time."""
    with pytest.raises(ForgeRateLimited) as caught:
        await rest_http.call("GET", "/limited", auth=None)
    assert caught.value.retry_at == T0 + timedelta(minutes=10)
    assert "retry after 12:10:00 UTC, in 600 s" in str(caught.value)


async def test_an_unreachable_forge_is_an_error() -> None:
    """Nothing listening is a ForgeApiError with no status."""
    server = Odd()
    await server.start()
    url = server.base_url
    await server.stop()
    client = ForgeHttp("Forge", url)
    try:
        with pytest.raises(ForgeApiError, match="could not reach Forge for GET /x") as caught:
            await client.call("GET", "/x", auth=f"token {TOKEN}")
        assert caught.value.status == 0 and TOKEN not in str(caught.value)
    finally:
        await client.close()


async def test_a_lent_session_is_left_open(odd: Odd) -> None:
    """Closing the client leaves a session it was lent open for its owner."""
    async with aiohttp.ClientSession() as session:
        client = ForgeHttp("Forge", odd.base_url, session=lambda: session)
        with pytest.raises(ForgeApiError):
            await client.call("GET", "/html", auth=None)
        await client.close()
        assert not session.closed


async def test_a_listing_is_read_as_far_as_its_total_count_says(rest_http: ForgeHttp) -> None:
    """Pages cut shorter than asked are read on while ``X-Total-Count`` says there is more;
    without it, a short page is the last."""
    counted = await rest_http.pages("/listing", auth=None, params={"counted": "1"}, size=50)
    assert counted == [0, 1, 2, 3, 4]
    assert await rest_http.pages("/listing", auth=None, size=50) == [0, 1]


def test_the_next_page_is_what_each_forge_says() -> None:
    """GitLab's X-Next-Page leads (empty: the last page), then Gitea's X-Total-Count, then
    a Link's rel="next" (GitHub's, Gitea's), then a full page."""
    assert next_page(1, 100, 100, 100, {"X-Next-Page": "3"}) == 3
    assert next_page(2, 100, 200, 100, {"X-Next-Page": ""}) is None
    assert next_page(2, 100, 200, 100, {"X-Next-Page": "1"}) is None
    assert next_page(1, 50, 50, 100, {"X-Total-Count": "60", "Link": ""}) == 2
    assert next_page(2, 10, 60, 100, {"X-Total-Count": "60"}) is None
    assert next_page(1, 30, 30, 30, {"Link": '<https://x/?page=2>; rel="next"'}) == 2
    assert next_page(2, 30, 60, 30, {"Link": '<https://x/?page=1>; rel="prev"'}) is None
    assert next_page(1, 100, 100, 100, {}) == 2
    assert next_page(2, 99, 199, 100, {}) is None
    assert next_page(1, 0, 0, 100, {"X-Total-Count": "5"}) is None


def test_retry_at_reads_both_kinds_of_limit() -> None:
    """Retry-After (seconds) and an exhausted X-RateLimit say when; others do not."""
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    reset = str(int((now + timedelta(minutes=5)).timestamp()))
    assert retry_at(429, {"Retry-After": "30"}, now) == now + timedelta(seconds=30)
    exhausted = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    assert retry_at(403, exhausted, now) == now + timedelta(minutes=5)
    assert retry_at(403, {"X-RateLimit-Remaining": "12"}, now) is None
    assert retry_at(500, {"Retry-After": "30"}, now) is None


def test_one_line_flattens_and_cuts() -> None:
    """Hostile words become one line of at most the limit."""
    assert one_line("a\n\nb\tc") == "a b c"
    assert one_line("x" * 300, 10) == "x" * 9 + "…"
