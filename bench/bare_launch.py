"""The floor of ``bench.label_to_agent``: a bare sandboxed launch of the agents' command in
a checkout already owned by the agent's uid.

The sandbox is the product's (:func:`fleet.sandbox.policy.bwrap_argv`: the same namespaces,
the host read-only, a private ``/tmp`` and ``/run``, the state dirs, ``/root`` and
``/home`` hidden, the secret files masked, Fleetwarden's forwarder as the first command,
egress open as the bench's agents have it), started by bubblewrap as a host uid of its own
(uid = gid, no supplementary groups) by a launcher started once before the rounds: per
launch it forks, stages the binds in a mount namespace of its own as the shim does
(:func:`fleet.backends.agent_shim.stage_binds`: that uid cannot walk into ``/root``, where
this Python lies), drops to the uid and execs bubblewrap. What the bare launch leaves out
is the product's own: the shim's start (a fresh Python), its rlimits and control group,
the lane's hand-over (the chown of the tree to the agent's uid), the run's records. The
checkout and the HOME are that uid's once, before any round.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.processes import BenchError
from fleet.lane_files import hand_over
from fleet.model import LaunchPlan
from fleet.repos import git as g
from fleet.sandbox.places import SYSTEM_HIDDEN, needed_paths, secret_files
from fleet.sandbox.policy import Layout, bwrap_argv

BARE_UID = 1_650_100  # the bare launch's agent uid, far from the bots' and the floor's


class BareLaunch:
    """A clone of ``mirror``'s ``base`` at ``root/checkout`` and a HOME, both ``BARE_UID``'s,
    and the product's sandbox command line for ``script`` in it."""

    def __init__(self, root: Path, hidden: Sequence[Path], script: str, mark: str) -> None:
        self.root = root
        self.checkout = root / "checkout"
        self.home = root / "home"
        self.mark = self.checkout / mark
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home)}
        command = ("sh", "-c", script)
        plan = LaunchPlan(argv=command, env=self.env, cwd=self.checkout)
        hiding = (*hidden, *(p for p in SYSTEM_HIDDEN if p.exists()))
        layout = Layout(
            workdir=self.checkout,
            home=self.home,
            hidden=hiding,
            needed=needed_paths(plan, self.home, hiding, python=sys.executable),
            masked=secret_files(),
        )
        bwrap = shutil.which("bwrap") or "bwrap"
        self.argv = bwrap_argv(layout, command, bwrap=bwrap, python=sys.executable)

    async def make(self, mirror: Path, base: str) -> None:
        """The checkout cloned and, with the HOME, given to ``BARE_UID``; the bench's
        directories above them ones that uid can walk through."""
        self.root.mkdir(parents=True)
        self.home.mkdir()
        await g.git(mirror, ["clone", "-q", "--no-local", "--single-branch", "-b", base,
                             str(mirror), str(self.checkout)], limit=600)  # fmt: skip
        await asyncio.to_thread(hand_over, self.checkout, BARE_UID)
        await asyncio.to_thread(hand_over, self.home, BARE_UID)
        for up in (self.root, self.root.parent):
            os.chmod(up, 0o711)

    def start(self) -> None:
        """The launcher started (a Python of its own, before any round)."""
        env = {**self.env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        self._launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(BARE_UID), *self.argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip

    def stop(self) -> None:
        launcher = getattr(self, "_launcher", None)
        if launcher is not None:
            launcher.kill()
            launcher.communicate()

    async def launch(self) -> float:
        """Seconds from just before bubblewrap is started to the command's first act."""
        self.mark.unlink(missing_ok=True)
        launcher = self._launcher
        assert launcher.stdin is not None and launcher.stdout is not None

        def once() -> tuple[float, bytes]:
            started = time.time()
            launcher.stdin.write(b"go\n")  # type: ignore[union-attr]
            launcher.stdin.flush()  # type: ignore[union-attr]
            return started, launcher.stdout.readline()  # type: ignore[union-attr]

        started, status = await asyncio.to_thread(once)
        if status.strip() != b"0" or not self.mark.is_file():
            raise BenchError(f"the bare launch ended {status.strip()!r}")
        return float(self.mark.read_text().splitlines()[0]) - started


LAUNCHER = """\
import os, sys
from fleet.backends.agent_shim import stage_binds
uid, argv = int(sys.argv[1]), sys.argv[2:]
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            command = stage_binds(argv)
            os.setgroups([]); os.setgid(uid); os.setuid(uid)
            os.execv(command[0], command)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""
