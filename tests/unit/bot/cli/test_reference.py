"""The guides' generated references and the README's Quick start stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli.reference import (
    GUIDES,
    command_reference,
    config_reference,
    main,
    markers,
    replace_blocks,
)

ROOT = Path(__file__).resolve().parents[4]
README = ROOT / "README.md"


def test_guide_references_are_current() -> None:
    """The guides' config and command references equal what the schema generates now."""
    for path, kinds in GUIDES.items():
        text = (ROOT / path).read_text()
        assert all(markers(kind)[0] in text for kind in kinds), f"{path} lost its markers"
        assert replace_blocks(text) == text, "run: python -m bot.cli.reference --write"


def test_write_updates_the_named_file_only_where_its_markers_are(tmp_path: Path) -> None:
    """`--write FILE` fills that file's blocks and keeps the text around them."""
    start, end = markers("commands")
    guide = tmp_path / "commands.md"
    guide.write_text(f"# Commands\n\n{start}\nstale\n{end}\n\nafter\n")
    main(["--write", str(guide)])
    text = guide.read_text()
    assert text.startswith(f"# Commands\n\n{start}\n| command |")
    assert text.endswith(f"|\n{end}\n\nafter\n")
    assert "stale" not in text


def test_write_refuses_a_file_without_markers() -> None:
    """A text with no generated block is refused rather than left unchanged in silence."""
    with pytest.raises(ValueError, match="no generated reference block"):
        replace_blocks("# Fleetwarden\n")


def test_config_reference_lists_nested_keys() -> None:
    """Every nested key appears by its dotted path, list entries with []."""
    reference = config_reference()
    for key in ("state_dir", "operators[].role", "connectors.console.user_id", "agents[].name"):
        assert f"| `{key}` |" in reference


def test_command_reference_marks_control_commands() -> None:
    """Commands that change the fleet are marked as needing the operator role."""
    rows = {line.split("`")[1].split()[0]: line for line in command_reference().splitlines()[2:]}
    assert "operator, admin" in rows["spawn"]
    assert "everyone listed" in rows["ps"]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs exactly the second Quick-start command."""
    quick_start = README.read_text().split("## Quick start", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)\n```", quick_start, re.S)
    assert len(blocks) >= 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"exec {blocks[1].strip()}" in ci
