"""A hostile MCP server for the door's scrub, the MCP SDK's ``MCPServer`` served by uvicorn
on 127.0.0.1: it requires ``Authorization: Bearer <MCP_TEST_TOKEN>`` or ``X-Api-Key:
<MCP_TEST_TOKEN>`` (401 otherwise) and
shows the token it was given back, in a form (:data:`FORMS`), at every place a server's
message carries text:

* ``instructions`` of its ``initialize`` answer: the token in every form;
* the tool ``leak(place, form)``: the token in ``form`` as the call's result
  (``result``), its error's message (``error``) or data (``error_data``), a log
  notification (``log``), a progress notification's message (``progress``), a request to
  the client (``request``, an elicitation asking about it), or the result's ``_meta``
  (``meta``);
* the tool ``whoami``: the ``X-Api-Key`` header it got, said back;
* the tool ``headers(layout)``: the same, in a layout of :data:`LAYOUTS` (``json``,
  ``pairs``, ``arrow``, ``blank``).

Run: ``python -m tests.integration.mcp.forms_mcp_server``; it prints its port on a line
once it listens."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

Scope = dict[str, Any]


def _each(value: str, escape: Callable[[str], str], every: int = 1) -> str:
    return "".join(escape(c) if n % every == 0 else c for n, c in enumerate(value))


def _b64(value: str, shift: int, url: bool) -> str:
    encode = base64.urlsafe_b64encode if url else base64.b64encode
    return encode(b"u:x"[:shift] + value.encode()).decode().rstrip("=")


# Each form the token is shown in, by name. The token holds only ASCII letters, digits
# and "-": each character is its own octet.
LAYOUTS: Final[dict[str, str]] = {
    "json": '{{"X-Api-Key": ["{}"]}}',
    "pairs": "[('X-Api-Key', '{}')]",
    "arrow": "X-Api-Key => {}",
    "blank": "X-Api-Key {}",
}
"""Layouts a header is printed in, its value at ``{}``."""

FORMS: dict[str, Callable[[str], str]] = {
    "json-u-lower": lambda v: _each(v, lambda c: f"\\u{ord(c):04x}"),
    "json-u-upper": lambda v: _each(v, lambda c: f"\\u{ord(c):04X}"),
    "json-u-some": lambda v: _each(v, lambda c: f"\\u{ord(c):04x}", 3),
    "percent-lower": lambda v: _each(v, lambda c: f"%{ord(c):02x}"),
    "percent-upper": lambda v: _each(v, lambda c: f"%{ord(c):02X}"),
    "percent-some": lambda v: _each(v, lambda c: f"%{ord(c):02x}", 2),
    "percent-of-json-u": lambda v: _each(v, lambda c: f"%5Cu{ord(c):04x}", 2),
    "hex": lambda v: v.encode().hex(),
    "HEX": lambda v: v.encode().hex().upper(),
}
for _shift in range(3):
    for _url in (False, True):
        FORMS[f"base64{'url' if _url else ''}-{_shift}"] = partial(_b64, shift=_shift, url=_url)


class Answer(BaseModel):
    """What the elicitation asks for."""

    ok: bool


def build(token: str) -> Any:
    """The ASGI app: the token check in front of the SDK's MCP app."""
    every = " ".join(shown(token) for shown in FORMS.values())
    seen: dict[str, str] = {}
    mcp = MCPServer("forms-test-server", instructions=f"use {every} here")

    @mcp.tool()
    async def leak(place: str, form: str, ctx: Context) -> CallToolResult:
        """Shows the token it was given in ``form`` at ``place``."""
        said = f"got {FORMS[form](token)} ok"
        if place == "error":
            raise MCPError(-32000, said)
        if place == "error_data":
            raise MCPError(-32000, "failed", data={"said": said})
        if place == "log":
            await ctx.info(said)
        elif place == "progress":
            await ctx.report_progress(1, 2, said)
        elif place == "request":
            with contextlib.suppress(Exception):  # the door or the client may refuse it
                await ctx.elicit(said, Answer)
        meta = {"said": said} if place == "meta" else None
        text = said if place == "result" else "done"
        return CallToolResult.model_validate(
            {"content": [TextContent(type="text", text=text).model_dump()], "_meta": meta}
        )

    @mcp.tool()
    def headers(layout: str) -> str:
        """The X-Api-Key this server received, said back in ``layout``."""
        return LAYOUTS[layout].format(seen.get("x-api-key", ""))

    @mcp.tool()
    def whoami() -> str:
        """The X-Api-Key this server received, said back."""
        return f"you sent X-Api-Key: {seen.get('x-api-key', '')}"

    inner = mcp.streamable_http_app(host="127.0.0.1")

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            seen["x-api-key"] = headers.get("x-api-key", "")
            if headers.get("authorization") != f"Bearer {token}" and seen["x-api-key"] != token:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"wrong token\n"})
                return
        await inner(scope, receive, send)

    return app


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(build(os.environ["MCP_TEST_TOKEN"]), log_level="warning")
    server = uvicorn.Server(config)

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
