"""YAML a person mis-indented: each common layout mistake is reported on the line to fix,
saying what to do, never in PyYAML's own words."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config

FILE = "fleetwarden.yaml"

CASES = [
    pytest.param(
        "state_dir: x\nlog_level: info\n  command_prefix: '!'\n",
        3,
        "`command_prefix` is indented more than `log_level` on line 2 (column 3, not 1); "
        "keys of one mapping line up: start it at column 1",
        id="a key indented too much",
    ),
    pytest.param(
        "defaults:\n  runtime: stub\n    backend: tmux\n",
        3,
        "`backend` is indented more than `runtime` on line 2 (column 5, not 3)",
        id="a nested key indented too much",
    ),
    pytest.param(
        "defaults:\n    runtime: stub\n  backend: tmux\n",
        3,
        "`backend` is indented less than `runtime` on line 2 (column 3, not 5); keys of one "
        "mapping line up: start it at column 5",
        id="a key indented too little",
    ),
    pytest.param(
        "defaults:\n  runtime: stub\n\tbackend: tmux\n",
        3,
        "a tab indents this line; YAML indents with spaces only: replace the tab with spaces",
        id="a tab",
    ),
    pytest.param(
        "agents:\n  - name: a\n    runtime: stub\n   - name: b\n",
        4,
        "this list item's `-` is at column 4, the items above it at column 3 (line 2); items "
        "of one list line up: start its `-` at column 3",
        id="a list item one column right",
    ),
    pytest.param(
        "agents:\n  - name: a\n    runtime: stub\n    - name: b\n",
        4,
        "this list item's `-` is at column 5, the items above it at column 3 (line 2)",
        id="a list item under the keys of the one above",
    ),
    pytest.param(
        "agents:\n  - name: a\n      runtime: stub\n",
        3,
        "`runtime` is indented more than `name` on line 2 (column 7, not 5)",
        id="a list item's key indented too much",
    ),
    pytest.param(
        "defaults:\n  runtime:stub\n  backend: tmux\n",
        2,
        "put a space after the colon: `runtime: stub`, not `runtime:stub`",
        id="no space after a colon, a key below",
    ),
    pytest.param(
        "log_level:info\nstate_dir: x\n",
        1,
        "put a space after the colon: `log_level: info`, not `log_level:info`",
        id="no space after a colon at the top",
    ),
]


@pytest.mark.parametrize(("text", "line", "said"), CASES)
def test_a_layout_mistake_names_its_line_and_the_fix(
    text: str, line: int, said: str, tmp_path: Path
) -> None:
    """The problem is on the line to fix, says how, and none of PyYAML's words."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, FILE, base_dir=tmp_path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.key_path) == (FILE, line, "")
    assert problem.message.startswith("invalid YAML: ")
    assert said in problem.message
    for words in ("mapping values are not allowed", "<block end>", "cannot start any token"):
        assert words not in problem.message


def test_a_value_with_no_space_after_its_colon_where_a_mapping_belongs(tmp_path: Path) -> None:
    """`runtime:stub` alone under a section is text to YAML: the message says to add the
    space."""
    with pytest.raises(ConfigError) as caught:
        parse_config("defaults:\n  runtime:stub\n", FILE, base_dir=tmp_path)
    [problem] = caught.value.problems
    assert problem.key_path == "defaults"
    assert problem.message.endswith(
        "found a string ('runtime:stub'); put a space after the colon to make it a key and "
        "its value: `runtime: stub`"
    )


def test_a_roster_file_s_layout_mistake_is_on_its_own_line(tmp_path: Path) -> None:
    """A roster file (`agents: FILE`) gets the same words, on that file's line."""
    (tmp_path / "roster.yaml").write_text("- name: a\n  runtime: stub\n runtime: x\n")
    with pytest.raises(ConfigError) as caught:
        parse_config("agents: roster.yaml\n", FILE, base_dir=tmp_path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == ("roster.yaml", 3)
    assert problem.message.startswith("invalid YAML: `runtime` is indented less than `runtime`")
