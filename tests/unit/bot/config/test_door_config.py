"""What the config says of repositories and forges before anything is asked of them: a
forge's or a repository's credential variable in an agent's ``secret_env`` or ``env`` is
refused naming both (bot.config.checks.doors); a forge's ``api_url`` with a port out of
range, a Gitea's without ``/api/v1`` or GitHub's site instead of its API is refused on its
line; a repository's relative ``url`` is read from the config file's directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from bot.config import Config, ConfigError, ConfigProblem, parse_config
from bot.config.checks.doors import NOT_SECRET, env_variables, held_by_fleetwarden
from bot.config.schema import ConfigFile
from fleet.agents.roster import AgentEntry

FILE = "fleetwarden.yaml"
FORGE = """
forges:
  gh:
    kind: github
    token_env: FLEETWARDEN_GITHUB_TOKEN
    webhook_secret_env: GH_HOOK
    login: acme-bot
repos:
  app:
    url: https://github.com/acme/app.git
    forge: gh
  lib:
    url: https://git.example.com/acme/lib.git
    token_env: LIB_TOKEN
"""


def parse(text: str, **kwargs: Any) -> Config:
    return parse_config(text, FILE, base_dir=Path("/srv/fw"), **kwargs)


def problems_of(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return list(caught.value.problems)


def test_a_forges_token_in_an_agents_secret_env_names_the_agent_and_the_forge() -> None:
    """The forge's token and a repository's token listed in secret_env: each refused on
    its line, naming the agent, the forge or repository, and the fix."""
    problems = problems_of(
        FORGE + "agents:\n  - name: coder\n    repo: app\n"
        "    secret_env: [NPM_TOKEN, FLEETWARDEN_GITHUB_TOKEN, LIB_TOKEN]\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (18, "agents[0].secret_env[1]"),
        (18, "agents[0].secret_env[2]"),
    ]
    forge, repo = (p.message for p in problems)
    assert "agent 'coder' would get FLEETWARDEN_GITHUB_TOKEN" in forge
    assert "forge gh's token (forges.gh.token_env)" in forge and "forge door" in forge
    assert "repository lib's token (repos.lib.token_env)" in repo and "git door" in repo


def test_a_webhook_secret_or_app_key_in_env_is_refused_too() -> None:
    """An agent's env setting the variable of a forge's webhook secret: refused."""
    [problem] = problems_of(
        FORGE + "agents:\n  - name: coder\n    repo: app\n    env: {GH_HOOK: x}\n"
    )
    assert problem.key_path == "agents[0].env.GH_HOOK"
    assert "forge gh's webhook secret" in problem.message and "another name" in problem.message


OWN = """
ledger: postgresql://fw@127.0.0.1:5432/fleet
ledger_password_env: PG_PASSWORD
connectors:
  matrix:
    homeserver: http://127.0.0.1:6167
    user_id: "@fw:example.org"
    access_token_env: MX_TOKEN
    store_passphrase_env: MX_STORE
  discord:
    token_env: DC_TOKEN
    guild_id: "1234567890123456789"
    channel_id: "1234567890123456790"
  slack:
    bot_token_env: SL_BOT
    app_token_env: SL_APP
    signing_secret_env: SL_SIGN
    channel_id: C0123456789
dashboard:
  metrics_token_env: METRICS_TOKEN
hosts:
  - name: box2
    ssh: fw@127.0.0.2
    key_file: /k/id
    key_passphrase_env: BOX_PASS
    known_hosts: /k/known_hosts
accounts:
  team:
    kind: api_key
    provider: anthropic
    key_env: TEAM_KEY
"""
BY_PASSWORD = OWN.replace("access_token_env: MX_TOKEN", "password_env: MX_PASSWORD")


@pytest.mark.parametrize(
    ("variable", "said"),
    [
        ("MX_TOKEN", "the Matrix bot's access token (connectors.matrix.access_token_env)"),
        ("MX_PASSWORD", "the Matrix bot's password (connectors.matrix.password_env)"),
        (
            "MX_STORE",
            "the passphrase of the Matrix bot's crypto store "
            "(connectors.matrix.store_passphrase_env)",
        ),
        ("DC_TOKEN", "the Discord bot's token (connectors.discord.token_env)"),
        ("SL_BOT", "the Slack app's bot token (connectors.slack.bot_token_env)"),
        ("SL_APP", "the Slack app's app-level token (connectors.slack.app_token_env)"),
        ("SL_SIGN", "the Slack app's signing secret (connectors.slack.signing_secret_env)"),
        ("METRICS_TOKEN", "the dashboard's metrics token (dashboard.metrics_token_env)"),
        ("PG_PASSWORD", "the ledger's password (ledger_password_env)"),
        ("BOX_PASS", "the passphrase of host box2's key (hosts[0].key_passphrase_env)"),
    ],
)
def test_any_secret_of_fleetwardens_own_in_secret_env_names_the_agent_and_its_place(
    variable: str, said: str
) -> None:
    """A chat connector's token, the dashboard's token, the ledger's password, the Matrix
    store's passphrase, a host key's passphrase: each refused in secret_env on its line,
    naming the agent and the part of the config that holds the variable."""
    text = BY_PASSWORD if variable == "MX_PASSWORD" else OWN
    [problem] = problems_of(
        text + f"agents:\n  - name: coder\n    secret_env: [NPM_TOKEN, {variable}]\n"
    )
    assert problem.key_path == "agents[0].secret_env[1]"
    assert f"agent 'coder' would get {variable}, which holds {said}" in problem.message
    assert "Fleetwarden's own" in problem.message and "Remove it from secret_env" in problem.message


def test_a_secret_of_fleetwardens_own_set_in_env_is_refused_under_any_name() -> None:
    """An env key shadowing the ledger's password or an account's key variable (names
    that do not look like a secret) is refused, naming what the variable holds."""
    problems = problems_of(
        OWN.replace("PG_PASSWORD", "PGPASS").replace("TEAM_KEY", "TEAMK")
        + "agents:\n  - name: coder\n    env: {PGPASS: x, TEAMK: y, LANGUAGE: en}\n"
    )
    assert [p.key_path for p in problems] == ["agents[0].env.PGPASS", "agents[0].env.TEAMK"]
    assert "the ledger's password (ledger_password_env)" in problems[0].message
    assert "account team's credential (accounts.team.key_env)" in problems[1].message


APP_FORGE = """
  ghapp:
    kind: github
    app: {app_id_env: GH_APP_ID, private_key_env: GH_APP_KEY}
    login: acme-app
    poll_seconds: 60
"""


MCP_SERVERS = """
mcp:
  tracker:
    url: https://mcp.example.com/mcp
    headers_env: {Authorization: TRACKER_AUTH}
  db:
    command: db-mcp
    env_env: {DB_PASSWORD: DB_MCP_PASSWORD}
  docs:
    url: https://docs.example.com/mcp
    oauth: {client_id_env: DOCS_CLIENT_ID, client_secret_env: DOCS_CLIENT_SECRET}
"""


def _env_keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every ``*_env`` key naming one variable, in ``model`` and the models under it."""
    found: set[str] = set()
    if model in seen:
        return found
    seen.add(model)
    for name, info in model.model_fields.items():
        if name.endswith("_env") and name != "secret_env":
            found.add(name)
        stack = [info.annotation]
        while stack:
            kind = stack.pop()
            stack.extend(get_args(kind))
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= _env_keys(kind, seen)
    return found


def test_every_secret_key_of_the_schema_is_covered() -> None:
    """Every ``*_env`` key the schema has outside the roster is found in a config that
    sets them all, and named in words (a GitHub App's id, which is public, aside)."""
    roster = _env_keys(AgentEntry, set())
    schema = _env_keys(ConfigFile, set()) - roster - NOT_SECRET
    forges = FORGE.replace("repos:", APP_FORGE.lstrip("\n") + "repos:", 1) + MCP_SERVERS
    keys: set[str] = set()
    for own in (OWN, BY_PASSWORD):
        document = parse(own + forges).document
        found = [  # the agents' own variables (their secret_env) and public ones aside
            (loc, variable)
            for loc, variable in env_variables(document)
            if loc[0] != "agents" and "secret_env" not in loc and loc[-1] not in NOT_SECRET
        ]
        # A mapping's variables (an MCP server's `headers_env`) are found under their keys.
        keys |= {next(str(p) for p in reversed(loc) if str(p).endswith("_env")) for loc, _ in found}
        held = held_by_fleetwarden(document)
        assert "GH_APP_ID" not in held and len(held) == len(found)
        assert [h.path for h in held.values() if h.what == "a credential of Fleetwarden's"] == []
    assert keys - NOT_SECRET == schema


def test_an_agents_own_token_in_another_variable_is_fine() -> None:
    """A variable no forge or repository holds passes."""
    config = parse(FORGE + "agents:\n  - name: coder\n    repo: app\n    secret_env: [NPM_TOKEN]\n")
    assert config.agents[0].secret_env == ("NPM_TOKEN",)


@pytest.mark.parametrize(
    ("kind", "api_url", "said"),
    [
        ("github", "http://127.0.0.1:151723", "port is not a number from 1 to 65535"),
        ("github", "ftp://api.github.com", "is an http(s) URL"),
        ("github", "https://github.com", "GitHub's API is at https://api.github.com"),
        ("gitea", "https://git.example.com", "API is under /api/v1"),
    ],
)
def test_an_api_url_that_cannot_be_a_forges_api_is_refused_on_its_line(
    kind: str, api_url: str, said: str
) -> None:
    """Out-of-range port, another scheme, GitHub's site, a Gitea without /api/v1."""
    text = (
        f"forges:\n  f:\n    kind: {kind}\n    api_url: {api_url}\n    token_env: F_TOKEN\n"
        "    poll_seconds: 60\n    login: bot\n"
    )
    [problem] = problems_of(text)
    assert (problem.line, problem.key_path) == (4, "forges.f.api_url")
    assert said in problem.message


def test_a_gitea_without_an_api_url_is_told_to_give_one() -> None:
    """The default api_url is GitHub's: a Gitea must say where its API is."""
    [problem] = problems_of(
        "forges:\n  f:\n    kind: gitea\n    token_env: F_TOKEN\n    poll_seconds: 60\n"
        "    login: bot\n"
    )
    assert problem.key_path == "forges.f" and "api_url: https://" in problem.message


def test_a_relative_repository_url_is_read_from_the_config_files_directory() -> None:
    """``url: ../git/app.git`` is /srv/git/app.git for a config in /srv/fw, as the guides
    say relative paths are."""
    config = parse("repos:\n  app:\n    url: ../git/app.git\n  lib:\n    url: lib.git\n")
    assert config.repos["app"].url == "/srv/git/app.git"
    assert config.repos["lib"].url == "/srv/fw/lib.git"


def test_a_repository_url_with_a_port_out_of_range_is_refused() -> None:
    """``http://127.0.0.1:151723/app.git`` is no address: said on its line."""
    [problem] = problems_of("repos:\n  app:\n    url: http://127.0.0.1:151723/app.git\n")
    assert problem.key_path == "repos.app.url" and "port" in problem.message
    assert problem.line == 3  # the url's own line


def test_a_webhook_secret_variable_named_but_unset_refuses_the_start() -> None:
    """Naming webhook_secret_env says webhooks are wanted: unset, it is refused with its
    name (a forge that takes no webhooks leaves it out and polls)."""
    with pytest.raises(ConfigError) as caught:
        parse(FORGE, environ={"FLEETWARDEN_GITHUB_TOKEN": "t", "LIB_TOKEN": "t"})
    [problem] = caught.value.problems
    assert problem.key_path == "forges.gh.webhook_secret_env"
    assert "GH_HOOK is not set" in problem.message
    polled = FORGE.replace("webhook_secret_env: GH_HOOK", "poll_seconds: 60")
    config = parse(polled, environ={"FLEETWARDEN_GITHUB_TOKEN": "t", "LIB_TOKEN": "t"})
    assert config.forges["gh"].webhook_secret_env is None
