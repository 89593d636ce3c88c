"""Tests for the config's `repos:` section and the checks across it (bot.config.checks.repos):
a good entry loads, a bad one is named on its line, an agent's `repo` must name an entry
and comes without `workdir` or another host, each credential is there at start, and
operators' git identities."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, ConfigError, ConfigProblem, parse_config
from bot.config.checks.repos import credential_kind, summary_lines

FILE = "fleetwarden.yaml"
APP = """
repos:
  app:
    url: https://github.com/acme/app.git
    token_env: APP_TOKEN
    protected: [release]
"""


def parse(text: str, **kwargs: Any) -> Config:
    return parse_config(text, FILE, base_dir=Path("/srv/fw"), **kwargs)


def problems_of(text: str, **kwargs: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, **kwargs)
    return list(caught.value.problems)


def only_problem(text: str, **kwargs: Any) -> ConfigProblem:
    problems = problems_of(text, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


def test_a_repository_and_an_agent_on_it_load() -> None:
    """The entry's settings (defaults filled in), and the agent's spec naming it."""
    config = parse(APP + "agents:\n  - name: coder\n    repo: app\n", environ={"APP_TOKEN": "t"})
    entry = config.repos["app"]
    assert (entry.url, entry.default_branch, entry.merge) == (
        "https://github.com/acme/app.git",
        "main",
        "squash",
    )
    assert entry.is_protected("main") and entry.is_protected("release")
    assert not entry.is_protected("fw/coder/3")
    spec = config.agents[0].to_spec(config.defaults)
    assert (spec.repo, spec.repo_base, spec.workdir) == ("app", None, None)
    assert "APP_TOKEN" in config.secret_env_names()  # the log redactor learns its value
    assert summary_lines(config.repos) == [
        "app: https://github.com/acme/app.git (main; token from $APP_TOKEN; merge squash)"
    ]


def test_a_url_fleetwarden_does_not_take_is_named() -> None:
    """An ftp:// url, or git's HOST:PATH without a user, is refused on its line."""
    for url in ("ftp://example.org/app.git", "example.org:app.git"):
        problem = only_problem(f"repos:\n  app:\n    url: {url}\n")
        assert (problem.line, problem.key_path) == (3, "repos.app.url")
        assert "https://HOST/PATH" in problem.message


def test_a_token_in_the_url_is_refused_and_not_repeated() -> None:
    """A credential in the url belongs in token_env; the message does not echo it."""
    problem = only_problem("repos:\n  app:\n    url: https://x:ghp_s3cr3t@github.com/a.git\n")
    assert problem.key_path == "repos.app.url"
    assert "token_env" in problem.message and "ghp_s3cr3t" not in str(problem)


def test_two_credentials_are_refused() -> None:
    """token_env and ssh_key together: one of them."""
    problem = only_problem(
        "repos:\n  app:\n    url: git@github.com:acme/app.git\n"
        "    token_env: APP_TOKEN\n    ssh_key: /k/id\n"
    )
    assert problem.key_path == "repos.app"
    assert "not both" in problem.message


@pytest.mark.parametrize(
    ("url", "credential", "said"),
    [
        (
            "/srv/git/app.git",
            "token_env: APP_TOKEN",
            "token_env is for an https url, and url /srv/git/app.git is a path on this "
            "machine, which git reads with no credential: remove token_env",
        ),
        (
            "../git/app.git",
            "token_env: APP_TOKEN",
            "url /srv/git/app.git is a path on this machine",
        ),
        (
            "git@github.com:acme/app.git",
            "token_env: APP_TOKEN",
            "url git@github.com:acme/app.git is an ssh url, which takes ssh_key",
        ),
        (
            "https://github.com/acme/app.git",
            "ssh_key: /k/id",
            "ssh_key is for an ssh url, and url https://github.com/acme/app.git is an https "
            "url, which takes token_env",
        ),
        ("/srv/git/app.git", "ssh_key: /k/id", "no credential: remove ssh_key"),
    ],
)
def test_a_credential_the_url_does_not_take_names_the_kind_of_url(
    url: str, credential: str, said: str
) -> None:
    """A path with a token_env is not called ssh: the message names the kind of url it
    saw (a relative path as it was read) and what that kind takes."""
    problem = only_problem(f"repos:\n  app:\n    url: {url}\n    {credential}\n")
    assert problem.key_path == "repos.app"
    assert said in problem.message, problem.message
    assert "an ssh url takes ssh_key" not in problem.message


def test_a_repository_name_is_checked_with_a_clear_message() -> None:
    """A name with capitals or spaces is refused, saying what a name is."""
    problem = only_problem("repos:\n  My App:\n    url: /srv/git/app.git\n")
    assert problem.key_path == "repos.My App"
    assert "invalid repository name 'My App'" in problem.message
    assert "lowercase letter" in problem.message


def test_an_agent_naming_an_unknown_repository_is_told_the_likely_one() -> None:
    """A typo in `repo:` is reported on the agent's line, with did-you-mean."""
    problem = only_problem(APP + "agents:\n  - name: coder\n    repo: ap\n")
    assert problem.key_path == "agents[0].repo"
    assert problem.message == "unknown repository 'ap' — did you mean 'app'? allowed: app"
    alone = only_problem("agents:\n  - name: coder\n    repo: app\n")
    assert "no `repos:` section" in alone.message and "docs/repos.md" in alone.message


def test_an_agent_on_a_repository_sets_no_workdir(tmp_path: Path) -> None:
    """Its run's checkout is its workdir: both is refused."""
    problem = only_problem(
        APP + f"agents:\n  - name: coder\n    repo: app\n    workdir: {tmp_path}\n"
    )
    assert problem.key_path == "agents[0].repo"
    assert "remove `workdir`" in problem.message


def test_an_agent_on_a_repository_may_run_on_a_host() -> None:
    """On a host (named, or any): its checkout is made there, so the config takes it."""
    hosts = (
        "hosts:\n  - name: box2\n    ssh: fw@127.0.0.2\n    key_file: /k/id\n"
        "    known_hosts: /k/known_hosts\n"
    )
    for host in ("box2", "any"):
        config = parse(
            APP + hosts + f"agents:\n  - name: coder\n    repo: app\n    host: {host}\n",
            environ={"APP_TOKEN": "t"},
        )
        assert [(a.repo, a.host) for a in config.agents] == [("app", host)]


def test_a_token_variable_must_be_set_at_start() -> None:
    """Unset or empty: named with how to fix it, the value never asked for in the file;
    without the environment (no credential check) it loads."""
    unset = only_problem(APP, environ={})
    assert unset.key_path == "repos.app.token_env"
    assert "APP_TOKEN is not set" in unset.message
    empty = only_problem(APP, environ={"APP_TOKEN": " "})
    assert "APP_TOKEN is empty" in empty.message
    assert parse(APP).repos["app"].token_env == "APP_TOKEN"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("ghp_s3cret\n", "a line break"),
        ("\r\nghp_s3cret", "a line break"),
        ("ghp_s3 cret", "a space or a control character"),
        ("ghp_s3cret\x00", "a space or a control character"),
    ],
)
def test_a_token_no_request_could_carry_is_named_at_start_and_never_shown(
    value: str, said: str
) -> None:
    """A token with a newline a paste left at its end (or a space, a control character)
    would fail as an HTTP header deep in a request: it is refused at start, named, with
    the fix, and its value never repeated."""
    problem = only_problem(APP, environ={"APP_TOKEN": value})
    assert problem.key_path == "repos.app.token_env"
    assert f"APP_TOKEN holds {said}" in problem.message
    assert "s3" not in problem.message


def test_an_ssh_key_others_may_read_is_refused_at_start(tmp_path: Path) -> None:
    """A key of mode 0644 is refused with the chmod that fixes it; 0600 passes."""
    key = tmp_path / "id_app"
    key.write_text("key\n", encoding="utf-8")
    os.chmod(key, 0o644)
    text = f"repos:\n  app:\n    url: git@github.com:acme/app.git\n    ssh_key: {key}\n"
    problem = only_problem(text, environ={})
    assert problem.key_path == "repos.app.ssh_key"
    assert "chmod 600" in problem.message
    os.chmod(key, 0o600)
    config = parse(text, environ={})
    assert credential_kind(config.repos["app"]) == f"ssh key {key}"


def test_an_operator_git_identity_makes_a_co_author() -> None:
    """git_name with git_email gives `NAME <EMAIL>`; one without the other is refused."""
    good = parse(
        'operators:\n  - {id: "@ann:example.org", role: operator, git_name: Ann Lee,'
        " git_email: ann@example.org}\n"
    )
    assert good.operators[0].co_author == "Ann Lee <ann@example.org>"
    half = only_problem('operators:\n  - {id: "@ann:example.org", role: operator, git_name: Ann}\n')
    assert "together" in half.message
    forged = only_problem(
        'operators:\n  - {id: "@ann:example.org", role: operator, git_name: "A <x@y>",'
        " git_email: a@b.c}\n"
    )
    assert "'<' or '>'" in forged.message


def test_workflows_takes_true_false_or_a_list_of_more_ci_paths() -> None:
    """`true` lets runs change CI; a list names more CI paths (relative ones only); each
    problem is named on its key."""
    base = "repos:\n  app:\n    url: /srv/git/app.git\n    workflows: "
    assert parse(base + "true\n").repos["app"].workflows_allowed()
    listed = parse(base + "[scripts/ci/, Makefile]\n").repos["app"]
    assert not listed.workflows_allowed()
    assert listed.ci_paths() == ("scripts/ci/", "Makefile")
    plain = parse(base + "false\n").repos["app"]
    assert (plain.workflows_allowed(), plain.ci_paths()) == (False, ())
    for bad in ("[/etc/ci]", "['../up']", "['']"):
        problem = only_problem(base + bad + "\n")
        assert problem.key_path == "repos.app.workflows", problem
        assert "relative to the repository's top" in problem.message
    problem = only_problem(base + "yes please\n")
    assert problem.key_path == "repos.app.workflows"
    assert "true, false, or a list of more paths CI runs" in problem.message
