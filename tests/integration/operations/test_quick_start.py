"""The README's run command (`bash run.sh`) on a machine without bubblewrap: it installs
bubblewrap with apt-get and `spawn demo` then starts sandboxed; where it cannot install,
`fleetwarden run` says once what to install and refuses sandboxed agents with that fix.

The machine is a view of this one: a PATH of links to every program here except `bwrap`
(and, as each test needs, `apt-get`, `sudo`, `id`), with a stand-in `apt-get` that records
its calls and "installs" bubblewrap by linking the real `bwrap` into the view. The real
`run.sh`, the real `fleetwarden run` and the real bubblewrap do the rest; only the venv is
one made beforehand (a link to this one's `fleetwarden`), so nothing is downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.sandbox.host.procs import sandbox_init_pid
from tests import sandbox_need
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
]

ROOT = Path(__file__).parents[3]
RUN_SH = ROOT / "run.sh"
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
INSTALL_LINE = "apt-get install -y bubblewrap"
APT_GET = """#!/bin/bash
echo "$*" >> {log}
case " $* " in *" install "*" bubblewrap"*) ln -sf {bwrap} {view}/bwrap ;; esac
"""


@pytest.fixture
def view() -> Iterator[Path]:
    """An empty directory outside the test's own (which is closed to others): the agents'
    uids, as the sandbox probe's, find `bwrap` through it."""
    made = Path(tempfile.mkdtemp(prefix="fleetwarden-view-"))
    made.chmod(0o755)
    yield made
    shutil.rmtree(made)


def machine_view(view: Path, tmp_path: Path, hide: tuple[str, ...]) -> Path:
    """``view`` made the whole PATH: every program here but `bwrap` and ``hide``, and a
    recording `apt-get` unless hidden."""
    for directory in map(Path, SYSTEM_DIRS):
        if not directory.is_dir():
            continue
        for program in directory.iterdir():
            target = view / program.name
            if program.name in ("bwrap", "apt-get", *hide) or target.exists():
                continue
            target.symlink_to(program)
    if "apt-get" not in hide:
        apt = view / "apt-get"
        bwrap = shutil.which("bwrap")
        apt.write_text(APT_GET.format(log=tmp_path / "apt.log", bwrap=bwrap, view=view))
        apt.chmod(0o755)
    return view


def made_venv(tmp_path: Path) -> Path:
    """A venv `run.sh` finds set up (this one's `fleetwarden`, the project's dependencies
    as installed), so it installs nothing into it."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "fleetwarden").symlink_to(FLEETWARDEN)
    (venv / "bin" / "python").symlink_to(sys.executable)
    shutil.copy(ROOT / "pyproject.toml", venv / ".fleetwarden-pyproject.toml")
    return venv


@pytest.fixture
def started() -> Iterator[list[ConsoleBot]]:
    """The bots a test started, killed at the end if still running."""
    bots: list[ConsoleBot] = []
    yield bots
    for bot in bots:
        if bot.proc.poll() is None:
            bot.kill()


def run_sh(tmp_path: Path, view: Path, started: list[ConsoleBot]) -> ConsoleBot:
    """`bash run.sh` in ``tmp_path`` on the machine ``view``, at its console."""
    env = clean_env(PATH=str(view), FLEETWARDEN_VENV=str(made_venv(tmp_path)))
    # ConsoleBot appends `fleetwarden run`: run.sh starts it itself, so those are dropped.
    prefix = ["/bin/bash", "-c", 'exec bash "$0"', str(RUN_SH)]
    bot = ConsoleBot(tmp_path, env=env, prefix=prefix)
    started.append(bot)
    return bot


def apt_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_run_sh_installs_bubblewrap_and_spawn_demo_starts_sandboxed(
    tmp_path: Path, view: Path, started: list[ConsoleBot]
) -> None:
    """No bwrap, apt-get there, root: run.sh installs bubblewrap quietly, then the console
    starts and `spawn demo` runs sandboxed; a second setup installs nothing and says
    nothing."""
    machine_view(view, tmp_path, hide=())
    bot = run_sh(tmp_path, view, started)
    bot.command("spawn demo --prompt 'count to 3'", r"Agent demo started")
    assert apt_calls(tmp_path) == ["update -qq", "install -y -qq bubblewrap"]
    assert (view / "bwrap").exists()
    bot.command("ps", r"demo\s+stub\s+running")
    runs = sorted((tmp_path / ".fleetwarden" / "agents" / "demo" / "runs").iterdir())
    assert sandbox_init_pid(runs[-1]) is not None  # in bubblewrap's namespace, not unconfined
    bot.command("stop demo", r"Stopped demo")
    assert bot.close() == 0
    assert "cannot start" not in bot.stdout + bot.stderr
    assert "== installing bubblewrap" in bot.stdout

    again = subprocess.run(
        ["bash", str(ROOT / ".ci" / "apt-packages.sh"), "bwrap=bubblewrap"],
        env=clean_env(PATH=str(view)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert (again.stdout, again.stderr) == ("", "")
    assert len(apt_calls(tmp_path)) == 2


def test_run_sh_without_root_says_once_what_to_install_and_refuses_spawn(
    tmp_path: Path, view: Path, started: list[ConsoleBot]
) -> None:
    """No bwrap, not root and no sudo: run.sh installs nothing; at start the exact install
    line is said once, and `spawn demo` is refused with it (never run unsandboxed)."""
    machine_view(view, tmp_path, hide=("sudo", "id"))
    (view / "id").write_text("#!/bin/sh\necho 1000\n")
    (view / "id").chmod(0o755)
    bot = run_sh(tmp_path, view, started)
    bot.expect(r"Sandboxed agents cannot start on this host: bubblewrap is not installed")
    bot.command("ps", r"No agents yet")
    said = bot.stdout + bot.stderr
    assert said.count(INSTALL_LINE) == 1, said
    assert apt_calls(tmp_path) == []
    refused = bot.command("spawn demo", r"demo cannot start sandboxed: .*")
    assert f"install bubblewrap: {INSTALL_LINE}" in refused.group(0)
    bot.command("ps", r"No agents yet|demo\s+stub\s+(failed|stopped)")
    assert bot.close() == 0
