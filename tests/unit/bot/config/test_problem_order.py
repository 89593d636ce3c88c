"""Tests for the order `check-config` prints problems in: by file and line, whichever
check found them first."""

from __future__ import annotations

from bot.config.checks.problems import in_line_order


def test_problems_are_printed_by_file_and_line() -> None:
    """A forge's problem on line 19 found before two repositories' on lines 6 and 7 prints
    after them; another file's follow its own; lines naming no line come last, as found."""
    found = [
        "forge.yaml:19: forges.hub.token_env: GH_TOKEN is not set",
        "egress name pypi.example does not resolve",
        "forge.yaml:7: repos.lib.url: /srv/lib does not exist",
        "agents.yaml:3: agents[0].repo: no repository named ap",
        "forge.yaml:6: repos.app.url: /srv/app is no git repository",
        "forge.yaml:7: repos.lib.token_env: LIB_TOKEN is not set",
    ]
    assert in_line_order(found) == [
        "forge.yaml:6: repos.app.url: /srv/app is no git repository",
        "forge.yaml:7: repos.lib.url: /srv/lib does not exist",
        "forge.yaml:7: repos.lib.token_env: LIB_TOKEN is not set",
        "forge.yaml:19: forges.hub.token_env: GH_TOKEN is not set",
        "agents.yaml:3: agents[0].repo: no repository named ap",
        "egress name pypi.example does not resolve",
    ]
