"""Tests for bot.config (with fleet.agents.roster and connectors.console.config): YAML → Config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import (
    Config,
    ConfigError,
    ConfigFile,
    ConfigProblem,
    Defaults,
    Offered,
    Operator,
    load_config,
    parse_config,
)
from connectors.console.config import ConsoleConfig
from fleet.model import AgentSpec

FILE = "fleetwarden.yaml"


def parse(text: str, base_dir: Path = Path("/srv/fw"), **kwargs: Any) -> Config:
    return parse_config(text, FILE, base_dir=base_dir, **kwargs)


def problems_of(text: str, base_dir: Path = Path("/srv/fw"), **kwargs: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, base_dir, **kwargs)
    return list(caught.value.problems)


def only_problem(text: str, **kwargs: Any) -> ConfigProblem:
    problems = problems_of(text, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- Where the configuration comes from ----------------------------------------------------


def test_no_file_means_embedded_defaults(tmp_path: Path) -> None:
    """Without --config or FLEETWARDEN_CONFIG: console admin, the state dir owner's shell
    as the local admin, state in ./.fleetwarden."""
    config = load_config(None, {}, cwd=tmp_path)
    assert config.source is None
    assert config.state_dir == tmp_path / ".fleetwarden"
    assert config.ledger_path == tmp_path / ".fleetwarden" / "ledger.db"
    assert config.console == ConsoleConfig()
    assert config.command_prefix == "!"
    assert config.log_level == "info"
    assert config.agents == ()
    local = Operator(id="local", role="admin", connector="shell")
    assert config.operators == (local,)
    assert config.document.shell is not None and config.document.shell.as_ == "local"
    assert config.effective_operators() == (
        local,
        Operator(id="console", role="admin", connector="console"),
    )
    assert config == Config.default(tmp_path)


def test_env_var_names_the_config_file(tmp_path: Path) -> None:
    """FLEETWARDEN_CONFIG is used when no path is passed; relative to the working directory."""
    write(tmp_path / "fw.yaml", "log_level: debug\n")
    config = load_config(None, {"FLEETWARDEN_CONFIG": "fw.yaml"}, cwd=tmp_path)
    assert config.source == tmp_path / "fw.yaml"
    assert config.log_level == "debug"


def test_explicit_path_wins_over_env_var(tmp_path: Path) -> None:
    """A path passed in (--config) is used even when FLEETWARDEN_CONFIG is set."""
    path = write(tmp_path / "a.yaml", "log_level: error\n")
    config = load_config(path, {"FLEETWARDEN_CONFIG": str(tmp_path / "missing.yaml")})
    assert config.log_level == "error"


def test_empty_env_var_means_defaults(tmp_path: Path) -> None:
    """FLEETWARDEN_CONFIG set to an empty string counts as unset."""
    assert load_config(None, {"FLEETWARDEN_CONFIG": ""}, cwd=tmp_path).source is None


def test_missing_explicit_path_is_reported(tmp_path: Path) -> None:
    """A config path that does not exist is an error, never a silent fall back to defaults."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.problems == (
        ConfigProblem(
            str(path),
            None,
            "",
            "config file not found; check the path given to --config (without it, the "
            "defaults are run)",
        ),
    )
    named = tmp_path / "named.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"FLEETWARDEN_CONFIG": str(named)})
    assert str(caught.value) == (
        f"{named}: config file not found (named by FLEETWARDEN_CONFIG); pass --config PATH "
        "or unset FLEETWARDEN_CONFIG"
    )


def test_missing_env_path_says_where_it_came_from(tmp_path: Path) -> None:
    """A missing file named by FLEETWARDEN_CONFIG says the variable named it."""
    with pytest.raises(ConfigError, match=r"not found \(named by FLEETWARDEN_CONFIG\)"):
        load_config(None, {"FLEETWARDEN_CONFIG": str(tmp_path / "gone.yaml")})


def test_directory_as_config_path_is_reported(tmp_path: Path) -> None:
    """Passing a directory says so instead of raising an OSError."""
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        load_config(tmp_path, {})


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is an unreadable config, with the offending offset."""
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"log_level: \xff\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(bad byte at offset 11\)"):
        load_config(path, {})


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that cannot be read is reported with the system's reason."""
    path = write(tmp_path / "secret.yaml", "log_level: info\n")

    def refuse(self: Path, encoding: str | None = None) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    # Permissions cannot be relied on: tests may run as root, which reads anything.
    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == f"{path}: cannot read config file: Permission denied"


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "null\n"])
def test_empty_file_means_all_defaults(tmp_path: Path, text: str) -> None:
    """An empty file (or only comments, or null) is valid: every setting takes its default."""
    config = load_config(write(tmp_path / "fw.yaml", text), {})
    assert config == Config.from_document(
        ConfigFile(), source=tmp_path / "fw.yaml", base_dir=tmp_path
    )
    assert config.console == ConsoleConfig()


# --- Paths ----------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_dir(tmp_path: Path) -> None:
    """state_dir, ledger and workdir are relative to the file's directory, not the cwd."""
    (tmp_path / "etc" / "work").mkdir(parents=True)
    path = write(
        tmp_path / "etc" / "fw.yaml",
        "state_dir: ../var/state\nledger: db/l.sqlite\nagents:\n  - name: a\n    workdir: work\n",
    )
    config = load_config(path, {}, cwd=Path("/"))
    assert config.state_dir == tmp_path / "var" / "state"
    assert config.ledger_path == tmp_path / "etc" / "db" / "l.sqlite"
    assert config.agents[0].workdir == tmp_path / "etc" / "work"


def test_ledger_defaults_into_the_state_dir() -> None:
    """Without `ledger`, the database is ledger.db inside state_dir."""
    config = parse("state_dir: /var/lib/fw\n")
    assert config.state_dir == Path("/var/lib/fw")
    assert config.ledger_path == Path("/var/lib/fw/ledger.db")


def test_tilde_expands_with_the_passed_in_home() -> None:
    """A leading ~ expands with the HOME given to the loader, not the process's."""
    assert parse("state_dir: ~/fw\n", home="/home/ann").state_dir == Path("/home/ann/fw")


def test_tilde_without_home_is_reported() -> None:
    """~ with no HOME known is an error rather than a directory literally named '~'."""
    problem = only_problem("state_dir: ~/fw\n")
    assert (problem.line, problem.key_path) == (1, "state_dir")
    assert "HOME is not set" in problem.message


def test_empty_path_is_reported() -> None:
    """An empty string path is refused instead of silently meaning '.'."""
    problem = only_problem('state_dir: ""\n')
    assert problem.message == "must not be empty: give a path or leave it out"


def test_missing_workdir_is_reported(tmp_path: Path) -> None:
    """A workdir that does not exist names the resolved path and how it was resolved."""
    problem = only_problem("agents:\n  - name: a\n    workdir: nowhere\n", base_dir=tmp_path)
    assert (problem.line, problem.key_path) == (3, "agents[0].workdir")
    assert problem.message.startswith(f"directory '{tmp_path / 'nowhere'}' does not exist")
    assert "resolved against the config file's directory" in problem.message


def test_workdir_that_is_a_file_is_reported(tmp_path: Path) -> None:
    """A workdir naming a file says it is not a directory."""
    write(tmp_path / "f", "")
    problem = only_problem("agents:\n  - name: a\n    workdir: f\n", base_dir=tmp_path)
    assert "is not a directory" in problem.message


# --- YAML itself ------------------------------------------------------------------------------


def test_malformed_yaml_reports_yaml_line_column_and_reason() -> None:
    """Broken YAML that is no layout mistake is reported at YAML's own line and column,
    with what YAML said."""
    problem = only_problem("log_level: info\nagents: [a, b\nstate_dir: x\n")
    assert problem.file == FILE
    assert problem.line == 3
    assert problem.key_path == ""
    assert problem.message.startswith("invalid YAML at column ")
    assert "expected ',' or ']'" in problem.message


def test_mis_indented_key_under_a_list_item_is_reported_at_its_line() -> None:
    """A list item's key indented less than the one above it names both lines' columns."""
    problem = only_problem("log_level: info\nagents:\n  - name: a\n   runtime: stub\n")
    assert (problem.file, problem.line, problem.key_path) == (FILE, 4, "")
    assert problem.message.startswith(
        "invalid YAML: `runtime` is indented less than `name` on line 3"
    )


def test_mapping_value_in_wrong_place_is_reported() -> None:
    """What PyYAML calls 'mapping values are not allowed here' says which key to move."""
    problem = only_problem("a: b\n  c: d\n")
    assert str(problem).startswith(
        "fleetwarden.yaml:2: invalid YAML: `c` is indented more than `a` on line 1 "
        "(column 3, not 1); keys of one mapping line up: start it at column 1"
    )


def test_tab_indentation_gets_a_hint() -> None:
    """A tab where YAML wants spaces says to indent with spaces."""
    problem = only_problem("agents:\n\t- name: a\n")
    assert problem.line == 2
    assert "YAML indents with spaces only: replace the tab with spaces" in problem.message


def test_unprintable_character_is_reported_with_its_line() -> None:
    """Characters YAML refuses (NUL) are reported at their line."""
    problem = only_problem("log_level: info\nprompt: a\x00\n")
    assert (problem.line, problem.message) == (2, "invalid YAML: character #x0000 is not allowed")


def test_several_documents_are_refused() -> None:
    """A second `---` document is refused: the file is one mapping."""
    problem = only_problem("log_level: info\n---\nlog_level: debug\n")
    assert problem.line == 2
    assert "expected a single document" in problem.message


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("just text\n", "a string ('just text')"), ("42\n", "an integer")],
)
def test_top_level_must_be_a_mapping(text: str, found: str) -> None:
    """A top level that is not key: value lines is reported with what it is instead."""
    problem = only_problem(text)
    assert problem.line == 1
    assert problem.message.startswith("the top level must be a mapping of settings")
    assert found in problem.message


def test_duplicate_keys_report_both_lines() -> None:
    """A key set twice is refused (PyYAML would keep the last): the second's line, the first's."""
    problems = problems_of(
        "log_level: info\n"
        "agents:\n"
        "  - name: a\n"
        "    runtime: stub\n"
        "    runtime: stub\n"
        "log_level: debug\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (5, "agents[0].runtime"),
        (6, "log_level"),
    ]
    assert problems[0].message.startswith("duplicate key 'runtime': already set on line 4")
    assert problems[1].message.startswith("duplicate key 'log_level': already set on line 1")


def test_merge_keys_are_not_mistaken_for_duplicates() -> None:
    """YAML merges (`<<: *base`) that override a merged key are not duplicate keys."""
    config = parse(
        "agents:\n  - &base\n    name: a\n    model: m1\n"
        "  - <<: *base\n    name: b\n    model: m2\n"
    )
    assert [(a.name, a.model) for a in config.agents] == [("a", "m1"), ("b", "m2")]


# --- Schema errors, in plain words -------------------------------------------------------------


def test_unknown_key_suggests_the_closest_and_lists_allowed() -> None:
    """An unknown key names the likely intended one (difflib) and every allowed key."""
    problem = only_problem("agents:\n  - name: a\n    runtme: stub\n")
    assert str(problem) == (
        "fleetwarden.yaml:3: agents[0].runtme: unknown key 'runtme' — did you mean 'runtime'? "
        "allowed: role, talks_to, wake, messages_per_hour, mcp, skills, name, runtime, model, "
        "prompt, "
        "workdir, backend, host, repo, git_name, "
        "git_email, env, secret_env, account, fallback, class, autostart, restart, "
        "heartbeat_timeout, timeout, argv, sandbox, egress, egress_allow, run_budget, quote_under, "
        "permissions, allow, deny, approval_timeout, max_open_approvals"
    )


def test_unknown_key_without_a_close_match_lists_allowed() -> None:
    """An unknown key far from any allowed one just lists the allowed keys."""
    problem = only_problem("defaults:\n  zzz: 1\n")
    assert problem.message == (
        "unknown key 'zzz'; allowed: runtime, backend, account, stop_grace_seconds, logs_lines, "
        "send_reply_wait_seconds, heartbeat_timeout_seconds, watchdog_interval_seconds, sandbox, "
        "egress, egress_allow, run_budget, restart, permissions, allow, deny, approval_timeout, "
        "max_open_approvals, git_name, git_email, wake, messages_per_hour, message_chars, "
        "message_queue, mcp, skills"
    )


def test_unknown_connector_is_reported_as_a_connector() -> None:
    """A connector this build does not have is called an unknown connector."""
    problem = only_problem("connectors:\n  consol: {}\n")
    assert (problem.line, problem.key_path) == (2, "connectors.consol")
    assert (
        problem.message
        == "unknown connector 'consol' — did you mean 'console'? allowed: console, matrix, "
        "discord, slack, down_after_seconds"
    )


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [
        (
            "defaults:\n  logs_lines: many\n",
            2,
            "defaults.logs_lines",
            "expected a whole number, found a string ('many')",
        ),
        (
            "defaults:\n  stop_grace_seconds: yes\n",
            2,
            "defaults.stop_grace_seconds",
            "expected a number, found a boolean (true)",
        ),
        ("operators:\n  id: x\n", 1, "operators", "expected a list, found a mapping"),
        (
            "agents:\n  -\n",
            2,
            "agents[0]",
            "expected a mapping (key: value), found an empty value (null)",
        ),
        (
            "connectors:\n  console:\n    enabled: 'no'\n",
            3,
            "connectors.console.enabled",
            "expected true or false, found a string ('no')",
        ),
        (
            "operators:\n  - id: 80351110224678912\n    role: admin\n",
            2,
            "operators[0].id",
            "expected a string, found an integer (80351110224678912); put it in quotes to keep "
            'it as text: "80351110224678912"',
        ),
    ],
)
def test_wrong_types_say_expected_and_found(text: str, line: int, path: str, message: str) -> None:
    """A value of the wrong type says what was expected and what YAML produced."""
    assert only_problem(text) == ConfigProblem(FILE, line, path, message)


def test_env_value_that_yaml_made_a_number_gets_a_quote_hint() -> None:
    """`DEBUG: 1` in env is a number in YAML; the message shows how to quote it."""
    problem = only_problem("agents:\n  - name: a\n    env:\n      DEBUG: 1\n")
    assert (problem.line, problem.key_path) == (4, "agents[0].env.DEBUG")
    assert problem.message.endswith('put it in quotes to keep it as text: "1"')


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (
            "log_level: verbos\n",
            "log_level",
            "unknown log level 'verbos'; allowed: debug, info, warning, error",
        ),
        (
            "log_level: INFO\n",
            "log_level",
            "unknown log level 'INFO' — did you mean 'info'? allowed: debug, info, warning, error",
        ),
        (
            "operators:\n  - id: a\n    role: admn\n",
            "operators[0].role",
            "unknown role 'admn' — did you mean 'admin'? allowed: admin, operator, viewer",
        ),
        (
            "connectors:\n  console:\n    role: 3\n",
            "connectors.console.role",
            "expected one of admin, operator, viewer; found an integer (3)",
        ),
    ],
)
def test_bad_choices_list_what_is_allowed(text: str, path: str, message: str) -> None:
    """A value outside a fixed set lists the set, with a guess when one is close."""
    problem = only_problem(text)
    assert (problem.key_path, problem.message) == (path, message)


def test_missing_required_key_points_at_the_parent_mapping() -> None:
    """A required key that is absent is reported on the line of the mapping lacking it."""
    problems = problems_of(
        "operators:\n  - id: a\n    role: admin\n  - role: viewer\nagents:\n  - model: m\n"
    )
    assert [(p.line, p.key_path, p.message) for p in problems] == [
        (4, "operators[1].id", "required key is missing"),
        (6, "agents[0].name", "required key is missing"),
    ]


def test_all_problems_are_collected_in_line_order() -> None:
    """Every problem in the file is reported at once, sorted by line."""
    problems = problems_of(
        "log_level: loud\n"
        "command_prefix: '!!!!!!!!!'\n"
        "operators:\n  - id: x\n    role: boss\n"
        "defaults:\n  logs_lines: 0\n  send_reply_wait_seconds: 31\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (1, "log_level"),
        (2, "command_prefix"),
        (5, "operators[0].role"),
        (7, "defaults.logs_lines"),
        (8, "defaults.send_reply_wait_seconds"),
    ]
    assert problems[1].message == "must be at most 8 characters, found 9"
    assert problems[3].message == "must be at least 1, found an integer (0)"
    assert problems[4].message == "must be at most 30, found an integer (31)"


def test_config_error_is_one_line_per_problem() -> None:
    """str(ConfigError) is `file:line: key.path: message`, one problem per line."""
    with pytest.raises(ConfigError) as caught:
        parse(
            "log_level: loud\nagents:\n  - name: a\n    runtime: claud\n",
            offered=Offered(("claude",)),
        )
    assert str(caught.value).splitlines() == [
        "fleetwarden.yaml:1: log_level: unknown log level 'loud'; allowed: debug, info, warning, "
        "error",
        "fleetwarden.yaml:4: agents[0].runtime: unknown runtime 'claud' — did you mean 'claude'? "
        "allowed: claude",
    ]


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("''", 'must not be empty (in YAML, quote it: command_prefix: "!")'),
        ("'! '", "must not contain spaces"),
        ("'123456789'", "must be at most 8 characters, found 9"),
    ],
)
def test_command_prefix_rules(prefix: str, message: str) -> None:
    """The command prefix is 1-8 characters without whitespace."""
    assert only_problem(f"command_prefix: {prefix}\n").message == message


def test_multi_character_prefix_is_accepted() -> None:
    """A prefix like `fw!` is fine."""
    assert parse("command_prefix: 'fw!'\n").command_prefix == "fw!"


def test_operator_connector_must_be_a_known_connector() -> None:
    """An operator bound to a connector name that does not exist would never match: refused."""
    problem = only_problem("operators:\n  - id: a\n    role: admin\n    connector: consle\n")
    assert problem.key_path == "operators[0].connector"
    assert problem.message.startswith("unknown connector 'consle' — did you mean 'console'?")


def test_same_operator_twice_is_reported() -> None:
    """One id listed twice for the same connector is ambiguous about the role: refused."""
    problem = only_problem("operators:\n  - id: a\n    role: admin\n  - id: a\n    role: viewer\n")
    assert (problem.line, problem.key_path) == (4, "operators[1].id")
    assert (
        problem.message == "operator 'a' is listed twice: operators[0].id on line 2 already has it"
    )


# --- The roster --------------------------------------------------------------------------------


def test_duplicate_agent_names_report_both_lines() -> None:
    """Two agents with one name: reported at the second, naming the first and its line."""
    problem = only_problem("agents:\n  - name: coder-1\n  - name: other\n  - name: coder-1\n")
    assert problem == ConfigProblem(
        FILE,
        4,
        "agents[2].name",
        "duplicate agent name 'coder-1': agents[0].name on line 2 already has it",
    )


@pytest.mark.parametrize("name", ["Coder", "1st", "a_b", "x" * 33, "-a"])
def test_invalid_agent_name_states_the_pattern(name: str) -> None:
    """An agent name outside [a-z][a-z0-9-]{0,31} is refused, quoting the pattern."""
    problem = only_problem(f"agents:\n  - name: '{name}'\n")
    assert (problem.line, problem.key_path) == (2, "agents[0].name")
    assert "must match [a-z][a-z0-9-]{0,31}" in problem.message


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("all", "it means every agent (`stop all`, `freeze all`)"),
        ("budget", "`raise budget SCOPE` raises a budget's limit"),
    ],
)
def test_a_word_the_commands_reserve_is_no_agents_name(name: str, why: str) -> None:
    """`all` and `budget` mean something of their own to the commands: a roster agent so
    named is refused at its line, saying what the word means and to pick another."""
    problem = only_problem(f"agents:\n  - name: {name}\n")
    assert (problem.line, problem.key_path) == (2, "agents[0].name")
    assert problem.message == f"{name!r} cannot be an agent's name: {why} — pick another name"


def test_unknown_runtime_and_backend_use_the_passed_in_sets() -> None:
    """Runtime and backend names are checked against what the caller says exists."""
    problems = problems_of(
        "agents:\n  - name: a\n    runtime: claud\n    backend: tmux\ndefaults:\n  runtime: codx\n",
        offered=Offered(("stub", "claude", "codex")),
    )
    assert [(p.line, p.key_path, p.message) for p in problems] == [
        (
            3,
            "agents[0].runtime",
            "unknown runtime 'claud' — did you mean 'claude'? allowed: claude, codex, stub",
        ),
        (4, "agents[0].backend", "unknown backend 'tmux'; allowed: subprocess"),
        (
            6,
            "defaults.runtime",
            "unknown runtime 'codx' — did you mean 'codex'? allowed: claude, codex, stub",
        ),
    ]


def test_known_runtime_from_the_passed_in_set_is_accepted() -> None:
    """A runtime the caller registered is valid."""
    config = parse(
        "agents:\n  - name: a\n    runtime: claude\n", offered=Offered(("stub", "claude"))
    )
    assert config.agents[0].runtime == "claude"


def test_agent_relying_on_an_unavailable_default_runtime_is_reported() -> None:
    """An agent without a runtime, when the built-in default is not installed, is an error."""
    problem = only_problem("agents:\n  - name: a\n", offered=Offered(("claude",)))
    assert (problem.line, problem.key_path) == (2, "agents[0]")
    assert problem.message.startswith(
        "no runtime set, and the default runtime 'stub' is not available"
    )


def test_to_spec_fills_unset_fields_from_defaults(tmp_path: Path) -> None:
    """AgentEntry.to_spec takes runtime and backend from defaults when the entry has none."""
    config = parse(
        "agents:\n  - name: a\n  - name: b\n    runtime: stub\n    model: m\n"
        "defaults:\n  runtime: claude\n",
        offered=Offered(("stub", "claude")),
    )
    first, second = (agent.to_spec(config.defaults) for agent in config.agents)
    assert first == AgentSpec(name=first.name, runtime="claude", backend="subprocess")
    assert (second.runtime, second.model) == ("stub", "m")


# --- Connectors and operators ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "console"),
    [
        ("log_level: info\n", ConsoleConfig()),
        ("connectors: {}\n", None),
        ("connectors:\n", None),
        ("connectors:\n  console:\n", ConsoleConfig()),
        ("connectors:\n  console:\n    enabled: false\n", None),
        (
            "connectors:\n  console: {user_id: ann, role: viewer}\n",
            ConsoleConfig(user_id="ann", role="viewer"),
        ),
    ],
)
def test_console_runs_only_when_listed_or_when_connectors_is_absent(
    text: str, console: ConsoleConfig | None
) -> None:
    """No `connectors` key runs the console; a `connectors` section runs only what it lists."""
    assert parse(text).console == console


def test_effective_operators_add_the_console_user() -> None:
    """The console user gets the console role unless an operator entry names it."""
    config = parse(
        "operators:\n  - {id: '@ann:example.org', role: operator}\n"
        "connectors:\n  console: {role: viewer}\n"
    )
    assert config.effective_operators() == (
        Operator(id="@ann:example.org", role="operator"),
        Operator(id="console", role="viewer", connector="console"),
    )


def test_operator_entry_for_the_console_user_wins() -> None:
    """An operator entry with the console user's id replaces the implicit console grant."""
    config = parse("operators:\n  - {id: console, role: viewer}\n")
    assert config.effective_operators() == (Operator(id="console", role="viewer"),)


def test_console_bound_entry_for_the_console_user_wins() -> None:
    """An entry for the console user bound to the console connector also replaces the grant."""
    config = parse("operators:\n  - {id: console, role: viewer, connector: console}\n")
    assert config.effective_operators() == config.operators


def test_same_id_on_another_connector_does_not_hide_the_console_user() -> None:
    """An entry for id 'console' bound to another connector does not cover the console."""
    # Built unvalidated: this build knows no connector but the console yet.
    elsewhere = Operator.model_construct(id="console", role="viewer", connector="matrix")
    document = ConfigFile(operators=(elsewhere,))
    config = Config.from_document(document, source=None, base_dir=Path("/srv"))
    assert config.effective_operators() == (
        elsewhere,
        Operator(id="console", role="admin", connector="console"),
    )


def test_no_console_means_no_implicit_operator() -> None:
    """Without the console, the operators are exactly those listed."""
    config = parse("connectors: {}\noperators:\n  - {id: a, role: admin}\n")
    assert config.effective_operators() == (Operator(id="a", role="admin"),)


# --- A full example ----------------------------------------------------------------------------

FULL = """\
# Fleetwarden on the build box.
state_dir: state
ledger: null
command_prefix: "!"
log_level: warning
operators:
  - id: "@alice:example.org"
    role: admin
  - id: "@bob:example.org"
    role: viewer
    connector: console
connectors:
  console:
    enabled: true
    user_id: ops
    role: operator
    prompt: "fw> "
agents:
  - name: coder-1
    runtime: claude
    model: opus
    prompt: Fix the flaky test.
    workdir: repo
    backend: subprocess
    env:
      LOG_FORMAT: json
    secret_env: [ANTHROPIC_API_KEY]
  - name: reviewer
defaults:
  runtime: stub
  backend: subprocess
  stop_grace_seconds: 2.5
  logs_lines: 100
  send_reply_wait_seconds: 0
"""


def test_full_valid_example(tmp_path: Path) -> None:
    """Every key of the schema, valid, gives the typed values written."""
    (tmp_path / "repo").mkdir()
    path = write(tmp_path / "fleetwarden.yaml", FULL)
    config = load_config(path, {}, offered=Offered(("stub", "claude")))
    assert config.source == path
    assert config.state_dir == tmp_path / "state"
    assert config.ledger_path == tmp_path / "state" / "ledger.db"
    assert (config.command_prefix, config.log_level) == ("!", "warning")
    assert config.operators == (
        Operator(id="@alice:example.org", role="admin"),
        Operator(id="@bob:example.org", role="viewer", connector="console"),
    )
    assert config.console == ConsoleConfig(user_id="ops", role="operator", prompt="fw> ")
    assert config.defaults == Defaults(
        stop_grace_seconds=2.5, logs_lines=100, send_reply_wait_seconds=0
    )
    specs = [agent.to_spec(config.defaults) for agent in config.agents]
    assert specs == [
        AgentSpec(
            name=specs[0].name,
            runtime="claude",
            backend="subprocess",
            model="opus",
            prompt="Fix the flaky test.",
            workdir=tmp_path / "repo",
            env={"LOG_FORMAT": "json"},
            secret_env=("ANTHROPIC_API_KEY",),
        ),
        AgentSpec(name=specs[1].name, runtime="stub", backend="subprocess"),
    ]
    assert config.secret_env_names() == {"ANTHROPIC_API_KEY"}
    assert config.effective_operators()[-1] == Operator(
        id="ops", role="operator", connector="console"
    )


def test_config_objects_are_immutable() -> None:
    """Config, its sections and an agent's env cannot be changed after loading."""
    config = parse("agents:\n  - name: a\n    env: {A: b}\n")
    with pytest.raises(AttributeError):
        config.command_prefix = "?"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        config.defaults.logs_lines = 3
    with pytest.raises(TypeError):
        config.agents[0].env["A"] = "c"  # type: ignore[index]
    assert config.agents[0].model_dump()["env"] == {"A": "b"}


# --- Robustness ---------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "state_dir", "ledger", "command_prefix", "log_level", "operators", "connectors",
        "agents", "defaults", "console", "name", "id", "role", "runtime", "env", "secret_env",
        "workdir", "enabled", "logs_lines", "token", "x",
    ]
)  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["a", "coder-1", "stub", "admin", "", "A_B", "~/x", "/tmp"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_any_document_gives_a_config_or_located_problems(document: dict[str, Any]) -> None:
    """Whatever the document, the result is a Config or problems on lines of the file."""
    text = yaml.safe_dump(document, sort_keys=False)
    try:
        parse(text, base_dir=Path("/nonexistent-fleetwarden"))
    except ConfigError as exc:
        assert exc.problems
        lines = text.count("\n") + 1
        for problem in exc.problems:
            assert problem.file == FILE
            assert problem.line is None or 1 <= problem.line <= lines
            assert problem.message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    """Arbitrary text never escapes as anything but ConfigError."""
    try:
        parse(text)
    except ConfigError as exc:
        assert exc.problems
