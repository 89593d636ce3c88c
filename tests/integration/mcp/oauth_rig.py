"""What the door's OAuth tests share: the client credentials the test token endpoint
accepts (:mod:`tests.integration.mcp.oauth_mcp_server`), and that server as it runs — its
addresses, the tokens it issued and the ``Authorization`` its MCP endpoint received."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx2

from fleet.mcp.model import HttpServer, McpServer, OAuthClient

CLIENT_ID = "fleetwarden-door-client"
CLIENT_SECRET = "oauth-client-secret-Zp4Qm8Rt2Lk6"
"""The client secret the token endpoint accepts: Fleetwarden holds it, no agent ever sees it."""
SCOPE = "mcp:tools"
ID_ENV, SECRET_ENV = "TRACKER_CLIENT_ID", "TRACKER_CLIENT_SECRET"
HELD = {ID_ENV: CLIENT_ID, SECRET_ENV: CLIENT_SECRET}
"""Fleetwarden's environment, holding the client credentials."""


@dataclass(frozen=True, slots=True)
class OAuthMcp:
    """The OAuth-protected test server on loopback: its MCP endpoint, and where it records
    what it received (``authorizations.jsonl``) and issued (``issued.jsonl``)."""

    url: str
    record: Path

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/oauth/token"

    def server(self, *, discover: bool = False, name: str = "tracker") -> McpServer:
        """The server as the config gives it: its token endpoint named, or (``discover``)
        found from its metadata."""
        oauth = OAuthClient(ID_ENV, SECRET_ENV, None if discover else self.token_url, SCOPE)
        return McpServer(name, HttpServer(self.url, oauth=oauth), timeout=30.0)

    def authorizations(self) -> list[str]:
        """Each ``Authorization`` the MCP endpoint received, in order."""
        return [seen["authorization"] for seen in self._lines(self.record)]

    def issued(self) -> list[str]:
        """Each token the token endpoint issued, in order."""
        return [seen["token"] for seen in self._lines(self.record.parent / "issued.jsonl")]

    async def revoke(self) -> None:
        """The server forgets every token it issued (the next request with one: 401)."""
        async with httpx2.AsyncClient(timeout=10.0) as http:
            (await http.post(f"{self.base}/test/revoke")).raise_for_status()

    @staticmethod
    def _lines(path: Path) -> list[dict[str, str]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]
