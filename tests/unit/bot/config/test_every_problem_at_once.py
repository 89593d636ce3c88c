"""`check-config` and the start-up check report every problem in one pass: what the
schema refuses and what names nothing across entries, together, each on its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.command import EXIT_CONFIG, main
from bot.config import ConfigError, ConfigProblem, parse_config

FILE = "fleetwarden.yaml"

BOTH = """\
log_level: loud
repos:
  app:
    url: https://github.com/acme/app.git
  lib:
    url: https://github.com/acme/lib.git
    merge: sometimes
accounts:
  team:
    kind: api_key
    provider: anthropc
    key_env: TEAM_KEY
budgets:
  - scope: account:tema
    limit_usd: 5
    window: dayly
  - scope: host:box9
    limit_usd: 5
    window: daily
agents:
  - name: coder
    runtime: stub
    repo: ap
  - name: broken
    runtime: stub
    restart: maybe
    repo: nowhere
  - name: helper
    runtime: stub
    repo: lib
    talks_to: [codr]
"""


def problems_of(text: str, base_dir: Path = Path("/srv/fw")) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, FILE, base_dir=base_dir)
    return list(caught.value.problems)


def test_schema_errors_and_cross_references_come_together() -> None:
    """Four settings the schema refuses and four names that name nothing, in one answer,
    by line; the refused entries' own names are not checked (budget 0's scope, the broken
    agent's repo), nor is a repository whose entry failed said to be missing."""
    assert [(p.line, p.key_path) for p in problems_of(BOTH)] == [
        (1, "log_level"),
        (7, "repos.lib.merge"),
        (11, "accounts.team.provider"),
        (16, "budgets[0].window"),
        (17, "budgets[1].scope"),
        (23, "agents[0].repo"),
        (26, "agents[1].restart"),
        (31, "agents[2].talks_to[0]"),
    ]
    said = {p.key_path: p.message for p in problems_of(BOTH)}
    assert (
        "unknown provider 'anthropc' — did you mean 'anthropic'?" in said["accounts.team.provider"]
    )
    assert said["budgets[1].scope"] == "budget scope 'host:box9' names no host (known: local)"
    assert "unknown repository 'ap' — did you mean 'app'?" in said["agents[0].repo"]
    assert "did you mean 'coder'?" in said["agents[2].talks_to[0]"]


def test_an_entry_taken_out_keeps_the_later_entries_on_their_own_lines() -> None:
    """The first agent lacks its name (taken out whole): the second's unknown repository
    is still reported on its own line and index, and nobody is told 'a' is unknown."""
    text = (
        "repos:\n  app:\n    url: https://github.com/acme/app.git\n"
        "agents:\n  - runtime: stub\n    repo: app\n  - name: b\n    runtime: stub\n"
        "    repo: ap\n"
    )
    assert [(p.line, p.key_path) for p in problems_of(text)] == [
        (5, "agents[0].name"),
        (9, "agents[1].repo"),
    ]


def test_a_repository_whose_entry_failed_is_not_said_to_be_missing() -> None:
    """A repository with no url (required) is taken out; the agent naming it is not told
    there is no such repository: only the repository's own problem is said."""
    text = "repos:\n  app:\n    forge: gh\nagents:\n  - name: a\n    runtime: stub\n    repo: app\n"
    problems = problems_of(text)
    assert [p.key_path for p in problems] == ["repos.app.url"]


def test_a_roster_file_s_entries_are_checked_across_the_config_too(tmp_path: Path) -> None:
    """A roster file with a refused setting: an agent's budget-free cross-reference (its
    host) is still checked, on the roster file's line."""
    (tmp_path / "roster.yaml").write_text(
        "- name: a\n  runtime: stub\n  restart: maybe\n- name: b\n  runtime: stub\n  host: box9\n"
    )
    problems = problems_of("agents: roster.yaml\n", tmp_path)
    assert [(p.file, p.line, p.key_path) for p in problems] == [
        ("roster.yaml", 3, "agents[0].restart"),
        ("roster.yaml", 6, "agents[1].host"),
    ]


def test_check_config_prints_both_kinds_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fleetwarden check-config` prints the schema's problems and the cross-references'
    in one run, by line, and exits with the config error status."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(BOTH)
    with pytest.raises(SystemExit) as exited:
        main(["check-config", "--config", str(config)])
    assert exited.value.code == EXIT_CONFIG
    printed = capsys.readouterr().err
    lines = [line for line in printed.splitlines() if line.startswith(str(config))]
    assert [line.split(": ")[1] for line in lines] == [
        "log_level",
        "repos.lib.merge",
        "accounts.team.provider",
        "budgets[0].window",
        "budgets[1].scope",
        "agents[0].repo",
        "agents[1].restart",
        "agents[2].talks_to[0]",
    ]
