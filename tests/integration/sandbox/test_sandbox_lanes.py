"""One lane per agent, against the real bubblewrap and the real `fleetwarden run`: as root,
a hostile agent (tests/fakes/agents/hostile_agent.py) runs as a host uid of its own with no
capabilities, cannot unmount or remount what hides Fleetwarden's state, make a user
namespace, read /etc/shadow, a root 0600 file anywhere, /root, or write outside its
places; two agents cannot read each other's files in their workdirs and homes. The same
lanes hold when Fleetwarden runs as an ordinary user (here: `nobody`), by mounts alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.backends.process import SHIM
from fleet.sandbox.host import cgroups
from fleet.sandbox.lanes import FIRST_UID
from fleet.sandbox.policy import FORWARDER, Layout, bwrap_argv
from tests import sandbox_need
from tests.integration.console_bot import (
    FLEETWARDEN,
    ROSTER_HEAD,
    ConsoleBot,
    clean_env,
    wait_until,
)
from tests.integration.sandbox.test_sandbox import HOSTILE, agent_entry, attack

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
]

NOBODY = 65534
ROSTER = (
    ROSTER_HEAD
    + """\
{hostile}{good}"""
)
ESCAPES = (
    "umount_state",
    "umount_tmp",
    "remount_root",
    "new_userns",
    "shadow",
    "metering",
    "write_outside",
    "write_root",
)
NO_CAPS = "0000000000000000"


@pytest.fixture
def root_file() -> Iterator[Path]:
    """A world-readable file under /root: only hiding /root keeps it from agents."""
    path = Path("/root") / f"fw-lanes-{uuid.uuid4().hex}.txt"
    path.write_text("root's notes\n")
    path.chmod(0o644)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def root_secret() -> Iterator[Path]:
    """A 0600 file outside every hidden path, in a directory anyone may walk through."""
    where = Path("/var/tmp") / f"fw-lanes-{uuid.uuid4().hex}"
    where.mkdir(mode=0o755)
    secret = where / "secrets.env"
    secret.write_text("DATABASE_PASSWORD=fake-root-secret\n")
    secret.chmod(0o600)
    yield secret
    shutil.rmtree(where, ignore_errors=True)


def deploy(top: Path, owner: int | None = None) -> Path:
    """Two agents, `hostile` and `good`, each running the hostile agent in its own workdir."""
    for name in ("hostile-work", "good-work"):
        (top / name).mkdir()
        shutil.copy(HOSTILE, top / name / HOSTILE.name)
    config = top / "fleetwarden.yaml"
    config.write_text(
        ROSTER.format(
            hostile=agent_entry("hostile", "hostile-work"), good=agent_entry("good", "good-work")
        )
    )
    if owner is not None:
        for path in (top, *top.rglob("*")):
            os.chown(path, owner, owner)
    return config


def targets(top: Path, me: str, other: str, **extra: str) -> None:
    """What ``me`` will try to reach: the other agent's files, the state, the outside."""
    state = top / "state"
    record = {
        "state_dir": str(state),
        "metering": str(state / "metering.json"),
        "other_work": str(top / f"{other}-work" / "mine.txt"),
        "other_home": str(state / "agents" / other / "home" / "mine.txt"),
        "outside": str(top / "outside.txt"),
        "outside_root": str(Path("/var/tmp") / f"fw-lanes-{uuid.uuid4().hex}"),
        **extra,
    }
    path = top / f"{me}-work" / "targets.json"
    path.write_text(json.dumps(record))
    os.chown(path, (top / f"{me}-work").stat().st_uid, (top / f"{me}-work").stat().st_gid)


def agent_pid(state: Path, agent: str) -> int:
    run = sorted((state / "agents" / agent / "runs").iterdir())[-1]
    return int((run / "agent.pid").read_text())


def host_uid(state: Path, agent: str) -> int:
    """The host uid the agent's process runs as, from its run's ``agent.pid``."""
    pid = agent_pid(state, agent)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {agent}'s pid {pid}")


def spawn_both(bot: ConsoleBot, top: Path) -> dict[str, Path]:
    logs = {name: top / "state" / "agents" / name / "output.log" for name in ("hostile", "good")}
    for name in ("hostile", "good"):
        bot.command(f"spawn {name}", rf"Agent {name} started")
        assert wait_until(lambda name=name: "hostile agent ready" in logs[name].read_text())
        made = attack(bot, logs[name], name, "write_workdir", "write_home")
        assert made["write_workdir"][0] == "open" and made["write_home"][0] == "open", made
    return logs


@sandbox_need.root("runs Fleetwarden as root, as CI does")
def test_as_root_an_agent_is_its_own_unprivileged_user_and_cannot_leave_its_lane(
    tmp_path: Path, root_secret: Path, root_file: Path
) -> None:
    """Fleetwarden as root: each agent runs as a distinct host uid from the lane range with
    no capabilities; unmounting the state dir's cover, remounting / read-write, a new user
    namespace, /etc/shadow, a root 0600 file, a file under /root, writes outside and the
    other agent's workdir and home files are all denied, both ways."""
    config = deploy(tmp_path)
    secrets = {"root_secret": str(root_secret), "root_file": str(root_file)}
    targets(tmp_path, "hostile", "good", **secrets)
    targets(tmp_path, "good", "hostile", **secrets)
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env())
    try:
        lanes_hold_as_root(bot, tmp_path)
    finally:
        bot.kill()


def lanes_hold_as_root(bot: ConsoleBot, tmp_path: Path) -> None:
    logs = spawn_both(bot, tmp_path)
    state = tmp_path / "state"
    uids = {name: host_uid(state, name) for name in logs}
    assert all(uid >= FIRST_UID for uid in uids.values()) and uids["hostile"] != uids["good"]
    if cgroups.problem() is None:  # and in control groups of its own
        groups = Path(f"/proc/{agent_pid(state, 'hostile')}/cgroup").read_text()
        assert f"/{cgroups.group_of(state)}/hostile" in groups, groups

    lane = ("root_secret", "root_file", "other_work", "other_home")
    got = attack(bot, logs["hostile"], "hostile", *ESCAPES, *lane, "identity")
    for name in (*ESCAPES, *lane):
        assert got[name][0] == "denied", f"{name} was not stopped: {got[name]}"
    identity = dict(part.split("=", 1) for part in got["identity"][1].split(" ", 2))
    assert identity["uid"] != "0" and identity["capeff"] == NO_CAPS, identity
    assert not identity["uid_map"].startswith("0 0"), identity
    back = attack(bot, logs["good"], "good", *lane)
    assert all(verdict == "denied" for verdict, _ in back.values()), back
    assert not (tmp_path / "outside.txt").exists()
    assert (tmp_path / "hostile-work" / "mine.txt").stat().st_uid == uids["hostile"]

    bot.command("stop hostile", r"Stopped hostile")
    bot.command("stop good", r"Stopped good")
    assert bot.close() == 0
    for parent in (cgroups.ROOT, cgroups.ROOT / "memory", cgroups.ROOT / "pids"):
        assert not (parent / cgroups.group_of(state)).exists()  # removed with their runs


AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
# When the test's Python lives under a 0700 /root (pyenv), `nobody` reaches it through a
# mount namespace of the test's own, where /root is an open tmpfs holding only that install.
REACH_PYTHON = """\
set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755 fw-stage /dev/shm
mkdir -p /dev/shm/python && mount --rbind "$PYTHON_HOME" /dev/shm/python
mount -t tmpfs -o mode=0755 fw-root /root
mkdir -p "$PYTHON_HOME" && mount --rbind /dev/shm/python "$PYTHON_HOME"
exec "$@"
"""


def as_nobody() -> list[str]:
    """The prefix that runs Fleetwarden as `nobody`; skips (or fails, when the sandbox is
    required) the test when it cannot here."""
    if shutil.which("setpriv") is None:
        sandbox_need.missing("needs setpriv (util-linux) to run Fleetwarden as `nobody`")
    closed = [p for p in FLEETWARDEN.parents if not os.stat(p).st_mode & 0o001]
    if closed:  # a checkout in a 0700 directory (mktemp -d) is out of `nobody`'s reach
        sandbox_need.missing(
            f"`nobody` cannot reach {FLEETWARDEN}: {closed[0]} is closed to others"
        )
    reach = ["test", "-x", os.path.realpath(sys.executable)]  # what Fleetwarden checks
    if _runs([*AS_NOBODY, *reach]):
        return AS_NOBODY
    home = Path(sys.base_prefix)
    if not home.is_relative_to("/root") or shutil.which("unshare") is None:
        sandbox_need.missing(
            f"`nobody` cannot run {FLEETWARDEN}: its Python {home} is out of reach"
        )
    prefix = ["unshare", "-m", "sh", "-c", REACH_PYTHON, "sh", *AS_NOBODY]
    if not _runs([*prefix, *reach], PYTHON_HOME=str(home)):
        sandbox_need.missing(f"`nobody` cannot run {FLEETWARDEN}, even with {home} shown to it")
    return ["env", f"PYTHON_HOME={home}", *prefix]


def _runs(argv: list[str], **env: str) -> bool:
    done = subprocess.run(argv, capture_output=True, timeout=60, env={**os.environ, **env})
    return done.returncode == 0


@sandbox_need.root("needs root to run Fleetwarden as `nobody`")
def test_as_an_ordinary_user_agents_share_its_uid_but_not_each_others_files() -> None:
    """Fleetwarden as `nobody`: agents run as that uid with no capabilities, cannot undo
    the sandbox, and still see neither Fleetwarden's state nor each other's files."""
    prefix = as_nobody()
    top = Path("/var/tmp") / f"fw-lanes-nobody-{uuid.uuid4().hex}"
    top.mkdir(mode=0o700)
    try:
        config = deploy(top, owner=NOBODY)
        targets(top, "hostile", "good")
        targets(top, "good", "hostile")
        env = clean_env(HOME=str(top))
        bot = ConsoleBot(top, "--config", str(config), env=env, prefix=prefix)
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise
    try:
        logs = spawn_both(bot, top)
        assert host_uid(top / "state", "hostile") == NOBODY
        words = ("umount_state", "remount_root", "new_userns", "metering", "write_outside")
        got = attack(bot, logs["hostile"], "hostile", *words, "other_work", "other_home")
        assert all(verdict == "denied" for verdict, _ in got.values()), got
        identity = attack(bot, logs["hostile"], "hostile", "identity")["identity"][1]
        assert f"uid={NOBODY} capeff={NO_CAPS}" in identity, identity
        back = attack(bot, logs["good"], "good", "other_work", "other_home")
        assert all(verdict == "denied" for verdict, _ in back.values()), back
        bot.command("stop hostile", r"Stopped hostile")
        bot.command("stop good", r"Stopped good")
        assert bot.close() == 0
    finally:
        bot.kill()
        shutil.rmtree(top, ignore_errors=True)


def run_capped(
    top: Path, caps: cgroups.Caps, command: list[str]
) -> subprocess.CompletedProcess[str]:
    """``command`` run by the agent shim in a real sandbox put in the groups of ``caps``."""
    for name in ("work", "home", "run"):
        (top / name).mkdir(exist_ok=True)
    # What the shim and the forwarder need, wherever the checkout and its venv are (a
    # checkout under /tmp is covered by the sandbox's own /tmp).
    needed = (FORWARDER.parents[2], Path(sys.prefix), Path(sys.base_prefix))
    layout = Layout(workdir=top / "work", home=top / "home", hidden=(), needed=needed)
    argv = bwrap_argv(layout, command, bwrap="bwrap", python=sys.executable)
    groups = [word for d in caps.dirs for word in ("--cgroup", str(d))]
    return subprocess.run(
        [sys.executable, "-I", str(SHIM), str(top / "run"), "--sandbox", *groups, "--", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # the shim leads the group it cleans up
    )


@sandbox_need.needs(None if cgroups.problem() is None else f"no cgroup caps: {cgroups.problem()}")
def test_the_kernel_caps_a_sandboxs_processes_and_memory_in_its_control_groups(
    tmp_path: Path,
) -> None:
    """The shim puts the whole sandbox in the agent's control groups: with pids.max at 16,
    forking 40 children is refused past the cap; with 64 MiB of memory, filling 256 MiB
    gets the sandbox's process killed by the kernel."""
    name, group = f"fw-test-{uuid.uuid4().hex[:8]}", cgroups.group_of(tmp_path)
    caps = cgroups.prepare(name, memory=64 << 20, group=group)
    assert caps is not None
    try:
        pids = next(d for d in caps.dirs if (d / "pids.max").exists())
        (pids / "pids.max").write_text("16")
        loop = "n=0; while [ $n -lt 40 ]; do sleep 30 & n=$((n+1)); done; echo made $n"
        forked = run_capped(tmp_path, caps, ["sh", "-c", loop])
        assert "made 40" not in forked.stdout and "fork" in forked.stderr.lower(), forked
        fill = "b = b'x' * (256 << 20); print('filled', len(b))"
        filled = run_capped(tmp_path, caps, ["python3", "-c", fill])
        assert filled.returncode == 128 + 9 and "filled" not in filled.stdout, filled
    finally:
        for here in caps.dirs:
            assert wait_until(lambda here=here: not (here / "cgroup.procs").read_text().split())
        cgroups.remove(name, group=group)
        assert not any(here.exists() for here in caps.dirs)
