"""What the config says of repositories and forges before anything is asked of them: a
forge's or a repository's credential variable in an agent's ``secret_env`` or ``env`` is
refused naming both (bot.config.door_checks); a forge's ``api_url`` with a port out of
range, a Gitea's without ``/api/v1`` or GitHub's site instead of its API is refused on its
line; a repository's relative ``url`` is read from the config file's directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, ConfigError, ConfigProblem, parse_config

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
