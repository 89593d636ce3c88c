"""The roster's YAML edited in place (bot/config/roster/edit.py): comments, order, quoting,
flow and block style, indentation and line endings kept; refusals that name the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bot.app.roster_edits import write_atomically
from bot.config.roster.edit import (
    AddAgent,
    RemoveAgent,
    RosterEditError,
    SetKey,
    edit_text,
    parse_value,
)

CONFIG = """\
# The fleet, by hand.
state_dir: ./state   # beside the config
agents:
  # the one who writes
  - name: coder      # first agent
    runtime: claude
    allow: [Read, Edit]
    env:
      LEVEL: "1"

  # the one who reads
  - name: reviewer
    runtime: codex
    model: 'o3'
connectors:
  console: {}
"""

ROSTER = """\
# Our agents.
- name: a   # the first
  runtime: stub

- name: b
  runtime: stub
  deny:
    - Bash
"""


def test_setting_a_key_keeps_every_comment_and_the_order() -> None:
    """A set key lands in its entry (quoted as the value it replaces), and every comment,
    blank line and key stays put."""
    made = edit_text(CONFIG, SetKey("reviewer", "model", "gpt-5"), under_agents=True)
    assert made == CONFIG.replace("    model: 'o3'\n", "    model: 'gpt-5'\n")


def test_a_new_key_goes_last_in_its_entry_before_the_blank_line() -> None:
    """A key the entry lacked is written after its last line, the blank line and the next
    entry's comment still after it."""
    made = edit_text(CONFIG, SetKey("coder", "model", "opus"), under_agents=True)
    assert made == CONFIG.replace('      LEVEL: "1"\n', '      LEVEL: "1"\n    model: opus\n')


def test_flow_and_block_styles_are_kept_and_a_flow_value_stays_flow() -> None:
    """A flow list stays flow, a block list block, and a typed flow list is written flow."""
    made = edit_text(ROSTER, SetKey("a", "allow", "[Read, Bash]"), under_agents=False)
    assert "  allow: [Read, Bash]\n" in made
    assert "  deny:\n    - Bash\n" in made
    assert made.startswith("# Our agents.\n- name: a   # the first\n")


def test_an_added_agent_goes_last_with_the_files_indentation() -> None:
    """`add` appends an entry indented as the file's own, the rest byte for byte."""
    made = edit_text(
        CONFIG, AddAgent("third", {"runtime": "stub", "model": "m"}), under_agents=True
    )
    head, tail = CONFIG.split("connectors:\n")
    assert made == head + "  - name: third\n    runtime: stub\n    model: m\nconnectors:\n" + tail
    assert edit_text(ROSTER, AddAgent("c", {"runtime": "stub"}), under_agents=False) == (
        ROSTER + "- name: c\n  runtime: stub\n"
    )


def test_removing_an_agent_keeps_the_others_and_their_comments() -> None:
    """`remove` takes the entry out; the comment above and beside the others stay."""
    made = edit_text(CONFIG, RemoveAgent("reviewer"), under_agents=True)
    assert "reviewer" not in made
    assert "  # the one who writes\n  - name: coder      # first agent\n" in made
    assert made.startswith("# The fleet, by hand.\nstate_dir: ./state   # beside the config\n")
    assert made.endswith("connectors:\n  console: {}\n")


def test_windows_line_endings_are_kept() -> None:
    """A file written with CRLF is edited and stays CRLF throughout."""
    crlf = ROSTER.replace("\n", "\r\n")
    made = edit_text(crlf, SetKey("b", "model", "x"), under_agents=False)
    assert made == ROSTER.replace("    - Bash\n", "    - Bash\n  model: x\n").replace("\n", "\r\n")


def test_an_empty_or_comment_only_roster_file_takes_its_first_agent() -> None:
    """A roster file with no agents yet gets the first, its comments kept."""
    assert edit_text("# none yet\n", AddAgent("a", {"runtime": "stub"}), under_agents=False) == (
        "# none yet\n- name: a\n  runtime: stub\n"
    )
    assert edit_text("state_dir: s\n", AddAgent("a", {"runtime": "x"}), under_agents=True) == (
        "state_dir: s\nagents:\n- name: a\n  runtime: x\n"
    )


def test_null_takes_a_key_out() -> None:
    """`roster set NAME KEY null` removes the key, so its default applies."""
    made = edit_text(CONFIG, SetKey("reviewer", "model", "null"), under_agents=True)
    assert "o3" not in made and "  - name: reviewer\n    runtime: codex\n" in made


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (SetKey("coder", "modle", "x"), "unknown agent key 'modle': did you mean 'model'?"),
        (SetKey("coder", "name", "x"), "`roster add NEW …` then `roster remove coder`"),
        (SetKey("codr", "model", "x"), "no agent named 'codr' in the roster (did you mean"),
        (AddAgent("coder", {"runtime": "stub"}), "an agent named 'coder' is already in the"),
        (RemoveAgent("nobody"), "`roster` lists them"),
        (SetKey("coder", "allow", "[Read, "), "cannot read the value as YAML"),
    ],
)
def test_an_edit_that_cannot_be_made_says_why_and_what_to_do(edit: object, said: str) -> None:
    """Unknown keys, names, a taken name, a renaming or unreadable YAML: refused, saying so."""
    with pytest.raises(RosterEditError) as refused:
        edit_text(CONFIG, edit, under_agents=True)  # type: ignore[arg-type]
    assert said in str(refused.value)


def test_values_are_read_as_yaml_scalars_or_flow() -> None:
    """Typed values are YAML: numbers, booleans, strings and flow collections."""
    assert parse_value("30") == 30
    assert parse_value("true") is True
    assert parse_value("gpt-5") == "gpt-5"
    assert parse_value("[Read, Edit]") == ["Read", "Edit"]
    assert parse_value("{A: '1'}") == {"A": "1"}


@pytest.mark.parametrize(
    "value",
    [
        "&a x",
        "!!python/object/apply:os.system [id]",
        "!include /etc/passwd",
        "!!str x",
        "{a: &a [x, x], b: [*a, *a]}",
    ],
)
def test_a_value_with_a_tag_anchor_or_alias_is_refused(value: str) -> None:
    """A chat value carrying a YAML tag, anchor or alias is refused (plain data only),
    nothing of it written."""
    with pytest.raises(RosterEditError, match=r"tag, anchor or alias.*write plain data"):
        edit_text(CONFIG, SetKey("coder", "model", value), under_agents=True)


@pytest.mark.parametrize(
    ("key", "value"),
    [("env", "{FOO: %s}"), ("argv", "[--api-key, %s]"), ("model", "%s"), ("env", "{%s: x}")],
)
def test_a_value_shaped_like_a_credential_is_refused_unshown(key: str, value: str) -> None:
    """A credential typed as a value (an env value, an argv item, a plain value) is
    refused, the refusal pointing at `secret_env` and not showing it."""
    secret = "sk-ant-api03-" + "A1b2C3d4" * 6  # shaped like a key, no key
    with pytest.raises(RosterEditError, match=r"looks like a credential.*secret_env") as refused:
        edit_text(CONFIG, SetKey("coder", key, value % secret), under_agents=True)
    assert secret not in str(refused.value)


def test_the_atomic_write_keeps_the_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    """The file is replaced whole, keeping its mode, with no temporary file left beside it."""
    path = tmp_path / "roster.yaml"
    path.write_text("- name: a\n")
    os.chmod(path, 0o640)
    write_atomically(path, b"- name: b\n")
    assert path.read_bytes() == b"- name: b\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roster.yaml"]


MIXED = """\
operators:
- id: console   # me
  role: admin
agents:
  - name: w   # one
    runtime: stub
    deny:
    - Bash
repos:
    app:
        url: /srv/git/app.git
"""


def test_a_file_of_mixed_indentation_keeps_its_other_sections_as_written() -> None:
    """Where no one indentation dumps the file as it is, only the edited lines change."""
    made = edit_text(MIXED, SetKey("w", "model", "m"), under_agents=True)
    assert made == MIXED.replace("    - Bash\n", "    - Bash\n    model: m\n")
    added = edit_text(MIXED, AddAgent("z", {"runtime": "stub"}), under_agents=True)
    assert added == MIXED.replace("repos:\n", "  - name: z\n    runtime: stub\nrepos:\n")


def test_a_line_that_would_land_under_another_key_is_never_spliced() -> None:
    """When the edited lines, as dumped, would mean something else in the file as written,
    the whole file is written as dumped: the data is what the edit says, always."""
    text = (
        "operators:\n  - id: a\n    role: admin\n  - id: b\n    role: admin\n"
        'agents:\n- name: w\n  env:\n    A: "1"\n'
    )
    made = edit_text(text, SetKey("w", "model", "m"), under_agents=True)
    agents = YAML(typ="safe").load(made)["agents"]
    assert agents == [{"name": "w", "env": {"A": "1"}, "model": "m"}]
