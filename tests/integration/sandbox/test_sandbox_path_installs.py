"""The directories on an agent's PATH under Fleetwarden's hidden HOME, against the real
bubblewrap: the tools in them run (a ``~/.cargo/bin`` program, a pipx tool whose link in
``~/.local/bin`` leads into its venv under ``~/.local/share``), while the credentials and
data beside them stay out of the agent's sight (``~/.cargo/credentials.toml``,
``~/.local/share/keyrings``, ``~/.local/state``, the HOME's ``.ssh`` around ``~/bin``,
even with a link to its key in ``~/.local/bin``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot, clean_env, wait_until

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

SECRETS = (
    ".cargo/credentials.toml",
    ".cargo/config.toml",
    ".local/share/keyrings/login.keyring",
    ".local/state/history",
    ".ssh/id_fake",
)
READABLE = (".cargo/registry/index.txt", ".local/lib/helper.txt", "bin/hometool")
PROBE = """\
for f in {files}; do
  if cat "$f" >/dev/null 2>&1; then echo "SEEN $f"; else echo "HIDDEN $f"; fi
done
cargo-tool
pytool
echo PROBED
exec sleep 600
"""


def _file(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


@pytest.fixture
def fleet_home() -> Iterator[Path]:
    """Fleetwarden's HOME outside the test's /tmp (the sandbox's /tmp is its own), each
    file readable by anyone: only the sandbox keeps an agent from the secrets in it."""
    home = Path("/var/tmp") / f"fw-path-home-{uuid.uuid4().hex}"
    for secret in SECRETS:
        _file(home / secret, "fake-secret\n")
    for readable in READABLE:
        _file(home / readable, "#!/bin/sh\necho readable\n", 0o755)
    _file(home / ".cargo" / "bin" / "cargo-tool", "#!/bin/sh\necho cargo tool ran\n", 0o755)
    venv = home / ".local" / "share" / "pipx" / "venvs" / "pytool"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv)}))
    _file(purelib / "pytool_helper.py", "WORD = 'from its venv'\n")
    said = "import pytool_helper\nprint('pytool ran', pytool_helper.WORD)\n"
    script = f"#!{venv / 'bin' / 'python'}\n{said}"
    _file(venv / "bin" / "pytool", script, 0o755)
    (home / ".local" / "bin").mkdir()
    (home / ".local" / "bin" / "pytool").symlink_to(venv / "bin" / "pytool")
    (home / ".local" / "bin" / "k").symlink_to(home / ".ssh" / "id_fake")  # never a bind
    for folder in (home, *[p for p in home.rglob("*") if p.is_dir()]):
        folder.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_an_agent_runs_the_tools_on_its_path_but_never_reads_the_credentials_beside_them(
    tmp_path: Path, fleet_home: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    files = " ".join(str(fleet_home / name) for name in (*SECRETS, *READABLE))
    (work / "probe.sh").write_text(PROBE.format(files=files))
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        ROSTER_HEAD.format()
        + "  - name: prober\n    runtime: command\n    argv: [/bin/sh, probe.sh]\n"
        + "    workdir: ./work\n"
    )
    path = ":".join(
        [
            str(fleet_home / ".cargo" / "bin"),
            str(fleet_home / ".local" / "bin"),
            str(fleet_home / "bin"),
            "/usr/local/bin:/usr/bin:/bin",
        ]
    )
    log = tmp_path / "state" / "agents" / "prober" / "output.log"
    with ConsoleBot(
        tmp_path, "--config", str(config), env=clean_env(HOME=str(fleet_home), PATH=path)
    ) as bot:
        bot.command("spawn prober", r"Agent prober started", timeout=60)
        assert wait_until(lambda: log.exists() and "PROBED" in log.read_text(), 30), (
            log.read_text() if log.exists() else "no output"
        )
        said = log.read_text()
        for secret in SECRETS:
            assert f"HIDDEN {fleet_home / secret}" in said, said
        for readable in READABLE:
            assert f"SEEN {fleet_home / readable}" in said, said
        assert "cargo tool ran" in said and "pytool ran from its venv" in said, said
        bot.command("stop prober", r"Stopped prober", timeout=60)
        assert bot.close() == 0
