"""A real MCP server protected by a real OAuth authorization server, both on one loopback
port, for the door's OAuth tests. The MCP server is the SDK's ``MCPServer`` with its own
bearer-token middleware (a token verifier over the tokens issued here, an expired or
revoked one refused with 401) and protected-resource metadata; beside it, a strict
client-credentials token endpoint (RFC 6749 §4.4): ``POST /oauth/token``, form-encoded,
``grant_type=client_credentials`` only, the client authenticated with HTTP Basic
(``invalid_client`` and 401 otherwise), the scope asked for checked, each token random
and good for ``OAUTH_TOKEN_SECONDS``; and its metadata at
``/.well-known/oauth-authorization-server``. ``POST /test/revoke`` forgets every token.

Run: ``python -m tests.integration.mcp.oauth_mcp_server DIR`` with ``OAUTH_CLIENT_ID``,
``OAUTH_CLIENT_SECRET``, ``OAUTH_TOKEN_SECONDS`` and ``OAUTH_SCOPE`` set (and
``OAUTH_ADVERTISED_TOKEN_URL``, the token endpoint its metadata names instead, ``{port}`` in
it standing for its own port); it prints its
port once it listens. It appends to ``DIR/authorizations.jsonl`` the ``Authorization`` of
every request to ``/mcp``, and to ``DIR/issued.jsonl`` each token it issues. Its tools:
``echo`` and ``whoami`` (says back the ``Authorization`` it got, as a hostile server
might).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Scope = dict[str, Any]


class Issued:
    """The tokens issued, each until when it is good (a token verifier of the SDK's)."""

    def __init__(self, client_id: str, scope: str, resource: str) -> None:
        self.client_id, self.scope, self.resource = client_id, scope, resource
        self.tokens: dict[str, float] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        until = self.tokens.get(token)
        if until is None or until <= time.time():
            return None
        return AccessToken(
            token=token,
            client_id=self.client_id,
            scopes=self.scope.split(),
            expires_at=int(until),
            resource=self.resource,
        )


def _refusal(status: int, error: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": f"refused: {error}"}, status, headers=headers
    )


def build(  # type: ignore[no-untyped-def]
    base: str,
    record: Path,
    client_id: str,
    client_secret: str,
    seconds: int,
    scope: str,
    advertised: str = "",
):
    """The ASGI app: the token endpoint and its metadata (naming ``advertised`` as the
    token endpoint when given), then the SDK's MCP app."""
    issued = Issued(client_id, scope, f"{base}/mcp")
    seen: dict[str, str] = {}
    mcp = MCPServer(
        "oauth-test-server",
        token_verifier=issued,
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=f"{base}/mcp",
            required_scopes=scope.split(),
            validate_token_resource=True,
        ),
    )

    @mcp.tool()
    def echo(text: str) -> str:
        """Say ``text`` back."""
        return text

    @mcp.tool()
    def whoami() -> str:
        """The Authorization this server received, said back."""
        return f"you sent Authorization: {seen.get('authorization', '')}"

    async def token(request: Request) -> Response:
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return _refusal(400, "invalid_request")
        form = dict(parse_qsl((await request.body()).decode()))
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(given, validate=True).decode().partition(":")
        except ValueError:
            user = password = ""
        basic = {"WWW-Authenticate": 'Basic realm="token"'}
        if scheme.lower() != "basic" or (unquote(user), unquote(password)) != (
            client_id,
            client_secret,
        ):
            return _refusal(401, "invalid_client", **basic)
        if "client_secret" in form or form.get("grant_type") != "client_credentials":
            return _refusal(400, "unsupported_grant_type")
        if not set(form.get("scope", "").split()) <= set(scope.split()):
            return _refusal(400, "invalid_scope")
        value = secrets.token_urlsafe(24)
        issued.tokens[value] = time.time() + seconds
        with (record.parent / "issued.jsonl").open("a") as out:
            out.write(json.dumps({"token": value, "scope": form.get("scope", "")}) + "\n")
        answer = {"access_token": value, "token_type": "Bearer", "expires_in": seconds}
        return JSONResponse({**answer, "scope": scope}, headers={"Cache-Control": "no-store"})

    async def metadata(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": base,
                "token_endpoint": advertised or f"{base}/oauth/token",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "scopes_supported": scope.split(),
            }
        )

    async def revoke(request: Request) -> Response:
        issued.tokens.clear()
        return Response(status_code=204)

    oauth = Starlette(
        routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/.well-known/oauth-authorization-server", metadata),
            Route("/test/revoke", revoke, methods=["POST"]),
        ]
    )
    inner = mcp.streamable_http_app(host="127.0.0.1")
    own = {"/oauth/token", "/.well-known/oauth-authorization-server", "/test/revoke"}

    async def app(scope_: Scope, receive: Any, send: Any) -> None:
        if scope_["type"] == "http" and scope_["path"] in own:
            await oauth(scope_, receive, send)
            return
        if scope_["type"] == "http" and scope_["path"].startswith("/mcp"):
            headers = {k.decode().lower(): v.decode() for k, v in scope_["headers"]}
            seen["authorization"] = headers.get("authorization", "")
            with record.open("a") as out:
                line = {"authorization": seen["authorization"], "method": scope_["method"]}
                out.write(json.dumps(line) + "\n")
        await inner(scope_, receive, send)

    return app


def main() -> None:
    record = Path(sys.argv[1]) / "authorizations.jsonl"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = build(
        base,
        record,
        os.environ["OAUTH_CLIENT_ID"],
        os.environ["OAUTH_CLIENT_SECRET"],
        int(os.environ["OAUTH_TOKEN_SECONDS"]),
        os.environ["OAUTH_SCOPE"],
        os.environ.get("OAUTH_ADVERTISED_TOKEN_URL", "").replace(
            "{port}", str(sock.getsockname()[1])
        ),
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        print(sock.getsockname()[1], flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
