"""The held credentials: read from the environment when a server is reached, refused by
name when unset, and scrubbed out of what is relayed, a bearer token alone too, and
encoded (base64, hex, percent-encoding) as well."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from fleet.mcp.model import HttpServer, McpServer, OAuthClient, StdioServer
from fleet.mcp.upstream.credentials import (
    McpSecrets,
    MissingCredential,
    Scrub,
    held_headers,
    secrets_of,
    stdio_env,
)

TOKEN = "tok-9f8e7d6c5b4a"
HTTP = McpServer("tracker", HttpServer("https://t.example/mcp", {"Authorization": "T_TOKEN"}))
STDIO = McpServer("db", StdioServer("db-mcp", env={"MODE": "ro"}, env_env={"DB_PASS": "DB_ENV"}))


def test_headers_and_env_are_read_when_the_server_is_reached() -> None:
    """The plain values stay, each held one is read from its variable."""
    environ = {"T_TOKEN": f"Bearer {TOKEN}", "DB_ENV": "pw-123456"}
    assert isinstance(HTTP.transport, HttpServer) and isinstance(STDIO.transport, StdioServer)
    assert held_headers(HTTP.transport, environ) == {"Authorization": f"Bearer {TOKEN}"}
    assert stdio_env(STDIO.transport, environ) == {"MODE": "ro", "DB_PASS": "pw-123456"}


def test_an_unset_variable_is_named_never_guessed() -> None:
    """A credential's variable unset is refused by its name, with the fix."""
    assert isinstance(HTTP.transport, HttpServer)
    with pytest.raises(MissingCredential, match="T_TOKEN is not set"):
        held_headers(HTTP.transport, {})


def test_a_bearer_token_is_scrubbed_whole_and_alone() -> None:
    """``Bearer T`` and ``T`` alone, as written or JSON-escaped, become the label."""
    secrets = secrets_of([HTTP, STDIO], {"T_TOKEN": f"Bearer {TOKEN}", "DB_ENV": "pw-1234567"})
    scrub = Scrub(secrets)
    said = scrub(f"got Bearer {TOKEN}; again {TOKEN}; db pw-1234567")
    assert TOKEN not in said and "pw-1234567" not in said
    assert "[redacted: MCP credential T_TOKEN]" in said
    assert "[redacted: MCP credential DB_ENV]" in said
    assert {
        s.value for s in McpSecrets([HTTP], {"T_TOKEN": f"Bearer {TOKEN}"}).known_secrets()
    } == {
        f"Bearer {TOKEN}",
        TOKEN,
    }


def test_scrubbed_json_stays_json_or_is_not_relayed() -> None:
    """A credential inside a string leaves valid JSON; one across the structure, nothing."""
    scrub = Scrub(secrets_of([HTTP], {"T_TOKEN": TOKEN}))
    inside = json.dumps({"text": f"token {TOKEN}"}).encode()
    cleaned = scrub.json(inside)
    assert cleaned is not None and json.loads(cleaned)["text"].startswith("token [redacted")
    structural = Scrub(secrets_of([HTTP], {"T_TOKEN": 'key": "value'}))
    assert structural.json(b'{"key": "value"}') is None
    assert scrub.json(b'{"plain": 1}') == b'{"plain": 1}'


@pytest.mark.parametrize(
    "shown",
    [
        base64.b64encode(f"user:{TOKEN}".encode()).decode(),  # a Basic header echoed
        base64.b64encode(f"{TOKEN}".encode()).decode(),
        base64.b64encode(f"ab{TOKEN}xyz".encode()).decode(),
        base64.urlsafe_b64encode(f"a{TOKEN}?".encode()).decode().rstrip("="),
        TOKEN.encode().hex(),
        TOKEN.encode().hex().upper(),
        quote(f"Bearer {TOKEN}", safe=""),
        quote_plus(f"Bearer {TOKEN}"),
    ],
    ids=["basic", "base64", "base64-shifted", "base64url", "hex", "HEX", "percent", "form"],
)
def test_an_encoded_credential_is_scrubbed(shown: str) -> None:
    """A held value a server echoes encoded (base64 at any alignment, hex, percent-encoded)
    is scrubbed as written is: nothing of it decodes back to the token."""
    scrub = Scrub(secrets_of([HTTP], {"T_TOKEN": f"Bearer {TOKEN}"}))
    said = scrub(f'{{"echo": "{shown}"}}')
    assert "[redacted: MCP credential T_TOKEN]" in said
    assert shown not in said
    assert json.loads(said)["echo"].startswith(("[redacted", shown[:2]))


def test_an_oauth_token_is_scrubbed_as_it_is_renewed() -> None:
    """The scrub of a server with OAuth client credentials knows the token held now, and
    the one it replaced (good still, maybe), and the client secret all along."""
    oauth = OAuthClient("D_ID", "D_SECRET", "https://auth.example.com/token")
    docs = McpServer("docs", HttpServer("https://d.example/mcp", oauth=oauth))
    scrub = Scrub(secrets_of([docs], {"D_ID": "docs-client-1", "D_SECRET": "docs-secret-9"}))
    assert scrub("secret docs-secret-9") == "secret [redacted: MCP credential D_SECRET]"
    oauth.held.value = "first-token-Aa11Bb22"
    assert scrub("Bearer first-token-Aa11Bb22") == "Bearer [redacted: MCP OAuth token of docs]"
    oauth.held.former, oauth.held.value = ("first-token-Aa11Bb22",), "second-token-Cc33Dd44"
    said = scrub(base64.b64encode(b"second-token-Cc33Dd44").decode() + " first-token-Aa11Bb22")
    assert said == "[redacted: MCP OAuth token of docs] [redacted: MCP OAuth token of docs]"
