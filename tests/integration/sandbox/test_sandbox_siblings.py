"""What a sandboxed agent sees around its own workdir, against the real bubblewrap and the
real agent shim: the directories above its workdir — a checkout in the state dir, or a
workdir in the config's ``workdirs:`` — show nothing but the way down to it, never the
names of the other agents' workdirs beside it (hidden or not), and it still reads and
writes its own."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName
from fleet.sandbox.service import Sandboxes, SandboxSettings
from tests import sandbox_need
from tests.integration.sandbox.test_egress import through_shim

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
]

LOOK = """
import json, os, sys
work = sys.argv[1]
seen = {}
up = work
while True:
    up = os.path.dirname(up)
    seen[up] = sorted(os.listdir(up))
    if up == sys.argv[2]:
        break
with open(os.path.join(work, "README.md")) as fh:
    read = fh.read()
with open(os.path.join(work, "made-inside.txt"), "w") as fh:
    fh.write("written in the sandbox\\n")
print(json.dumps({"seen": seen, "read": read, "cwd": os.getcwd()}))
"""


def workdirs(tmp_path: Path, layout: str) -> tuple[SandboxSettings, Path, Path, list[Path]]:
    """Settings, the top the agent looks up to, its workdir and its neighbours' (the first
    one known to the launch, the second made since, as a later spawn's would be)."""
    state = tmp_path / "state"
    if layout == "checkouts":
        top, parent = state, state / "checkouts" / "app"
        names = ("alice-1", "bob-2", "carol-3")
        settings = SandboxSettings(state_dir=state, hidden=())
    else:
        top = parent = tmp_path / "work"
        names = ("alice", "bob", "carol")
        settings = SandboxSettings(state_dir=state, hidden=(), workdirs=top)
    for name in names:
        (parent / name).mkdir(parents=True)
        (parent / name / "README.md").write_text(f"# {name}'s work\n")
    return settings, top, parent / names[0], [parent / name for name in names[1:]]


@pytest.mark.parametrize("layout", ["checkouts", "workdirs"])
async def test_the_parents_of_a_workdir_show_only_the_way_to_it(
    tmp_path: Path, layout: str
) -> None:
    """Every directory from the agent's workdir up to the hidden top (the state dir, or the
    config's ``workdirs:``) lists only the next step down to the workdir: no sibling's
    name, whether the launch hid it or it was made since; the agent reads its files and
    writes one that is there afterwards."""
    settings, top, mine, others = workdirs(tmp_path, layout)
    home = tmp_path / "state" / "agents" / "alice" / "home"
    home.mkdir(parents=True)
    sandboxes = Sandboxes(settings)
    await sandboxes.start()
    if sandboxes.problem is not None:
        sandbox_need.missing(sandboxes.problem)
    name = AgentName("alice")
    plan = LaunchPlan(
        argv=(sys.executable, "-I", "-c", LOOK, str(mine), str(top)),
        env={"PATH": "/usr/bin:/bin"},
        cwd=mine,
    )
    try:
        wrapped = await sandboxes.wrap(
            AgentSpec(name=name, runtime="command"), plan, home, [], others[:1]
        )
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        code, out, err = await through_shim(wrapped, run_dir)
    finally:
        await sandboxes.release(name)
        await sandboxes.stop()
    assert code == 0, (out, err)
    got = json.loads(out.decode().strip().splitlines()[-1])
    expected = {  # each directory above the workdir: the way down to its own places
        str(up): sorted(
            {c.name for own in (mine, home) for c in (own, *own.parents) if c.parent == up}
        )
        for up in mine.parents
        if up.is_relative_to(top)
    }
    assert got["seen"] == expected, got["seen"]
    assert got["read"] == f"# {mine.name}'s work\n" and got["cwd"] == str(mine)
    assert (mine / "made-inside.txt").read_text() == "written in the sandbox\n"
    for other in others:  # untouched, and still there outside
        assert sorted(p.name for p in other.iterdir()) == ["README.md"]
