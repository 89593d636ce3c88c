"""The README's generated references and Quick start stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from bot.cli.reference import command_reference, config_reference, replace_blocks

ROOT = Path(__file__).resolve().parents[4]
README = ROOT / "README.md"


def test_readme_references_are_current() -> None:
    """README.md's config and command references equal what the schema generates now."""
    text = README.read_text()
    assert replace_blocks(text) == text, "run: python -m bot.cli.reference --write README.md"


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
