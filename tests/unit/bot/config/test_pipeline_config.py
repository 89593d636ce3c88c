"""Tests for the `pipelines:` section (fleet.pipelines.schema): stages with an agent
or a role, `after:` edges (the stage before by default), gates, and the problems across
the section told with their line: an unknown agent or role (with the likeliest one meant),
an `after:` naming no stage, a loop, an empty check, a check on a stage whose agent is on
another host or has no sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, ConfigError, ConfigProblem, parse_config
from fleet.pipelines.schema import CheckGate, gate_words, ordered

FILE = "fleetwarden.yaml"
AGENTS = "agents:\n  - name: planner\n  - name: coder\n  - name: checker\n    class: reviewer\n"


def parse(text: str) -> Config:
    return parse_config(AGENTS + text, FILE, base_dir=Path("/srv/fw"))


def only_problem(text: str) -> ConfigProblem:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    problems = list(caught.value.problems)
    assert len(problems) == 1, problems
    return problems[0]


SHIP = (
    "pipelines:\n"
    "  ship:\n"
    "    stages:\n"
    "      plan:   {agent: planner}\n"
    "      code:   {agent: coder, after: [plan], gate: {check: [make, test]}}\n"
    "      review: {role: reviewer, after: [code], gate: approve}\n"
)


def test_the_briefs_pipeline_is_read_as_written() -> None:
    """Each stage keeps its doer, its edges and its gate; `auto` is the default gate."""
    ship = parse(SHIP).document.pipelines["ship"]
    assert list(ship.stages) == ["plan", "code", "review"]
    assert ship.edges() == {"plan": (), "code": ("plan",), "review": ("code",)}
    gates = [gate_words(stage.gate) for stage in ship.stages.values()]
    assert gates == ["auto", "check: make test", "approve"]
    assert ship.stages["review"].doer == "role reviewer"


def test_after_defaults_to_the_stage_before_and_a_string_check_is_split() -> None:
    """Without `after:` a stage waits for the one listed before it; a check written as a
    string is split into words as a shell would, never given to one."""
    ship = parse(
        "pipelines:\n"
        "  ship:\n"
        "    stages:\n"
        "      plan: {agent: planner}\n"
        "      code: {agent: coder, gate: {check: \"sh -c 'exit 0; rm -rf /'\"}}\n"
    ).document.pipelines["ship"]
    assert ship.edges() == {"plan": (), "code": ("plan",)}
    gate = ship.stages["code"].gate
    assert isinstance(gate, CheckGate)
    assert gate.check == ("sh", "-c", "exit 0; rm -rf /")


def test_an_unknown_agent_is_told_with_its_line_and_the_likeliest_one_meant() -> None:
    """A stage's agent not in the roster names the line and a close name."""
    problem = only_problem(SHIP.replace("agent: coder", "agent: codr"))
    assert (problem.file, problem.line) == (FILE, 10)
    assert "'codr'" in problem.message and "did you mean 'coder'" in problem.message


def test_an_unknown_role_is_told_with_the_classes_there_are() -> None:
    """A role no agent has is told with the classes the roster has."""
    problem = only_problem(SHIP.replace("role: reviewer", "role: tester"))
    assert problem.line == 11
    assert "class 'tester'" in problem.message and "(here: reviewer)" in problem.message


def test_an_after_naming_no_stage_is_told() -> None:
    """`after:` naming no stage of the pipeline says which stages there are."""
    problem = only_problem(SHIP.replace("after: [plan]", "after: [plna]"))
    assert problem.line == 10
    assert "no stage 'plna' — did you mean 'plan'?" in problem.message


def test_a_loop_of_after_is_refused() -> None:
    """Stages waiting for each other in a loop are refused, the loop named."""
    problem = only_problem(
        SHIP.replace("plan:   {agent: planner}", "plan: {agent: planner, after: [review]}")
    )
    assert problem.line == 9
    assert "loop (plan waits for review waits for code waits for plan)" in problem.message


def test_an_empty_check_and_a_stage_with_no_doer_are_refused() -> None:
    """`check: []` needs a command; a stage needs an agent or a role."""
    assert "needs a command" in only_problem(SHIP.replace("[make, test]", "[]")).message
    problem = only_problem(SHIP.replace("{agent: planner}", "{gate: auto}"))
    assert "either `agent: NAME` or `role: CLASS`" in problem.message


def test_the_stages_are_ordered_after_what_they_wait_for() -> None:
    """The order tasks are made in puts each stage after those it waits for."""
    assert ordered({"b": ("a",), "a": (), "c": ("a", "b")}) == ["a", "b", "c"]
    assert ordered({"a": ("b",), "b": ("a",)}) is None


HOSTS = "hosts:\n  - {name: box2, ssh: fw@127.0.0.2, key_file: /k/id, known_hosts: /k/known}\n"


@pytest.mark.parametrize(
    ("agent", "line", "why"),
    [("coder", 10, "runs on host 'box2'"), ("checker", 11, "runs on host 'box2'")],
)
def test_a_check_gate_on_an_agent_on_another_host_is_refused(
    agent: str, line: int, why: str
) -> None:
    """A `check:` gate on a stage whose agent (or an agent of its class) is on an SSH host
    is refused on the gate's line, saying to use `approve` or `auto`."""
    text = SHIP.replace("gate: approve", "gate: {check: [make]}")
    with pytest.raises(ConfigError) as caught:
        parse_config(
            HOSTS
            + AGENTS.replace(f"  - name: {agent}\n", f"  - name: {agent}\n    host: box2\n")
            + text,
            FILE,
            base_dir=Path("/srv/fw"),
        )
    [problem] = caught.value.problems
    assert problem.line == line + 3 and why in problem.message
    assert f"its agent {agent!r}" in problem.message and "`gate: approve`" in problem.message


def test_a_check_gate_on_an_unsandboxed_agent_is_refused() -> None:
    """An agent with `sandbox: none` cannot have its code checked sandboxed: refused."""
    with pytest.raises(ConfigError) as caught:
        parse_config(
            AGENTS.replace("  - name: coder\n", "  - name: coder\n    sandbox: none\n") + SHIP,
            FILE,
            base_dir=Path("/srv/fw"),
        )
    problems = [p for p in caught.value.problems if "check: gate" in p.message]
    assert len(problems) == 1 and "has `sandbox: none`" in problems[0].message


def test_an_agent_on_another_host_is_fine_behind_an_auto_gate() -> None:
    """An agent on another host is fine where its stage's gate is `approve` or `auto`."""
    config = parse_config(
        HOSTS + AGENTS.replace("  - name: planner\n", "  - name: planner\n    host: box2\n") + SHIP,
        FILE,
        base_dir=Path("/srv/fw"),
    )
    assert list(config.document.pipelines) == ["ship"]
