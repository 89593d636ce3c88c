"""Root or not, as the two systemd units run Fleetwarden: the real ``check-config`` and
``fleetwarden run`` say which it is and what holds. As root: the root unit's mode, a uid
per agent. As `nobody` in control groups delegated to it (what ``Delegate=yes`` gives): the
unprivileged unit's mode, one uid for all, and caps that hold — its agent's groups are
made in the delegated ones, with their limits, and the agent runs in them. As `nobody`
outside them: no caps, and why."""

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

from fleet.sandbox.host import cgroups
from tests import sandbox_need
from tests.integration.console_bot import FLEETWARDEN, ROSTER_HEAD, ConsoleBot, clean_env
from tests.integration.sandbox.test_sandbox_lanes import NOBODY, agent_pid, as_nobody

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

AGENT = """\
  - name: coder
    runtime: command
    argv: {argv}
    workdir: ./work
    restart: never
"""
# Moves itself into the groups named in $FW_JOIN (as the service manager puts a service in
# its group), then becomes what follows.
JOIN = 'for g in $FW_JOIN; do echo $$ > "$g/cgroup.procs"; done; exec "$@"'


def _delegable() -> str | None:
    """Why no group can be delegated here (None: one can)."""
    if os.geteuid() != 0:
        return "not root: making and handing over control groups needs root"
    if cgroups.place(own=Path("/dev/null")) is None:
        return f"no cgroup caps here: {cgroups.problem()}"
    return None


@pytest.fixture
def delegated() -> Iterator[list[Path]]:
    """Control groups of `nobody`'s own, as a service manager delegates them: on cgroup v1
    a memory and a pids group; on v2 a group with a leaf below it for Fleetwarden. Yields
    the groups to join; removes them all at the end."""
    name = f"fw-delegated-{uuid.uuid4().hex[:8]}"
    where = cgroups.place(own=Path("/dev/null"))
    assert where is not None
    made: list[Path] = []
    if where.version == 1:
        made = [top / name for top in where.parents]
        join = made
    else:
        (cgroups.ROOT / "cgroup.subtree_control").write_text("+memory +pids")
        made = [cgroups.ROOT / name, cgroups.ROOT / name / "orchestrator"]
        join = made[1:]
    for group in made:
        group.mkdir()
        for path in (group, *group.glob("cgroup.*"), *group.glob("tasks")):
            os.chown(path, NOBODY, NOBODY)
    try:
        yield join
    finally:
        for group in reversed(made):
            for inner in sorted(group.glob("**/"), key=lambda p: -len(p.parts)):
                if inner != group:
                    inner.rmdir()
            group.rmdir()


def _deploy(top: Path) -> Path:
    (top / "work").mkdir()
    argv = [sys.executable, "-I", "-c", "import time; print('up', flush=True); time.sleep(600)"]
    config = top / "fleetwarden.yaml"
    config.write_text(ROSTER_HEAD.format() + AGENT.format(argv=json.dumps(argv)))
    for path in (top, *top.rglob("*")):
        os.chown(path, NOBODY, NOBODY)
    return config


def _isolation(config: Path, prefix: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [*prefix, str(FLEETWARDEN), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=config.parent,
    )
    assert done.returncode == 0, done.stderr
    said = [line.split("isolation:", 1) for line in done.stdout.splitlines()]
    return [parts[1].strip() for parts in said if len(parts) == 2]


@sandbox_need.root("runs check-config as root, as the root unit does")
def test_as_root_check_config_says_the_root_unit_and_a_uid_per_agent(tmp_path: Path) -> None:
    """As root: the root unit's mode, each agent a uid of its own, caps where they hold."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER_HEAD.format() + "  []\n")
    mode, users, _, caps = _isolation(config, [], clean_env())
    assert mode == "runs as root, like the root unit (docs/systemd/fleetwarden.service)"
    assert users.startswith("each agent runs as a host uid of its own")
    held = "enforced" if cgroups.problem() is None else "NOT enforced"
    assert caps.startswith(f"per-agent cgroup memory and process caps: {held}")


@sandbox_need.needs(_delegable())
def test_as_nobody_in_delegated_groups_the_caps_hold_and_outside_them_they_do_not(
    delegated: list[Path],
) -> None:
    """As `nobody` outside its groups: the unprivileged unit's mode, one uid, no caps. In
    them: check-config and the log at start say the caps hold there; the agent's groups are
    made in them with their limits, and the agent runs in them."""
    prefix = as_nobody()
    top = Path("/var/tmp") / f"fw-modes-{uuid.uuid4().hex}"
    top.mkdir(mode=0o700)
    bot = None
    try:
        config = _deploy(top)
        env = clean_env(HOME=str(top))
        mode, users, _, caps = _isolation(config, prefix, env)
        assert mode.startswith(f"runs as nobody (uid {NOBODY}), not root, like the unprivileged")
        assert users.startswith("agents share Fleetwarden's uid")
        assert caps.startswith("per-agent cgroup memory and process caps: NOT enforced")

        joined = ["sh", "-c", JOIN, "sh", *prefix]
        env_in = {**env, "FW_JOIN": " ".join(map(str, delegated))}
        *_, caps = _isolation(config, joined, env_in)
        assert "caps: enforced (cgroup v" in caps and "in the group delegated to it" in caps, caps

        bot = ConsoleBot(top, "--config", str(config), env=env_in, prefix=joined)
        bot.command("spawn coder", r"Agent coder started", timeout=60)
        state = top / "state"
        agent = f"/{cgroups.group_of(state)}/coder"
        groups = Path(f"/proc/{agent_pid(state, 'coder')}/cgroup").read_text()
        inside = [line for line in groups.splitlines() if line.endswith(agent)]
        assert inside, groups
        # v1: the memory and pids groups it was put in; v2: the delegated group above its leaf
        parents = delegated if len(delegated) == 2 else [delegated[0].parent]
        for group in (parent / cgroups.group_of(state) / "coder" for parent in parents):
            assert group.is_dir() and group.stat().st_uid == NOBODY, group
            limits = ("pids.max", "memory.max", "memory.limit_in_bytes")
            assert {f for f in limits if (group / f).exists()}, group
        assert (parents[-1] / cgroups.group_of(state) / "coder" / "pids.max").read_text() == (
            f"{cgroups.PIDS_MAX}\n"
        )
        log = (state / "fleetwarden.log").read_text()
        assert "sandbox lanes: runs as nobody" in log and "in the group delegated to it" in log
        bot.command("stop coder", r"Stopped coder")
        assert bot.close() == 0
    finally:
        if bot is not None and bot.proc.poll() is None:
            bot.kill()
        shutil.rmtree(top, ignore_errors=True)


UNITS = Path(__file__).resolve().parents[3] / "docs" / "systemd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_both_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """The root unit runs as root; the unprivileged one as `fleetwarden`, with its control
    group delegated and Fleetwarden in a leaf of it; systemd finds nothing wrong in either
    (one older than 254 only does not know DelegateSubgroup=, and says so)."""
    settings = {}
    for name in ("fleetwarden.service", "fleetwarden-unprivileged.service"):
        text = (UNITS / name).read_text()
        settings[name] = {
            key: value
            for key, _, value in (line.partition("=") for line in text.splitlines())
            if value and not key.startswith("#")
        }
        local = tmp_path / name  # the installed path of the CLI is this checkout's here
        local.write_text(text.replace("/opt/fleetwarden/.venv/bin/fleetwarden", str(FLEETWARDEN)))
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(local)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        said = [
            line
            for line in (done.stdout + done.stderr).splitlines()
            if "Unknown key 'DelegateSubgroup'" not in line and line.strip()
        ]
        assert said == [], said
    root, plain = settings["fleetwarden.service"], settings["fleetwarden-unprivileged.service"]
    assert root["User"] == "root" and "Delegate" not in root
    assert plain["User"] == "fleetwarden" and plain["Delegate"] == "yes"
    assert plain["DelegateSubgroup"] == "orchestrator"
    assert root["KillMode"] == plain["KillMode"] == "process"
