"""The concurrency caps in the config file: `limits.max_running`, `max_running` on an account
and on a budget — accepted as positive whole numbers, refused clearly otherwise."""

from __future__ import annotations

import pytest

from bot.commands.handlers.launches.spawn_queue import caps_of
from fleet.caps import Caps
from tests.unit.bot.config.test_config import only_problem, parse

ACCOUNT = "accounts:\n  claude-max:\n    kind: api_key\n    provider: anthropic\n    key_env: K\n"
BUDGET = "budgets:\n  - scope: group:backend\n    limit_tokens: 5000\n    window: 5h\n"
GROUPS = "groups:\n  backend:\n    agents: [coder-1]\n"


def test_the_three_caps_are_read() -> None:
    """Each cap is read where it is written and becomes the queue's Caps; none is set by
    default."""
    config = parse(
        "limits:\n  max_running: 4\n"
        + ACCOUNT
        + "    max_running: 2\n"
        + GROUPS
        + BUDGET
        + "    max_running: 1\n"
    )
    assert config.document.limits.max_running == 4
    assert config.document.accounts["claude-max"].max_running == 2
    assert config.document.budgets[0].max_running == 1
    assert caps_of(config) == Caps(
        max_running=4, accounts={"claude-max": 2}, scopes={"group:backend": 1}
    )
    bare = parse("")
    assert bare.document.limits.max_running is None
    assert caps_of(bare) == Caps() and not caps_of(bare)


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("limits:\n  max_running: 0\n", "limits.max_running",
         "must be greater than 0, found an integer (0)"),
        ("limits:\n  max_running: two\n", "limits.max_running",
         "expected a whole number, found a string ('two')"),
        ("limits:\n  max_runing: 2\n", "limits.max_runing",
         "unknown key 'max_runing' — did you mean 'max_running'? allowed: max_running"),
        (ACCOUNT + "    max_running: -1\n", "accounts.claude-max.max_running",
         "must be greater than 0, found an integer (-1)"),
        (GROUPS + BUDGET + "    max_running: 1.5\n", "budgets[0].max_running",
         "expected a whole number, found a number (1.5)"),
    ],
)  # fmt: skip
def test_a_cap_must_be_a_positive_whole_number(text: str, path: str, message: str) -> None:
    """Zero, negatives, words, fractions and misspellings are refused, each where written."""
    problem = only_problem(text)
    assert (problem.key_path, problem.message) == (path, message)
