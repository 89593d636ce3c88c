"""A forge's or a repository's ``review:``: its agent is the roster's (a typo is answered
with the name it meant), never the agent given the work; its rounds are 1 to 10, 2 unless
said; a repository's own ``review:`` wins over its forge's."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, ConfigError, ConfigProblem, parse_config

FILE = "fleetwarden.yaml"


def config(forge_review: str = "", repo_review: str = "") -> str:
    return (
        "forges:\n  gh:\n    kind: github\n    token_env: GH_TOKEN\n"
        "    webhook_secret_env: GH_HOOK\n    login: acme-bot\n    agent: coder\n"
        f"{forge_review}"
        "repos:\n  app:\n    url: https://github.com/acme/app.git\n    forge: gh\n"
        f"{repo_review}"
        "  lib:\n    url: https://github.com/acme/lib.git\n    forge: gh\n"
        "agents:\n  - name: coder\n    repo: app\n  - name: reviewer\n    repo: app\n"
        "  - name: critic\n    repo: lib\n"
    )


def parse(text: str) -> Config:
    return parse_config(text, FILE, base_dir=Path("/srv/fw"))


def problems_of(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return list(caught.value.problems)


def test_a_forges_review_is_its_repositories_default_and_a_repositorys_own_wins() -> None:
    loaded = parse(
        config(
            forge_review="    review: {agent: reviewer}\n",
            repo_review="    review: {agent: critic, rounds: 5}\n",
        )
    )
    forge = loaded.forges["gh"].review
    assert forge is not None and (forge.agent, forge.rounds) == ("reviewer", 2)
    app = loaded.repos["app"].review_of(forge)
    lib = loaded.repos["lib"].review_of(forge)
    assert app is not None and (app.agent, app.rounds) == ("critic", 5)
    assert lib is forge


def test_a_review_agent_not_in_the_roster_is_answered_with_the_name_it_meant() -> None:
    [problem] = problems_of(config(repo_review="    review: {agent: reviewr}\n"))
    assert problem.key_path == "repos.app.review.agent"
    assert "did you mean 'reviewer'" in problem.message
    assert "allowed: coder, critic, reviewer" in problem.message


def test_the_agent_given_the_work_never_reviews_it() -> None:
    [problem] = problems_of(config(forge_review="    review: {agent: coder}\n"))
    assert problem.key_path == "forges.gh.review.agent"
    assert "never reviews its own work" in problem.message


@pytest.mark.parametrize("rounds", ["0", "11"])
def test_rounds_are_one_to_ten(rounds: str) -> None:
    [problem] = problems_of(
        config(repo_review=f"    review: {{agent: reviewer, rounds: {rounds}}}\n")
    )
    assert problem.key_path == "repos.app.review.rounds"


def test_a_review_agent_is_sandboxed_on_this_machine() -> None:
    """A review agent's checkout is read-only only in its sandbox, and made on this
    machine: one with ``sandbox: none``, or on another host, is refused, saying why."""
    text = config(repo_review="    review: {agent: reviewer}\n")
    unsandboxed = text.replace("  - name: reviewer\n", "  - name: reviewer\n    sandbox: none\n")
    [problem] = problems_of(unsandboxed)
    assert problem.key_path == "repos.app.review.agent"
    assert "`sandbox: none`" in problem.message and "`sandbox: bwrap`" in problem.message
    by_default = "defaults:\n  sandbox: none\n" + text
    assert "`sandbox: none`" in problems_of(by_default)[0].message
    elsewhere = (
        "hosts:\n  - {name: box2, ssh: fw@127.0.0.2, key_file: /k/id, known_hosts: /k/known}\n"
        + text.replace("  - name: reviewer\n", "  - name: reviewer\n    host: box2\n")
    )
    [problem] = problems_of(elsewhere)
    assert problem.key_path == "repos.app.review.agent"
    assert "runs on host box2" in problem.message and "`host: local`" in problem.message
