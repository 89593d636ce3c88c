"""The local sandbox on the layouts an operator may choose, against the real bubblewrap and
`fleetwarden run` as root: the config, the state dir and the workdirs inside one directory
only root may enter (0700, like /srv/fleet), named through absolute symlinks, or with the
workdirs on a filesystem of their own (a tmpfs). In each, two hostile agents start as
their own users, write their workdir and HOME, and read neither Fleetwarden's config and
state nor each other's files. A layout no sandbox can be built for is refused before bubblewrap
runs, naming the directory and the fix (tests/unit/fleet/sandbox/test_sandbox_reach.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.conftest import processes_under
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env, wait_until
from tests.integration.sandbox.test_sandbox import HOSTILE, attack

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
    sandbox_need.root("lays out a root-only directory and mounts a tmpfs, as CI does"),
]

NAMES = ("hostile", "good")
DENIED = ("config", "metering", "other_work", "other_home", "umount_state", "write_outside")


class Layout:
    """Where the operator put things: ``named`` is how the config names them (the config
    file in ``named/cfg``, ``state``, ``work/NAME``), ``real`` where they lie."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.named = top / "fleet"
        self.real = top / "fleet"

    @property
    def config(self) -> Path:
        return self.named / "cfg" / "fw.yaml"

    def work(self, name: str) -> Path:
        return self.named / "work" / name


def closed(layout: Layout) -> None:
    """/srv/fleet as an operator lays it out: 0700, config, state and workdirs inside."""
    layout.real.mkdir(mode=0o700)
    for sub in ("cfg", "state", "work"):
        (layout.real / sub).mkdir(mode=0o700)


def symlinked(layout: Layout) -> None:
    """The config's directory, the state dir and the workdirs' parent named through
    absolute symlinks into a 0700 directory elsewhere."""
    layout.real = layout.top / "data"
    closed(layout)
    layout.named = layout.top / "names"
    layout.named.mkdir(mode=0o755)
    for sub in ("cfg", "state", "work"):
        (layout.named / sub).symlink_to(layout.real / sub)


def tmpfs_workdirs(layout: Layout) -> None:
    """The workdirs on a filesystem of their own (a tmpfs, 0700) inside the 0700 directory."""
    closed(layout)
    where = layout.real / "work"
    options = "mode=0700,size=64m"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "fw-work", str(where)], check=True)


@pytest.fixture
def top() -> Iterator[Path]:
    """A directory outside /tmp (which every sandbox covers with its own), removed after,
    with whatever ran from it."""
    where = Path("/var/tmp") / f"fw-layout-{uuid.uuid4().hex[:10]}"
    where.mkdir(mode=0o755)
    yield where
    for pid in processes_under(where):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounted if m.startswith(f"{where}/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(where, ignore_errors=True)


def deploy(layout: Layout) -> None:
    """Two hostile agents in their workdirs, and what each will try to reach."""
    state = layout.real / "state"
    entries = ""
    for name in NAMES:
        work = layout.work(name)
        work.mkdir()
        shutil.copy(HOSTILE, work / HOSTILE.name)
        entries += (
            f"  - name: {name}\n    runtime: command\n"
            f"    argv: [{sys.executable}, -I, {HOSTILE.name}]\n"
            f"    workdir: {work}\n"
        )
    layout.config.write_text(
        f"state_dir: {layout.named / 'state'}\nconnectors:\n  console: {{}}\n"
        "defaults:\n  stop_grace_seconds: 1\nagents:\n" + entries
    )
    for me, other in (NAMES, NAMES[::-1]):
        targets = {
            "state_dir": str(state),
            "config": str(layout.real / "cfg" / "fw.yaml"),
            "metering": str(state / "metering.json"),
            "other_work": str(layout.real / "work" / other / "mine.txt"),
            "other_home": str(state / "agents" / other / "home" / "mine.txt"),
            "outside": str(layout.top / "outside.txt"),
        }
        (layout.work(me) / "targets.json").write_text(json.dumps(targets))


@pytest.mark.parametrize("lay_out", [closed, symlinked, tmpfs_workdirs], ids=lambda f: f.__name__)
def test_agents_start_and_stay_in_their_lanes_on_the_operators_layout(
    top: Path, lay_out: Callable[[Layout], None]
) -> None:
    layout = Layout(top)
    lay_out(layout)
    deploy(layout)
    checked = check_config(layout.config)
    assert checked.returncode == 0, checked.stderr
    assert f"sandboxes hide {layout.real} whole" in checked.stdout  # not an error
    with ConsoleBot(top, "--config", str(layout.config), env=clean_env()) as bot:
        logs = {name: layout.real / "state" / "agents" / name / "output.log" for name in NAMES}
        for name in NAMES:
            bot.command(f"spawn {name}", rf"Agent {name} started")
            ready = lambda name=name: "hostile agent ready" in logs[name].read_text()  # noqa: E731
            assert wait_until(ready), logs[name].read_text()
            made = attack(bot, logs[name], name, "write_workdir", "write_home")
            assert all(verdict == "open" for verdict, _ in made.values()), made
        for name in NAMES:
            got = attack(bot, logs[name], name, *DENIED)
            assert all(verdict == "denied" for verdict, _ in got.values()), (name, got)
        bot.command("stop hostile", r"Stopped hostile")
        bot.command("stop good", r"Stopped good")
        assert bot.close() == 0
    assert not (top / "outside.txt").exists()


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )


def test_a_workdir_no_sandbox_can_serve_is_named_with_the_fix_by_check_config_and_spawn(
    top: Path,
) -> None:
    """A workdir on a read-only filesystem cannot be handed to its agent's own user:
    `check-config` and `spawn` say which directory and what to do, and no bubblewrap line
    reaches the operator; the other agent is not held up."""
    layout = Layout(top)
    closed(layout)
    deploy(layout)
    stuck = layout.work("hostile")
    options = "ro,mode=0755,size=1m"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "fw-ro", str(stuck)], check=True)
    fix = f"its workdir {stuck} lies on a read-only filesystem (tmpfs at {stuck}): give it a"
    checked = check_config(layout.config)
    assert checked.returncode == 2, checked
    assert f"agent 'hostile' cannot start sandboxed: {fix}" in checked.stderr, checked.stderr
    with ConsoleBot(top, "--config", str(layout.config), env=clean_env()) as bot:
        bot.command("spawn hostile", r"hostile cannot start.*$")
        reply = bot.output_since_command
        assert fix in reply and "bwrap" not in reply, reply
        bot.command("spawn good", r"Agent good started")
        bot.command("stop good", r"Stopped good")
        assert bot.close() == 0
