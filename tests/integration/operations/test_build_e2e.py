"""Which Fleetwarden runs, said everywhere alike: ``fleetwarden --version`` from the real
CLI prints the package's version and the checkout's commit; a real ``fleetwarden run`` with
a dashboard names the same build in ``status`` (text and JSON) and in ``/metrics``
(``fleetwarden_build_info``)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env, wait_until
from tests.integration.forge_rig import listening
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
METRICS_TOKEN = "build-metrics-token-0123456789abcdef"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
dashboard:
  listen: 127.0.0.1:{port}
  metrics_token_env: FW_METRICS_TOKEN
agents: []
"""


def _commit() -> str:
    """This checkout's short commit, as git says it."""
    argv = ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def checkout_build() -> str:
    """The build of this checkout in words, as every surface says it: version and commit."""
    return f"{version('fleetwarden')} (commit {_commit()})"


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), *args], cwd=cwd, env=clean_env(), capture_output=True, text=True
    )


def test_version_prints_the_packages_version_and_the_checkouts_commit(tmp_path: Path) -> None:
    """`fleetwarden --version`, run from outside the checkout, prints the installed
    package's version and the short commit of the checkout it runs from; exit 0."""
    done = _cli(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"fleetwarden {checkout_build()}\n"


def test_status_and_metrics_name_the_build_the_orchestrator_runs(tmp_path: Path) -> None:
    """A running orchestrator's `status` says `Fleetwarden VERSION (commit C)`, its
    `status --json` has `build: {version, commit}`, and `/metrics` has
    `fleetwarden_build_info{commit, version} 1` — the same build as `--version`."""
    port = free_port()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(port=port))
    expected = {"version": version("fleetwarden"), "commit": _commit()}
    env = clean_env(FW_METRICS_TOKEN=METRICS_TOKEN)
    with ConsoleBot(tmp_path, "--config", str(config), env=env) as bot:
        assert wait_until(lambda: listening(port) or bot.proc.poll() is not None, timeout=60)
        assert bot.proc.poll() is None, bot.stderr

        text = _cli(tmp_path, "status", "--config", str(config))
        assert text.returncode == 0, text.stderr
        words = f"Fleetwarden {expected['version']} (commit {expected['commit']})"
        assert words in text.stdout.splitlines(), text.stdout
        as_json = _cli(tmp_path, "status", "--json", "--config", str(config))
        assert json.loads(as_json.stdout)["build"] == expected

        asked = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        )
        with urllib.request.urlopen(asked, timeout=30) as answer:
            scraped = answer.read().decode()
        line = (
            f'fleetwarden_build_info{{commit="{expected["commit"]}",'
            f'version="{expected["version"]}"}} 1.0'
        )
        assert line in scraped.splitlines(), scraped
        assert bot.quit() == 0, bot.stderr
