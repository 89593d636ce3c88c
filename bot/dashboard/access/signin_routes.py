"""The dashboard's signing in and out over HTTP: a link's page, the ``POST /signin`` that
spends the link and sets the session cookie, ``POST /signout`` that ends the session, and
who a request's cookie names.

A link is used only by its page's button (``POST``): a chat service's link preview fetches
by ``GET`` and must not spend it. The cookie is host-only and set only for the dashboard's
own name on this machine (:func:`~bot.config.dashboard.own_name`); both form posts must
come from the dashboard's own page.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bot.config.dashboard import DashboardSettings
from bot.dashboard.access.signin import LINK_PATH, SESSION_LIFETIME, SignIns, Viewer
from bot.dashboard.pages.pages import Pages

log = logging.getLogger(__name__)

SIGNED_OUT = "Sign in from chat: say `dashboard` to Fleetwarden, and it sends you a link."
_INVALID_LINK = "This link is no longer valid — ask the bot for a new one (say `dashboard`)."
_BODY_TIMEOUT = 10.0  # seconds a form post may take to send its body

__all__ = ["SIGNED_OUT", "SignInRoutes", "message_response"]


def message_response(pages: Pages, status: int, title: str, text: str) -> web.Response:
    """An HTML page that says ``text`` under ``title``, answered with ``status``."""
    return web.Response(status=status, text=pages.message(title, text), content_type="text/html")


class SignInRoutes:
    """The routes that sign a browser in and out, and the session cookie they set."""

    def __init__(self, settings: DashboardSettings, signins: SignIns, pages: Pages) -> None:
        self.settings = settings
        self._signins = signins
        self._pages = pages
        # Host-only, for the one name links say (its own name on this machine): a browser
        # sends a cookie to every port of its name, so never to 127.0.0.1 or localhost.
        self._cookie = "__Host-fw_session" if settings.secure_cookies else "fw_session"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(LINK_PATH + "{secret}", self._link),
            web.post("/signin", self._signin),
            web.post("/signout", self._signout),
        ]

    async def viewer(self, request: web.Request) -> Viewer | None:
        """Who the request's session cookie names, if it names a live session."""
        cookie = request.cookies.get(self._cookie)
        return await self._signins.check(cookie) if cookie else None

    async def _link(self, request: web.Request) -> web.StreamResponse:
        """A link's page: one button that uses it (a GET never does)."""
        secret = request.match_info["secret"]
        return web.Response(
            text=self._pages.message(
                "Sign in to Fleetwarden",
                "This one-time link signs this browser in with your chat role.",
                form_action="/signin",
                form_value=secret,
            ),
            content_type="text/html",
        )

    async def _signin(self, request: web.Request) -> web.StreamResponse:
        if not self._same_origin(request):
            return self._refused(403, "Refused", "A sign-in must come from this dashboard's page.")
        name = self.settings.own_name
        if name is not None and (request.url.host or "").lower() != name:
            return self._refused(  # a session for 127.0.0.1 would reach its every port
                403,
                "Refused",
                # Its own name is never said to a request without a link: who asks by
                # another name (an agent, a rebound page) must not learn it.
                "Open the link exactly as the bot sent it: this dashboard signs in only at "
                "the address in it.",
            )
        try:
            async with asyncio.timeout(_BODY_TIMEOUT):  # a body that never comes holds nothing
                form = await request.post()
        except TimeoutError:
            late = self._refused(408, "Too slow", "The sign-in form did not arrive in time.")
            late.force_close()  # the rest of the body is not waited for
            return late
        link = form.get("link")
        used = await self._signins.redeem(link) if isinstance(link, str) else None
        if used is None:
            return self._refused(403, "Link not valid", _INVALID_LINK)
        cookie, viewer = used
        log.info("dashboard: %s signed in as %s", viewer.who, viewer.role.value)
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            self._cookie,
            cookie,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/",
            httponly=True,
            secure=self.settings.secure_cookies,
            samesite="Strict",
        )
        return response

    async def _signout(self, request: web.Request) -> web.StreamResponse:
        if not self._same_origin(request):
            return self._refused(403, "Refused", "A sign-out must come from this dashboard.")
        viewer = await self.viewer(request)
        if viewer is not None:
            await self._signins.end(viewer)
        response = self._refused(200, "Signed out", SIGNED_OUT)
        response.del_cookie(self._cookie, path="/")
        return response

    def _same_origin(self, request: web.Request) -> bool:
        """Whether a form post comes from this dashboard's own page. Browsers say so in
        ``Sec-Fetch-Site``; with ``no-referrer`` they send ``Origin: null``, so an Origin is
        only compared when it names one."""
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":
            return True
        return origin in (self.settings.public_url, f"{request.scheme}://{request.host}")

    def _refused(self, status: int, title: str, text: str) -> web.Response:
        return message_response(self._pages, status, title, text)
