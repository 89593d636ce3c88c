"""The installed ``fleetwarden`` console script as people type it: ``--config`` before the
command reads that config (as after it does), and a misspelt option or command is refused
with exit status 2 and the one meant, before anything is read or written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

CONFIG = """\
state_dir: ./state
connectors:
  console: {}
agents:
  - name: coder
    runtime: stub
"""


def fleetwarden(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The console script run with ``argv`` in ``cwd``, its environment naming no config."""
    return subprocess.run(
        [str(FLEETWARDEN), *argv],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_before_the_command_is_read_as_after_it(tmp_path: Path) -> None:
    """`fleetwarden --config X status` and `fleetwarden --config X check-config` read X:
    the same answers as with `--config X` after the command, never `invalid choice`."""
    config = tmp_path / "fleet.yaml"
    config.write_text(CONFIG)
    before = fleetwarden(tmp_path, "--config", str(config), "status")
    after = fleetwarden(tmp_path, "status", "--config", str(config))
    assert "invalid choice" not in before.stderr
    assert (before.returncode, before.stderr) == (after.returncode, after.stderr)
    assert f"the dashboard is off in {config}" in before.stderr
    checked = fleetwarden(tmp_path, f"--config={config}", "check-config")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{config}: OK") and "agents:     coder" in checked.stdout


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("tasks", "--markdwon", "--config", "{config}"), "did you mean --markdown?"),
        (("--confg", "{config}", "status"), "unknown option --confg — did you mean --config?"),
        (("status", "--confg", "{config}"), "did you mean --config?"),
        (
            ("--markdown", "tasks", "--config", "{config}"),
            "put it after the command: `fleetwarden tasks --markdown …`",
        ),
        (("stauts",), "did you mean 'status'?"),
    ],
)
def test_a_misspelt_flag_or_command_is_refused_with_the_one_meant(
    tmp_path: Path, argv: tuple[str, ...], said: str
) -> None:
    """Exit status 2, the likely meaning on stderr, and nothing written anywhere."""
    config = tmp_path / "fleet.yaml"
    config.write_text(CONFIG)
    done = fleetwarden(tmp_path, *(word.format(config=config) for word in argv))
    assert done.returncode == 2, done
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.yaml"]


def test_json_before_the_command_is_read_as_after_it(tmp_path: Path) -> None:
    """`fleetwarden --json status` answers as `fleetwarden status --json`: in JSON, with the
    same exit status (3: no fleet runs with this config)."""
    config = tmp_path / "fleet.yaml"
    config.write_text(CONFIG)
    before = fleetwarden(tmp_path, "--json", "status", "--config", str(config))
    after = fleetwarden(tmp_path, "status", "--json", "--config", str(config))
    assert before.returncode == after.returncode == 3, before
    assert json.loads(before.stdout) == json.loads(after.stdout)
    assert json.loads(before.stdout)["ok"] is False
