"""Tests for fleet.agents.roster's watchdog keys (class, autostart, restart, timeouts, argv), the
matching `defaults`, and a roster kept in its own file (`agents: roster.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import (
    Config,
    ConfigError,
    ConfigProblem,
    Defaults,
    Offered,
    load_config,
    parse_config,
)
from fleet.agents.restart_settings import RESTART_MODES, RestartSettings
from fleet.model import AgentSpec, RestartMode, RestartPolicy

FILE = "fleetwarden.yaml"
RUNTIMES = ("stub", "command")


def parse(text: str, base_dir: Path = Path("/srv/fw"), **kwargs: Any) -> Config:
    kwargs.setdefault("offered", Offered(RUNTIMES))
    return parse_config(text, FILE, base_dir=base_dir, **kwargs)


def problems_of(text: str, base_dir: Path = Path("/srv/fw"), **kwargs: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, base_dir, **kwargs)
    return list(caught.value.problems)


def only_problem(text: str, **kwargs: Any) -> ConfigProblem:
    problems = problems_of(text, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


def specs(config: Config) -> list[AgentSpec]:
    return [agent.to_spec(config.defaults) for agent in config.agents]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- The new keys ------------------------------------------------------------------------------


def test_every_new_key_reaches_the_spec() -> None:
    """class, autostart, restart, heartbeat_timeout, timeout and argv fill the AgentSpec."""
    config = parse(
        "agents:\n"
        "  - name: boss\n"
        "    class: orchestrator\n"
        "    autostart: true\n"
        "    restart:\n"
        "      mode: on-failure\n"
        "      max_restarts: 7\n"
        "      backoff_initial: 2\n"
        "      backoff_max: 90.5\n"
        "    heartbeat_timeout: 45\n"
        "    timeout: 3600\n"
        "  - name: tool\n"
        "    runtime: command\n"
        "    argv: [python3, -m, mybot, '']\n"
    )
    boss, tool = specs(config)
    assert (boss.role, boss.autostart, boss.heartbeat_timeout, boss.timeout, boss.argv) == (
        "orchestrator",
        True,
        45.0,
        3600.0,
        (),
    )
    assert boss.restart == RestartPolicy(RestartMode.ON_FAILURE, 7, 2.0, 90.5)
    assert (tool.runtime, tool.argv) == ("command", ("python3", "-m", "mybot", ""))


def test_an_entry_without_the_new_keys_gets_the_model_defaults() -> None:
    """Unset: no class, no autostart, restart never, timeouts None (the fleet default later)."""
    (spec,) = specs(parse("agents:\n  - name: a\n"))
    assert spec == AgentSpec(name=spec.name, runtime="stub", backend="subprocess")
    assert spec.restart == RestartPolicy()
    assert (spec.role, spec.autostart, spec.heartbeat_timeout, spec.timeout) == (
        None,
        False,
        None,
        None,
    )


def test_defaults_have_the_watchdog_settings() -> None:
    """defaults: heartbeat 120 s, watchdog every 30 s, restart never — all settable."""
    assert parse("").defaults == Defaults()
    defaults = Defaults()
    assert (defaults.heartbeat_timeout_seconds, defaults.watchdog_interval_seconds) == (120, 30)
    assert defaults.restart.over(defaults.restart) == RestartPolicy(mode=RestartMode.NEVER)
    config = parse(
        "defaults:\n  heartbeat_timeout_seconds: 300\n  watchdog_interval_seconds: 5\n"
        "  restart: always\n"
    )
    assert (
        config.defaults.heartbeat_timeout_seconds,
        config.defaults.watchdog_interval_seconds,
    ) == (
        300,
        5,
    )
    assert config.defaults.restart.mode == "always"


def test_restart_written_as_a_mode_alone() -> None:
    """`restart: always` is `restart: {mode: always}`."""
    (spec,) = specs(parse("agents:\n  - name: a\n    restart: always\n"))
    assert spec.restart == RestartPolicy(mode=RestartMode.ALWAYS)


def test_agent_without_restart_takes_defaults_restart() -> None:
    """An entry that sets no restart gets defaults.restart whole."""
    config = parse(
        "agents:\n  - name: a\n"
        "defaults:\n  restart: {mode: on-failure, max_restarts: 2, backoff_max: 20}\n"
    )
    assert specs(config)[0].restart == RestartPolicy(RestartMode.ON_FAILURE, 2, 5.0, 20.0)


def test_restart_keys_left_out_come_from_defaults_restart() -> None:
    """Written keys win key by key; the others (mode included) come from defaults.restart."""
    config = parse(
        "agents:\n"
        "  - name: a\n    restart: always\n"
        "  - name: b\n    restart: {backoff_initial: 10}\n"
        "defaults:\n  restart: {mode: on-failure, max_restarts: 3, backoff_max: 900}\n"
    )
    a, b = specs(config)
    assert a.restart == RestartPolicy(RestartMode.ALWAYS, 3, 5.0, 900.0)
    assert b.restart == RestartPolicy(RestartMode.ON_FAILURE, 3, 10.0, 900.0)


def test_restart_mode_names_are_the_model_modes() -> None:
    """The schema's restart modes are exactly RestartMode's values."""
    assert tuple(mode.value for mode in RestartMode) == RESTART_MODES
    assert RestartSettings().over(RestartSettings()) == RestartPolicy()


# --- Problems: named by agent, key and line -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [
        (
            "agents:\n  - name: a\n  - name: b\n    restart:\n      mode: always\n"
            "      max_restarts: 101\n",
            6,
            "agents[1].restart.max_restarts",
            "must be at most 100, found an integer (101)",
        ),
        (
            "agents:\n  - name: a\n    restart: sometimes\n",
            3,
            "agents[0].restart",
            "unknown restart mode 'sometimes'; allowed: never, on-failure, always",
        ),
        (
            "agents:\n  - name: a\n    restart: {mode: on-falure}\n",
            3,
            "agents[0].restart.mode",
            "unknown mode 'on-falure' — did you mean 'on-failure'? allowed: never, on-failure, "
            "always",
        ),
        (
            "agents:\n  - name: a\n    restart: 3\n",
            3,
            "agents[0].restart",
            "expected one of never, on-failure, always, or a mapping with mode, max_restarts, "
            "backoff_initial and backoff_max; found an integer (3)",
        ),
        (
            "agents:\n  - name: a\n    restart: {max_restarts: -1}\n",
            3,
            "agents[0].restart.max_restarts",
            "must be at least 0, found an integer (-1)",
        ),
        (
            "agents:\n  - name: a\n    restart: {backoff_initial: 0}\n",
            3,
            "agents[0].restart.backoff_initial",
            "must be greater than 0, found an integer (0)",
        ),
        (
            "agents:\n  - name: a\n    restart:\n      backoff_initial: 10\n      backoff_max: 5\n",
            3,
            "agents[0].restart",
            "backoff_max (5) must be at least backoff_initial (10)",
        ),
        (
            "agents:\n  - name: a\n    restart: {mode: always, tries: 3}\n",
            3,
            "agents[0].restart.tries",
            "unknown key 'tries'; allowed: mode, max_restarts, backoff_initial, backoff_max",
        ),
        (
            "agents:\n  - name: a\n    heartbeat_timeout: 0\n",
            3,
            "agents[0].heartbeat_timeout",
            "must be greater than 0, found an integer (0)",
        ),
        (
            "agents:\n  - name: a\n    timeout: 10m\n",
            3,
            "agents[0].timeout",
            "expected a number, found a string ('10m')",
        ),
        (
            "agents:\n  - name: a\n    timeout: .inf\n",
            3,
            "agents[0].timeout",
            "must be a finite number of seconds, found .inf",
        ),
        (
            "agents:\n  - name: a\n    heartbeat_timeout: true\n",
            3,
            "agents[0].heartbeat_timeout",
            "expected a number, found a boolean (true)",
        ),
        (
            "agents:\n  - name: a\n    class: " + "x" * 65 + "\n",
            3,
            "agents[0].class",
            "must be at most 64 characters, found 65",
        ),
        (
            "agents:\n  - name: a\n    class: ' '\n",
            3,
            "agents[0].class",
            "must not be empty: give a role or leave it out",
        ),
        (
            'agents:\n  - name: a\n    class: "coder\\nreviewer"\n',
            3,
            "agents[0].class",
            "must be one line of text, without control characters",
        ),
        (
            "agents:\n  - name: a\n    autostart: 'yes'\n",
            3,
            "agents[0].autostart",
            "expected true or false, found a string ('yes')",
        ),
        (
            "defaults:\n  watchdog_interval_seconds: 4\n",
            2,
            "defaults.watchdog_interval_seconds",
            "must be at least 5, found an integer (4)",
        ),
        (
            "defaults:\n  watchdog_interval_seconds: 3601\n",
            2,
            "defaults.watchdog_interval_seconds",
            "must be at most 3600, found an integer (3601)",
        ),
        (
            "defaults:\n  heartbeat_timeout_seconds: 0\n",
            2,
            "defaults.heartbeat_timeout_seconds",
            "must be greater than 0, found an integer (0)",
        ),
        (
            "defaults:\n  restart: bogus\n",
            2,
            "defaults.restart",
            "unknown restart mode 'bogus'; allowed: never, on-failure, always",
        ),
    ],
)
def test_bad_values_are_reported_at_agent_key_and_line(
    text: str, line: int, path: str, message: str
) -> None:
    """Each invalid new key is one problem on its line, with its key path and plain words."""
    assert only_problem(text) == ConfigProblem(FILE, line, path, message)


def test_problem_prints_as_file_line_agent_key_message() -> None:
    """The printed problem names the file, line, agent index and key."""
    problem = only_problem(
        "agents:\n  - name: a\n  - name: b\n    restart: {mode: always, max_restarts: 500}\n"
    )
    assert str(problem) == (
        "fleetwarden.yaml:4: agents[1].restart.max_restarts: must be at most 100, "
        "found an integer (500)"
    )


# --- argv and the command runtime -----------------------------------------------------------------


def test_command_runtime_requires_argv() -> None:
    """runtime: command without argv is reported at argv, naming the agent."""
    problem = only_problem("agents:\n  - name: tool\n    runtime: command\n")
    assert (problem.line, problem.key_path) == (2, "agents[0].argv")
    assert problem.message.startswith("agent 'tool' has runtime 'command', which needs argv")


def test_command_runtime_refuses_empty_argv_and_empty_program() -> None:
    """argv: [] is as missing; an empty program (argv[0]) is refused."""
    empty = only_problem("agents:\n  - name: tool\n    runtime: command\n    argv: []\n")
    assert (empty.line, empty.key_path) == (4, "agents[0].argv")
    assert "needs argv" in empty.message
    blank = only_problem("agents:\n  - name: tool\n    runtime: command\n    argv: ['']\n")
    assert blank.message == "agent 'tool': argv[0], the program to run, must not be empty"


@pytest.mark.parametrize(
    ("runtime", "shown"), [("    runtime: stub\n", "is 'stub'"), ("", "is not set here")]
)
def test_argv_is_refused_for_other_runtimes(runtime: str, shown: str) -> None:
    """argv with any runtime but command (or none written) names the agent and the fix."""
    problem = only_problem(f"agents:\n  - name: a\n{runtime}    argv: [ls]\n")
    assert problem.key_path == "agents[0].argv"
    assert problem.message == (
        f"agent 'a': argv is only for runtime 'command', and its runtime {shown}; "
        "set runtime: command or remove argv"
    )


def test_argv_items_must_be_strings() -> None:
    """A number in argv is reported at its index with the quoting hint."""
    problem = only_problem("agents:\n  - name: a\n    runtime: command\n    argv: [sleep, 5]\n")
    assert (problem.key_path, problem.message) == (
        "agents[0].argv[1]",
        'expected a string, found an integer (5); put it in quotes to keep it as text: "5"',
    )


def test_argv_check_waits_for_a_valid_runtime() -> None:
    """With an unknown runtime, only the runtime is reported, not argv as well."""
    problem = only_problem("agents:\n  - name: a\n    runtime: comand\n    argv: [ls]\n")
    assert problem.key_path == "agents[0].runtime"


# --- A roster in its own file ---------------------------------------------------------------------


ROSTER = """\
- name: coder-1
  class: coder
  workdir: work
  restart: on-failure
- name: reviewer
  class: reviewer
"""


def test_agents_may_name_a_roster_file(tmp_path: Path) -> None:
    """`agents: PATH` loads the list from that file, relative to the config file's directory;
    relative paths inside it resolve against the roster file's own directory."""
    write(tmp_path / "team" / "roster.yaml", ROSTER)
    (tmp_path / "team" / "work").mkdir()
    config = parse("agents: team/roster.yaml\n", base_dir=tmp_path)
    assert [(a.name, a.role) for a in config.agents] == [
        ("coder-1", "coder"),
        ("reviewer", "reviewer"),
    ]
    assert config.agents[0].workdir == tmp_path / "team" / "work"
    assert specs(config)[0].restart.mode is RestartMode.ON_FAILURE


def test_load_config_resolves_the_roster_against_the_config_dir(tmp_path: Path) -> None:
    """Through load_config, the roster path is relative to the config file, not the cwd."""
    write(tmp_path / "etc" / "agents.yaml", "- name: a\n")
    path = write(tmp_path / "etc" / "fw.yaml", "agents: agents.yaml\n")
    assert [a.name for a in load_config(path, {}, cwd=Path("/")).agents] == ["a"]


def test_roster_path_expands_home(tmp_path: Path) -> None:
    """A leading ~ in the roster path uses the HOME passed in."""
    write(tmp_path / "r.yaml", "- name: a\n")
    config = parse("agents: ~/r.yaml\n", home=str(tmp_path))
    assert [a.name for a in config.agents] == ["a"]


def test_empty_roster_file_means_no_agents(tmp_path: Path) -> None:
    """An empty roster file (or only comments) is an empty roster."""
    write(tmp_path / "roster.yaml", "# nobody yet\n")
    assert parse("agents: roster.yaml\n", base_dir=tmp_path).agents == ()


def test_roster_file_problems_name_that_file_and_its_lines(tmp_path: Path) -> None:
    """Problems in the roster file are reported against it (as the path was written, next
    to the config file), on its own lines, with agents[i] key paths; the config file's own
    problems come first."""
    write(
        tmp_path / "team" / "roster.yaml",
        "- name: a\n"
        "- name: b\n"
        "  restart:\n"
        "    mode: always\n"
        "    max_restarts: 101\n"
        "- name: a\n"
        "  runtime: command\n",
    )
    problems = problems_of("log_level: loud\nagents: team/roster.yaml\n", base_dir=tmp_path)
    assert [(p.file, p.line, p.key_path) for p in problems] == [
        (FILE, 1, "log_level"),
        ("team/roster.yaml", 5, "agents[1].restart.max_restarts"),
        ("team/roster.yaml", 6, "agents[2].argv"),
        ("team/roster.yaml", 6, "agents[2].name"),
    ]
    assert str(problems[1]) == (
        "team/roster.yaml:5: agents[1].restart.max_restarts: must be at most 100, "
        "found an integer (101)"
    )
    assert problems[3].message == (
        "duplicate agent name 'a': agents[0].name on line 1 already has it"
    )


def test_roster_file_relying_on_an_unavailable_default_runtime(tmp_path: Path) -> None:
    """The cross-entry checks report against the roster file too."""
    write(tmp_path / "roster.yaml", "- name: a\n  runtime: command\n  argv: [ls]\n- name: b\n")
    problem = only_problem(
        "agents: roster.yaml\n", base_dir=tmp_path, offered=Offered(("command",))
    )
    assert (problem.file, problem.line, problem.key_path) == ("roster.yaml", 4, "agents[1]")
    assert problem.message.startswith("no runtime set, and the default runtime 'stub'")


def test_roster_file_duplicate_keys_are_reported_under_agents(tmp_path: Path) -> None:
    """A key set twice in a roster entry is reported with its agents[i] path."""
    write(tmp_path / "roster.yaml", "- name: a\n  model: x\n  model: y\n")
    problem = only_problem("agents: roster.yaml\n", base_dir=tmp_path)
    assert (problem.file, problem.line, problem.key_path) == ("roster.yaml", 3, "agents[0].model")
    assert problem.message.startswith("duplicate key 'model': already set on line 2")


def test_absolute_roster_path_is_shown_absolute(tmp_path: Path) -> None:
    """A roster named by an absolute path is reported under that path."""
    roster = write(tmp_path / "r.yaml", "- name: Bad\n")
    problem = only_problem(f"agents: {roster}\n")
    assert (problem.file, problem.line, problem.key_path) == (str(roster), 1, "agents[0].name")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "roster file '{dir}/roster.yaml' does not exist"),
        ("directory", "roster file '{dir}/roster.yaml' is not a regular file"),
        ("binary", "cannot read roster file '{dir}/roster.yaml': not UTF-8 text (bad byte"),
    ],
)
def test_unreadable_roster_file_is_reported_at_the_agents_key(
    tmp_path: Path, setup: str, message: str
) -> None:
    """A roster file that is missing, a directory or not text: one problem at `agents:`."""
    target = tmp_path / "roster.yaml"
    if setup == "directory":
        target.mkdir()
    elif setup == "binary":
        target.write_bytes(b"- name: \xff\n")
    problem = only_problem("log_level: info\nagents: roster.yaml\n", base_dir=tmp_path)
    assert (problem.file, problem.line, problem.key_path) == (FILE, 2, "agents")
    assert problem.message.startswith(message.format(dir=tmp_path))


def test_roster_file_with_broken_yaml_reports_its_line(tmp_path: Path) -> None:
    """YAML errors in the roster file name that file and line."""
    write(tmp_path / "roster.yaml", "- name: a\n  runtime: stub\n runtime: x\n")
    problem = only_problem("agents: roster.yaml\n", base_dir=tmp_path)
    assert (problem.file, problem.line) == ("roster.yaml", 3)
    assert problem.message.startswith("invalid YAML")


def test_roster_file_must_hold_a_list(tmp_path: Path) -> None:
    """A roster file whose top level is not a list says what it should be."""
    write(tmp_path / "roster.yaml", "agents:\n  - name: a\n")
    problem = only_problem("agents: roster.yaml\n", base_dir=tmp_path)
    assert problem == ConfigProblem(
        "roster.yaml",
        1,
        "",
        "a roster file must be a list of agents (- name: ...), found a mapping",
    )


def test_empty_roster_path_is_refused() -> None:
    """`agents: ''` is neither a list nor a path."""
    problem = only_problem("agents: ''\n")
    assert (problem.line, problem.key_path) == (1, "agents")
    assert problem.message == "expected a list of agents or the path of a roster file, found ''"


def test_roster_path_with_tilde_but_no_home_is_refused() -> None:
    """~ in the roster path without a HOME is reported at `agents:`."""
    problem = only_problem("agents: ~/r.yaml\n")
    assert problem.message == "cannot expand '~' because HOME is not set: write the full path"


def test_an_agent_inheriting_the_command_runtime_needs_argv() -> None:
    """`defaults.runtime: command` with an agent that has no argv is refused at load."""
    from tests.unit.bot.config.test_config import only_problem

    problem = only_problem(
        "defaults:\n  runtime: command\nagents:\n  - name: job\n",
        offered=Offered(("stub", "command")),
    )
    assert problem.line == 4 and problem.key_path == "agents[0]"
    assert "needs argv" in problem.message
