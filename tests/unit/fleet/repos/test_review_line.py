"""A review agent's view of a line kept as Fleetwarden keeps one (its door repo's objects
in the mirror): the change from the line's fork to its commit, and a checkout detached at
that commit with no remote, made from the door repo without changing a ref anywhere."""

from __future__ import annotations

from pathlib import Path

from fleet.repos import git as g
from fleet.repos.line.review import line_diff, make_review_checkout
from tests.unit.fleet.repos.lines_rig import Rig, run


async def test_a_review_checkout_of_a_line_changes_no_ref(tmp_path: Path) -> None:
    rig = Rig.make(tmp_path, {"app.py": "print('base')\n"})
    line = rig.line("coder", 3)
    first = rig.work_on(line, {"app.py": "print('one')\n"}, "first")
    tip = rig.work_on(line, {"app.py": "print('two')\n", "notes.md": "done\n"}, "second")
    before = rig.refs()
    dest = tmp_path / "checkouts" / "demo" / "reviewer.review-1"
    await make_review_checkout(line.repo, dest, first)
    assert run(dest, "rev-parse", "HEAD") == first
    assert (dest / "app.py").read_text() == "print('one')\n" and not (dest / "notes.md").exists()
    assert run(dest, "remote") == "" and run(dest, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD"
    # objects of its own, copied: nothing written in it reaches the line's or the mirror's
    assert not (dest / ".git" / "objects" / "info" / "alternates").exists()
    hooks = dest / ".git" / "hooks"
    assert all(p.suffix == ".sample" for p in hooks.iterdir()) if hooks.exists() else True
    await make_review_checkout(line.repo, dest, tip)  # a lost one's place taken again
    assert run(dest, "rev-parse", "HEAD") == tip and (dest / "notes.md").exists()
    assert rig.refs() == before
    diff = await line_diff(line.repo, line.fork, tip)
    assert "app.py" in diff.text and "notes.md" in diff.text and "+print('two')" in diff.text
    assert "+print('one')" not in diff.text and diff.whole == 0


async def test_a_huge_change_is_read_only_as_far_as_its_cap(tmp_path: Path) -> None:
    """A commit of a file that packs small but diffs large (36 MB of patch here; a push
    of a few MB could make gigabytes): the change is read up to its cap and the rest only
    counted, never held whole, and the prompt's count of its bytes is the whole's."""
    rig = Rig.make(tmp_path, {"app.py": "print('base')\n"})
    line = rig.line("coder", 3)
    tip = rig.work_on(line, {"big.txt": b"x\n" * 12_000_000}, "a big file")
    ran = await g.git(line.repo, ["diff", "--no-color", line.fork, tip, "--"], keep=1024)
    assert len(ran.out) == 1024 and ran.more > 36_000_000 - 1024
    diff = await line_diff(line.repo, line.fork, tip, cap=4096)
    assert len(diff.text.encode()) <= 4096 and "+x" in diff.text
    assert diff.whole > 36_000_000  # past git's own output cap of 32 MiB: all of it counted
