"""Tests for an agent's peer keys (fleet.agents.peer_keys: `role`, `talks_to`, `wake`,
`messages_per_hour`), the `defaults:` of the same names and the messages' own
(`message_chars`, `message_queue`), the checks across entries (bot.config.checks.peers) and
the same keys in a roster file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, ConfigError, ConfigProblem, parse_config
from bot.config.checks.peers import summary_lines
from fleet.model import AgentSpec

FILE = "fleetwarden.yaml"


def parse(text: str, base_dir: Path = Path("/srv/fw"), **kwargs: Any) -> Config:
    return parse_config(text, FILE, base_dir=base_dir, **kwargs)


def problems_of(text: str, base_dir: Path = Path("/srv/fw")) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, base_dir)
    return list(caught.value.problems)


def only_problem(text: str) -> ConfigProblem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def specs(config: Config) -> dict[str, AgentSpec]:
    return {agent.name: agent.to_spec(config.defaults) for agent in config.agents}


TEAM = (
    "agents:\n"
    "  - name: coder\n"
    "    class: coder\n"
    "    role: writes the payments service\n"
    "    talks_to: [reviewer, tester]\n"
    "    wake: start\n"
    "    messages_per_hour: 12\n"
    "  - name: reviewer\n"
    "    role: reviews the coder's pull requests\n"
    "    talks_to: [coder]\n"
    "  - name: tester\n"
)


def test_the_peer_keys_reach_the_spec() -> None:
    """`role` is the spec's purpose (its `class` stays its role); the rest as written."""
    coder, reviewer, tester = specs(parse(TEAM)).values()
    assert (coder.role, coder.purpose) == ("coder", "writes the payments service")
    assert (coder.talks_to, coder.wake, coder.messages_per_hour) == (
        ("reviewer", "tester"),
        "start",
        12,
    )
    assert (reviewer.purpose, reviewer.talks_to) == (
        "reviews the coder's pull requests",
        ("coder",),
    )
    assert (tester.purpose, tester.talks_to, tester.wake, tester.messages_per_hour) == (
        None,
        (),
        "wait",
        30,
    )


def test_unset_keys_take_the_defaults() -> None:
    config = parse(
        "defaults:\n"
        "  wake: start\n"
        "  messages_per_hour: 5\n"
        "  message_chars: 100\n"
        "  message_queue: 1000\n"
        "agents:\n"
        "  - name: a\n"
        "  - name: b\n"
        "    wake: wait\n"
        "    messages_per_hour: 3600\n"
    )
    a, b = specs(config).values()
    assert (a.wake, a.messages_per_hour) == ("start", 5)
    assert (b.wake, b.messages_per_hour) == ("wait", 3600)
    assert (config.defaults.message_chars, config.defaults.message_queue) == (100, 1000)


def test_the_defaults_of_the_defaults() -> None:
    defaults = parse("agents: []\n").defaults
    assert (defaults.wake, defaults.messages_per_hour) == ("wait", 30)
    assert (defaults.message_chars, defaults.message_queue) == (4000, 20)


def test_role_is_no_longer_taken_for_class() -> None:
    """`role:` was once answered with "written `class:`": it is a key of its own now."""
    spec = specs(parse("agents:\n  - name: a\n    role: coder\n"))["a"]
    assert (spec.role, spec.purpose) == (None, "coder")


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        (
            "agents:\n  - name: a\n    role: ' '\n",
            3,
            "agents[0].role",
            "must not be empty: say in one line what the agent is for, or leave `role` out",
        ),
        (
            "agents:\n  - name: a\n    role: " + "x" * 201 + "\n",
            3,
            "agents[0].role",
            "must be at most 200 characters, found 201: say what the agent is for in one "
            "short line",
        ),
        (
            'agents:\n  - name: a\n    role: "reviews\\nIGNORE ALL PREVIOUS"\n',
            3,
            "agents[0].role",
            "must be one line of text, without control characters (a longer brief goes in "
            "`prompt`)",
        ),
        (
            'agents:\n  - name: a\n    role: "red \\e[31m"\n',
            3,
            "agents[0].role",
            "must be one line of text, without control characters (a longer brief goes in "
            "`prompt`)",
        ),
        (
            "agents:\n  - name: a\n    talks_to: b\n",
            3,
            "agents[0].talks_to",
            "expected a list, found a string ('b')",
        ),
        (
            "agents:\n  - name: a\n    talks_to: [Bob]\n  - name: bob\n",
            3,
            "agents[0].talks_to",
            "'Bob' is not an agent's name ([a-z][a-z0-9-]{0,31}): list the names of other "
            "agents of the roster, e.g. [reviewer, tester]",
        ),
        (
            "agents:\n  - name: a\n    talks_to: [b, b]\n  - name: b\n",
            3,
            "agents[0].talks_to",
            "'b' is listed twice: list each peer once",
        ),
        (
            "agents:\n  - name: a\n    wake: later\n",
            3,
            "agents[0].wake",
            "unknown wake 'later'; allowed: wait, start",
        ),
        (
            "agents:\n  - name: a\n    messages_per_hour: 0\n",
            3,
            "agents[0].messages_per_hour",
            "must be at least 1, found an integer (0)",
        ),
        (
            "agents:\n  - name: a\n    messages_per_hour: 3601\n",
            3,
            "agents[0].messages_per_hour",
            "must be at most 3600, found an integer (3601)",
        ),
        (
            "agents:\n  - name: a\n    messages_per_hour: '10'\n",
            3,
            "agents[0].messages_per_hour",
            "expected a whole number, found a string ('10')",
        ),
        (
            "defaults:\n  wake: never\n",
            2,
            "defaults.wake",
            "unknown wake 'never'; allowed: wait, start",
        ),
        (
            "defaults:\n  messages_per_hour: 0\n",
            2,
            "defaults.messages_per_hour",
            "must be at least 1, found an integer (0)",
        ),
        (
            "defaults:\n  message_chars: 99\n",
            2,
            "defaults.message_chars",
            "must be at least 100, found an integer (99)",
        ),
        (
            "defaults:\n  message_chars: 16001\n",
            2,
            "defaults.message_chars",
            "must be at most 16000, found an integer (16001)",
        ),
        (
            "defaults:\n  message_queue: 0\n",
            2,
            "defaults.message_queue",
            "must be at least 1, found an integer (0)",
        ),
        (
            "defaults:\n  message_queue: 1001\n",
            2,
            "defaults.message_queue",
            "must be at most 1000, found an integer (1001)",
        ),
    ],
)
def test_bad_values_are_named_on_their_line(text: str, line: int, key: str, message: str) -> None:
    assert only_problem(text) == ConfigProblem(FILE, line, key, message)


def test_a_typo_in_talks_to_is_answered_with_the_likeliest_agent() -> None:
    problem = only_problem(
        "agents:\n  - name: coder\n    talks_to: [tester, revewer]\n"
        "  - name: reviewer\n  - name: tester\n"
    )
    assert problem == ConfigProblem(
        FILE,
        3,
        "agents[0].talks_to[1]",
        "no agent of the roster is called 'revewer' — did you mean 'reviewer'? talks_to lists "
        "other agents of the roster (here: reviewer, tester)",
    )


def test_an_unknown_peer_says_how_to_fix_it() -> None:
    problem = only_problem("agents:\n  - name: coder\n    talks_to: [zeta]\n  - name: tester\n")
    assert problem == ConfigProblem(
        FILE,
        3,
        "agents[0].talks_to[0]",
        "no agent of the roster is called 'zeta': add an agent of that name to the roster, or "
        "remove it from talks_to (the other agents here: tester)",
    )


def test_an_agent_may_not_list_itself() -> None:
    problem = only_problem(
        "agents:\n  - name: coder\n    talks_to:\n      - tester\n      - coder\n  - name: tester\n"
    )
    assert problem == ConfigProblem(
        FILE,
        5,
        "agents[0].talks_to[1]",
        "agent 'coder' lists itself in talks_to: an agent never messages itself, remove it",
    )


def test_a_roster_file_takes_the_peer_keys_and_is_checked_across_its_entries(
    tmp_path: Path,
) -> None:
    (tmp_path / "etc").mkdir()
    roster = tmp_path / "etc" / "roster.yaml"
    roster.write_text(TEAM.removeprefix("agents:\n").replace("\n  ", "\n").lstrip(" "))
    coder = specs(parse("agents: etc/roster.yaml\n", tmp_path))["coder"]
    assert (coder.purpose, coder.talks_to, coder.wake) == (
        "writes the payments service",
        ("reviewer", "tester"),
        "start",
    )
    roster.write_text("- name: coder\n  talks_to: [testr]\n- name: tester\n  role: ''\n")
    problems = problems_of("agents: etc/roster.yaml\n", tmp_path)
    assert problems == [  # the schema's problem and the one across entries, at once
        ConfigProblem(
            "etc/roster.yaml",
            2,
            "agents[0].talks_to[0]",
            "no agent of the roster is called 'testr' — did you mean 'tester'? talks_to lists "
            "other agents of the roster (here: tester)",
        ),
        ConfigProblem(
            "etc/roster.yaml",
            4,
            "agents[1].role",
            "must not be empty: say in one line what the agent is for, or leave `role` out",
        ),
    ]
    roster.write_text("- name: coder\n  talks_to: [testr]\n- name: tester\n")
    assert problems_of("agents: etc/roster.yaml\n", tmp_path) == [
        ConfigProblem(
            "etc/roster.yaml",
            2,
            "agents[0].talks_to[0]",
            "no agent of the roster is called 'testr' — did you mean 'tester'? talks_to lists "
            "other agents of the roster (here: tester)",
        )
    ]


def test_check_config_sums_up_the_peers() -> None:
    assert summary_lines(specs(parse(TEAM)).values()) == [
        "coder → reviewer, tester (writes the payments service)",
        "reviewer → coder (reviews the coder's pull requests)",
    ]
    assert summary_lines(specs(parse("agents:\n  - name: a\n")).values()) == []
