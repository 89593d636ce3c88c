"""An HTTP MCP server's ``oauth:`` in the config: client credentials read only from
variables the entry names (each refused in any agent's ``secret_env`` or ``env``, named
when unset at start, hidden by the log redactor with the token held for it), a token
endpoint that never takes the secret unencrypted off loopback; each wrong one at its line
with its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app.assembly import redactor
from bot.config import Config, ConfigError, ConfigProblem, parse_config
from bot.config.mcp.checks import summary_lines
from fleet.mcp.model import HttpServer, OAuthClient

FILE = "fleetwarden.yaml"
SERVER = """\
mcp:
  docs:
    url: https://mcp.docs.example.com/mcp
    oauth:
      token_url: https://auth.example.com/oauth/token
      client_id_env: DOCS_CLIENT_ID
      client_secret_env: DOCS_CLIENT_SECRET
      scope: mcp:tools read
"""


def parse(text: str, **kwargs: Any) -> Config:
    kwargs.setdefault("base_dir", Path("/srv/fw"))
    return parse_config(text, FILE, **kwargs)


def problems_of(text: str, **kwargs: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, **kwargs)
    return list(caught.value.problems)


def test_oauth_becomes_the_servers_client_and_its_variables_are_secrets() -> None:
    """The entry becomes the server's client credentials; both variables are secrets the
    redactor hides, with the token held for the server once it is got; check-config says
    where the token comes from."""
    config = parse(SERVER + "agents:\n  - name: coder\n    mcp: [docs]\n")
    transport = config.mcp["docs"].transport
    assert isinstance(transport, HttpServer) and transport.headers_env == {}
    token_url = "https://auth.example.com/oauth/token"
    assert transport.oauth == OAuthClient(
        "DOCS_CLIENT_ID", "DOCS_CLIENT_SECRET", token_url, "mcp:tools read"
    )
    assert {"DOCS_CLIENT_ID", "DOCS_CLIENT_SECRET"} <= config.secret_env_names()
    held = {"DOCS_CLIENT_ID": "docs-client-77", "DOCS_CLIENT_SECRET": "s3cr3t-docs-x"}
    redact = redactor(config, held)
    transport.oauth.held.value = "issued-token-Qw3Er5Ty7Ui9"
    said = "id docs-client-77 secret s3cr3t-docs-x got issued-token-Qw3Er5Ty7Ui9"
    assert redact.redact(said) == (
        "id [redacted: DOCS_CLIENT_ID] secret [redacted: DOCS_CLIENT_SECRET] got "
        "[redacted: MCP OAuth token of docs]"
    )
    assert summary_lines(config.document) == [
        "docs: HTTP https://mcp.docs.example.com/mcp; OAuth client credentials, token from "
        "https://auth.example.com/oauth/token; credential from $DOCS_CLIENT_ID, "
        "$DOCS_CLIENT_SECRET; every tool; agents: coder"
    ]
    found = parse(SERVER.replace("      token_url: https://auth.example.com/oauth/token\n", ""))
    assert "token from found from the server's metadata" not in summary_lines(found.document)[0]
    assert "token from the server's metadata" in summary_lines(found.document)[0]


def test_the_client_variables_are_refused_in_an_agents_secret_env_or_env() -> None:
    """As any held credential: an agent listing the client secret's variable in its
    secret_env, or setting the client id's in its env, is refused at that line."""
    problems = problems_of(
        SERVER + "agents:\n  - name: coder\n    secret_env: [DOCS_CLIENT_SECRET]\n"
        "    env: {DOCS_CLIENT_ID: x}\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (11, "agents[0].secret_env[0]"),
        (12, "agents[0].env.DOCS_CLIENT_ID"),
    ]
    secret, shadowed = (p.message for p in problems)
    assert "MCP server docs's OAuth client secret (mcp.docs.oauth.client_secret_env)" in secret
    assert "MCP door" in secret
    assert "MCP server docs's OAuth client id (mcp.docs.oauth.client_id_env)" in shadowed


def test_an_unset_client_variable_is_named_at_start() -> None:
    """With the environment checked, an unset client secret is a problem at its line."""
    with pytest.raises(ConfigError) as caught:
        parse(SERVER + "agents: []\n", environ={"DOCS_CLIENT_ID": "docs-client"})
    [problem] = caught.value.problems
    assert (problem.line, problem.key_path) == (7, "mcp.docs.oauth.client_secret_env")
    assert "DOCS_CLIENT_SECRET is not set" in problem.message
    assert "its OAuth client secret for MCP server docs" in problem.message


@pytest.mark.parametrize(
    ("entry", "key_path", "said"),
    [
        (
            "{url: URL, oauth: {client_id_env: A_ID, client_secret_env: A_SECRET, "
            "token_url: 'http://auth.example.com/token'}}",
            "mcp.s.oauth.token_url",
            "token_url would send the client secret unencrypted to auth.example.com: use https://",
        ),
        (
            "{url: URL, oauth: {client_id_env: A_ID, client_secret_env: A_SECRET, "
            "token_url: 'https://auth.example.com/token?client_secret=abc'}}",
            "mcp.s.oauth.token_url",
            "token_url looks like it holds a credential in its query",
        ),
        (
            "{url: URL, oauth: {client_id_env: A_ID, client_secret_env: A_SECRET, "
            "scope: 'a\\\"b'}}",
            "mcp.s.oauth.scope",
            "scope is space-separated words of printable characters",
        ),
        (
            "{url: URL, oauth: {client_id_env: A_ID}}",
            "mcp.s.oauth.client_secret_env",
            "",
        ),
        (
            "{command: npx, oauth: {client_id_env: A_ID, client_secret_env: A_SECRET}}",
            "mcp.s.oauth",
            "oauth is for a server with url; this is a stdio server: remove it",
        ),
        (
            "{url: URL, headers_env: {authorization: A_AUTH}, oauth: {client_id_env: A_ID, "
            "client_secret_env: A_SECRET}}",
            "mcp.s.headers_env.authorization",
            "header authorization is the OAuth token Fleetwarden gets with oauth: remove it",
        ),
        (
            "{url: 'http://mcp.example.com/mcp', oauth: {client_id_env: A_ID, "
            "client_secret_env: A_SECRET}}",
            "mcp.s",
            "the credential of oauth would cross the network unencrypted to mcp.example.com",
        ),
        (
            "{url: URL, oauth: {client_id_env: A_ID, client_secret_env: PATH}}",
            "mcp.s.oauth.client_secret_env",
            "PATH is a variable every agent is given",
        ),
    ],
)
def test_a_wrong_oauth_is_refused_at_its_line(entry: str, key_path: str, said: str) -> None:
    """Each wrong oauth entry is one problem at its key, with the fix."""
    text = "mcp:\n  s: " + entry.replace("URL", "https://mcp.example.com/mcp") + "\n"
    [problem] = problems_of(text)
    assert (problem.line, problem.key_path) == (2, key_path)
    assert said in problem.message
    assert "abc" not in problem.message
