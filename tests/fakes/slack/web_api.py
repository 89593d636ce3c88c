"""The fake Slack's Web API: ``POST|GET {url}/api/<method>`` as Slack serves it.

Read as slack_sdk sends it: arguments from the query string, a form body or a JSON body;
the token from ``Authorization: Bearer`` or a ``token`` argument. Then, in Slack's order:
``not_authed`` (no token), ``invalid_auth`` (unknown), ``not_allowed_token_type`` (an app
token on a bot method or the other way round), ``missing_scope`` (with ``needed`` and
``provided``), ``invalid_arguments`` (the arguments break ``<Method>Arguments``, each
problem in ``response_metadata.messages``), ``ratelimited`` (HTTP 429, ``Retry-After``),
then the method's own errors (:mod:`methods`). Every answer carries ``x-oauth-scopes`` and
``x-accepted-oauth-scopes`` and is held to ``<Method>Response`` before it leaves."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.slack import judge, methods
from tests.fakes.slack.state import Call

if TYPE_CHECKING:
    from tests.fakes.slack.world import SlackWorld

__all__ = ["METHODS", "Method", "WebApi"]

Handler = Callable[["SlackWorld", dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]


@dataclass(frozen=True)
class Method:
    type_name: str  # the @slack/web-api type prefix: <type_name>Arguments / Response
    token: str  # "bot" or "app"
    scope: str | None  # the scope a call needs ("channels" ones by the channel's kind)
    handler: Handler


METHODS: dict[str, Method] = {
    "auth.test": Method("AuthTest", "bot", None, methods.auth_test),
    "apps.connections.open": Method(
        "AppsConnectionsOpen", "app", "connections:write", methods.connections_open
    ),
    "chat.postMessage": Method("ChatPostMessage", "bot", "chat:write", methods.post_message),
    "chat.update": Method("ChatUpdate", "bot", "chat:write", methods.update),
    "chat.postEphemeral": Method("ChatPostEphemeral", "bot", "chat:write", methods.post_ephemeral),
    "chat.getPermalink": Method("ChatGetPermalink", "bot", None, methods.permalink),
    "reactions.add": Method("ReactionsAdd", "bot", "reactions:write", methods.react),
    "conversations.info": Method("ConversationsInfo", "bot", "channels:read", methods.info),
    "conversations.history": Method(
        "ConversationsHistory", "bot", "channels:history", methods.history
    ),
    "conversations.replies": Method(
        "ConversationsReplies", "bot", "channels:history", methods.replies
    ),
    "usergroups.list": Method("UsergroupsList", "bot", "usergroups:read", methods.usergroups),
    "usergroups.users.list": Method(
        "UsergroupsUsersList", "bot", "usergroups:read", methods.usergroup_users
    ),
    "users.info": Method("UsersInfo", "bot", "users:read", methods.user_info),
    # The scope is an assumption: Slack's reference names none the fake could read.
    "agents.sessions.setStatus": Method(
        "AgentsSessionsSetStatus", "bot", "chat:write", methods.set_status
    ),
}


class WebApi:
    """The routes of the Web API for one world."""

    def __init__(self, world: SlackWorld) -> None:
        self.world = world

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self.serve)

    async def serve(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        raw, token = await _read(request)
        method = METHODS.get(name)
        if method is None:
            return self._answer(
                name, None, raw, None, {"ok": False, "error": "unknown_method"}, 404
            )
        kind = self._token_kind(token)
        scopes = self._scopes(kind)
        headers = {"x-oauth-scopes": ",".join(sorted(scopes))}
        if token is None:
            return self._answer(
                name, method, raw, kind, {"ok": False, "error": "not_authed"}, 200, headers
            )
        if kind is None:
            return self._answer(
                name, method, raw, kind, {"ok": False, "error": "invalid_auth"}, 200, headers
            )
        if kind != method.token:
            error = {"ok": False, "error": "not_allowed_token_type"}
            return self._answer(name, method, raw, kind, error, 200, headers)
        args = (
            raw
            if isinstance(raw, dict) and not isinstance(raw, _Form)
            else judge.typed_arguments(method.type_name, raw)
        )
        if args.get("team_id") == self.world.team_id and not _declares(method, "team_id"):
            # slack_sdk sends its client's team_id on every call (bolt makes such clients)
            # and Slack takes it on every method (org-wide apps must send it).
            args = {k: v for k, v in args.items() if k != "team_id"}
        needed = self._needed_scope(method, args)
        if needed:
            headers["x-accepted-oauth-scopes"] = needed
        if needed and needed not in scopes:
            answer = {
                "ok": False,
                "error": "missing_scope",
                "needed": needed,
                "provided": ",".join(sorted(scopes)),
            }
            return self._answer(name, method, args, kind, answer, 200, headers)
        if "blocks" in args:  # Slack judges blocks on their own: invalid_blocks
            refused = methods.blocks_problem(args["blocks"])
            if refused:
                return self._answer(name, method, args, kind, refused, 200, headers)
        problems = judge.argument_problems(method.type_name, args)
        if problems:
            answer = {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
            }
            return self._answer(name, method, args, kind, answer, 200, headers)
        wait = self.world.limits.retry_after(
            name, str(args.get("channel", "")), self.world.clock.monotonic()
        )
        if wait is not None:
            headers["Retry-After"] = str(wait)
            return self._answer(
                name, method, args, kind, {"ok": False, "error": "ratelimited"}, 429, headers
            )
        failing = self.world.failing.get(name)
        if failing is not None:  # an outage the test asked for
            return self._answer(name, method, args, kind, {"ok": False, "error": failing}, 200)
        result = method.handler(self.world, args)
        answer = await result if isinstance(result, Awaitable) else result
        return self._answer(name, method, args, kind, answer, 200, headers)

    def _token_kind(self, token: str | None) -> str | None:
        if token == self.world.bot_token:
            return "bot"
        if token == self.world.app_token:
            return "app"
        return None

    def _scopes(self, kind: str | None) -> set[str]:
        if kind == "bot":
            return self.world.bot_scopes
        if kind == "app":
            return self.world.app_scopes
        return set()

    def _needed_scope(self, method: Method, args: dict[str, Any]) -> str | None:
        scope = method.scope
        if scope and scope.startswith("channels:"):
            channel = self.world.channels.get(str(args.get("channel", "")))
            if channel is not None and channel.is_private:
                scope = "groups:" + scope.split(":", 1)[1]
        return scope

    def _answer(
        self,
        name: str,
        method: Method | None,
        args: Any,
        kind: str | None,
        answer: dict[str, Any],
        status: int,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        if method is not None:
            try:
                judge.check_answer(method.type_name, answer)
            except judge.SchemaBreach as breach:
                self.world.failures.append(breach)  # raised again when the server stops
                raise
        shown = {k: v for k, v in dict(args).items() if k != "token"}
        self.world.calls.append(Call(name, shown, kind, answer, status))
        if not answer.get("ok"):
            self.world.errors_sent.append(str(answer.get("error")))
        return web.Response(
            status=status,
            text=json.dumps(answer),
            content_type="application/json",
            charset="utf-8",
            headers=headers or {},
        )


def _declares(method: Method, argument: str) -> bool:
    return argument in judge.argument_names(method.type_name)


class _Form(dict[str, str]):
    """Arguments read from a query string or a form: strings, to be typed by the schema."""


async def _read(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """The request's arguments and its token (the header's, else a ``token`` argument)."""
    args: dict[str, Any] = _Form(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                args = {**args, **body}
        else:
            form = await request.post()
            args = _Form({**args, **{k: str(v) for k, v in form.items()}})
    token = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header[len("Bearer ") :].strip() or None
    if token is None and isinstance(args.get("token"), str):
        token = args["token"]
    return args, token
