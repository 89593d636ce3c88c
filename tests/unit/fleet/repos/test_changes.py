"""A line's facts computed in the scratch repo, with real git: the stat, commits, base
moved, applies/conflicts, clashes with other lines (and the prefilter), the diff, unpushed
commits, and file names an agent chose to be hostile."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fleet.repos import git as g
from fleet.repos.facts import Change, CommitLine
from fleet.repos.landing import changes
from fleet.repos.landing.changes import OtherLine, change_of, diff_of, unpushed_count
from tests.unit.fleet.repos.lines_rig import Line, Rig, run

BASE = {
    "f.txt": "one\ntwo\nthree\n",
    "keep.txt": "a\nb\nc\nd\n",
    "gone.txt": "bye\n",
    "old.txt": "moving\nalong\nwith\nthis\n",
    "src/x.py": "x = 1\n",
    "src/y.py": "y = 1\n",
}
HOSTILE = [
    "new\nline.txt",
    "`rm -rf ~`.md",
    "-rf",
    "--output=x",
    "ünï cødé ☃.txt",
    ":(glob)*.txt",
    "*.txt",
    "a b/ c\t.txt",
]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    changes.forget()
    yield
    changes.forget()


@pytest.fixture
def changes_rig(tmp_path: Path) -> Rig:
    return Rig.make(tmp_path, BASE)


async def facts(rig: Rig, line: Line, others: Sequence[Line] = ()) -> Change:
    return await change_of(
        rig.scratch,
        rig.mirror,
        line.repo,
        repo="demo",
        agent=line.agent,
        branch=line.branch,
        base_ref="main",
        fork_sha=line.fork,
        others=[OtherLine(o.agent, o.branch, o.repo) for o in others],
    )


async def test_a_line_with_nothing_pushed_yet_is_an_empty_change(changes_rig: Rig) -> None:
    line = changes_rig.line("ann", 1)
    run(line.repo, "update-ref", "-d", f"refs/heads/{line.branch}")
    change = await facts(changes_rig, line)
    assert change.head_sha is None and change.files == () and change.commits == ()
    assert change.applies and change.base_moved == 0 and change.base_sha == line.fork


async def test_stat_names_each_file_with_its_plus_and_minus_and_binary_has_none(
    changes_rig: Rig,
) -> None:
    line = changes_rig.line("ann", 1)
    changes_rig.work_on(
        line,
        {
            "f.txt": "one\nTWO\nthree\nfour\n",
            "added.txt": "1\n2\n3\n",
            "gone.txt": None,
            "old.txt": None,
            "new.txt": "moving\nalong\nwith\nthis\n",
            "blob.bin": b"\x00\x01\x02binary\x00",
        },
    )
    change = await facts(changes_rig, line)
    stats = {f.path: (f.status, f.added, f.removed) for f in change.files}
    assert stats == {
        "f.txt": ("M", 2, 1),
        "added.txt": ("A", 3, 0),
        "gone.txt": ("D", 0, 1),
        "new.txt": ("R", 0, 0),
        "blob.bin": ("A", None, None),
    }
    assert (change.added, change.removed) == (5, 2)
    assert change.applies and change.conflicts == () and change.more_files == 0
    assert change.head_sha == line.tip() and change.base_sha == changes_rig.base()


async def test_commits_are_listed_newest_first_and_long_lists_are_cut(changes_rig: Rig) -> None:
    line = changes_rig.line("ann", 1)
    made = [
        changes_rig.work_on(line, {f"many/{n:02}.txt": f"{n}\n"}, f"commit {n}") for n in range(55)
    ]
    change = await facts(changes_rig, line)
    assert change.commits[:2] == (
        CommitLine(made[54][:12], "commit 54"),
        CommitLine(made[53][:12], "commit 53"),
    )
    assert len(change.commits) == changes.COMMITS_SHOWN and change.more_commits == 35
    assert len(change.files) == changes.FILES_SHOWN and change.more_files == 5
    assert change.files[0].path == "many/00.txt"


async def test_how_far_the_base_moved_since_the_fork(changes_rig: Rig) -> None:
    line = changes_rig.line("ann", 1)
    changes_rig.work_on(line, {"src/x.py": "x = 2\n"})
    changes_rig.on_base({"keep.txt": "a\nb\nc\nd\ne\n"})
    changes_rig.on_base({"other.txt": "o\n"})
    change = await facts(changes_rig, line)
    assert change.base_moved == 2 and change.base_sha == changes_rig.base() != line.fork
    # the base's own commits are not the line's, nor are its files
    assert [c.subject for c in change.commits] == ["work"]
    assert [f.path for f in change.files] == ["src/x.py"] and change.applies


async def test_a_change_that_conflicts_with_the_base_names_the_files(changes_rig: Rig) -> None:
    line = changes_rig.line("ann", 1)
    changes_rig.work_on(line, {"f.txt": "one\nmine\nthree\n", "keep.txt": "a\nb\nc\nd\nmine\n"})
    changes_rig.on_base({"f.txt": "one\ntheirs\nthree\n", "keep.txt": "A\nb\nc\nd\n"})
    change = await facts(changes_rig, line)
    assert not change.applies and change.conflicts == ("f.txt",)


async def test_two_lines_editing_the_same_lines_clash_naming_the_files(changes_rig: Rig) -> None:
    ann, bob, cat = (
        changes_rig.line("ann", 1),
        changes_rig.line("bob", 2),
        changes_rig.line("cat", 3),
    )
    changes_rig.work_on(ann, {"f.txt": "one\nann\nthree\n", "keep.txt": "ann\nb\nc\nd\n"})
    changes_rig.work_on(bob, {"f.txt": "one\nbob\nthree\n", "keep.txt": "a\nb\nc\nbob\n"})
    changes_rig.work_on(cat, {"src/y.py": "y = 'cat'\n"})
    change = await facts(changes_rig, ann, [bob, cat])
    assert change.applies
    assert [(c.agent, c.branch, c.files) for c in change.clashes] == [
        ("bob", "fw/bob/2", ("f.txt",))
    ]
    # and seen from bob's side
    mirrored = await facts(changes_rig, bob, [ann, cat])
    assert [(c.agent, c.files) for c in mirrored.clashes] == [("ann", ("f.txt",))]


async def test_lines_on_disjoint_files_or_mergeable_edits_do_not_clash(changes_rig: Rig) -> None:
    ann, bob = changes_rig.line("ann", 1), changes_rig.line("bob", 2)
    changes_rig.work_on(ann, {"keep.txt": "A\nb\nc\nd\n"})
    changes_rig.work_on(bob, {"keep.txt": "a\nb\nc\nD\n", "src/y.py": "y = 2\n"})
    changes_rig.on_base({"other.txt": "o\n"})
    assert (await facts(changes_rig, ann, [bob])).clashes == ()


async def test_only_lines_sharing_a_file_are_merged_and_their_files_are_remembered(
    changes_rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = changes_rig.line("ann", 1)
    changes_rig.work_on(ann, {"f.txt": "one\nann\nthree\n"})
    others = [changes_rig.line(f"o{n}", 10 + n) for n in range(6)]
    for n, other in enumerate(others):
        changes_rig.work_on(
            other, {f"theirs/{n}.txt": f"{n}\n"} if n else {"f.txt": "one\no\nthree\n"}
        )
    seen: list[Sequence[str]] = []
    real = g.git

    async def counting(repo: Path | None, args: Sequence[str], **kwargs: Any) -> g.Ran:
        seen.append(list(args))
        return await real(repo, args, **kwargs)

    monkeypatch.setattr(g, "git", counting)
    change = await facts(changes_rig, ann, others)
    assert [c.agent for c in change.clashes] == ["o0"]
    merges = [a for a in seen if a[0] == "merge-tree"]
    assert len(merges) == 2  # onto the base, and against the one line sharing f.txt
    assert sum(1 for a in seen if "--name-only" in a and a[0] == "diff") == 6
    seen.clear()
    again = await facts(changes_rig, ann, others)
    assert again.clashes == change.clashes
    assert not [a for a in seen if "--name-only" in a and a[0] == "diff"]  # remembered
    assert len([a for a in seen if a[0] == "merge-tree"]) == 2


async def test_dry_run_merges_leave_no_object_in_the_scratch_repo(changes_rig: Rig) -> None:
    ann, bob = changes_rig.line("ann", 1), changes_rig.line("bob", 2)
    changes_rig.work_on(ann, {"f.txt": "one\nann\nthree\n"})
    changes_rig.work_on(bob, {"f.txt": "one\nbob\nthree\n"})
    changes_rig.on_base({"f.txt": "ONE\ntwo\nthree\n"})
    before = sorted(p.relative_to(changes_rig.scratch) for p in changes_rig.scratch.rglob("*"))
    change = await facts(changes_rig, ann, [bob])
    assert not change.applies and change.clashes
    assert (
        sorted(p.relative_to(changes_rig.scratch) for p in changes_rig.scratch.rglob("*")) == before
    )


async def test_diff_of_the_branch_and_of_one_file(changes_rig: Rig) -> None:
    line = changes_rig.line("ann", 1)
    changes_rig.work_on(line, {"f.txt": "one\nTWO\nthree\n", "src/x.py": "x = 2\n"})
    changes_rig.on_base({"keep.txt": "a\nb\nc\nd\nbase\n"})
    whole = await diff_of(
        changes_rig.scratch, changes_rig.mirror, line.repo, branch=line.branch, base_ref="main"
    )
    assert "+TWO" in whole and "+x = 2" in whole and "base" not in whole
    one = await diff_of(
        changes_rig.scratch,
        changes_rig.mirror,
        line.repo,
        branch=line.branch,
        base_ref="main",
        path="f.txt",
    )
    assert "+TWO" in one and "x.py" not in one
    none = await diff_of(
        changes_rig.scratch,
        changes_rig.mirror,
        line.repo,
        branch=line.branch,
        base_ref="main",
        path="nope",
    )
    assert none == ""


async def test_a_long_diff_is_cut_and_says_so(
    changes_rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = changes_rig.line("ann", 1)
    changes_rig.work_on(line, {"big.txt": "".join(f"line {n}\n" for n in range(5000))})
    monkeypatch.setattr(changes, "DIFF_CAP", 4096)
    cut = await diff_of(
        changes_rig.scratch, changes_rig.mirror, line.repo, branch=line.branch, base_ref="main"
    )
    assert len(cut) < 4200 and "[diff cut after 4,0" in cut and cut.count("\n[diff") == 1


async def test_hostile_file_names_are_named_exactly_and_diffed_alone(changes_rig: Rig) -> None:
    ann, bob = changes_rig.line("ann", 1), changes_rig.line("bob", 2)
    changes_rig.work_on(ann, {name: f"{n}\nann\n" for n, name in enumerate(HOSTILE)})
    changes_rig.work_on(bob, {name: f"{n}\nbob\n" for n, name in enumerate(HOSTILE)})
    changes_rig.on_base({name: f"{n}\nbase\n" for n, name in enumerate(HOSTILE[:2])})
    change = await facts(changes_rig, ann, [bob])
    assert sorted(f.path for f in change.files) == sorted(HOSTILE)
    assert all((f.added, f.removed) == (2, 0) for f in change.files)
    assert sorted(change.conflicts) == sorted(HOSTILE[:2])
    assert sorted(change.clashes[0].files) == sorted(HOSTILE)
    for n, name in enumerate(HOSTILE):
        one = await diff_of(
            changes_rig.scratch,
            changes_rig.mirror,
            ann.repo,
            branch=ann.branch,
            base_ref="main",
            path=name,
        )
        assert f"+{n}\n+ann\n" in one and one.count("diff --git") == 1, name


async def test_unpushed_counts_commits_on_no_upstream_branch(changes_rig: Rig) -> None:
    line = changes_rig.line("ann", 1)
    assert (
        await unpushed_count(changes_rig.scratch, changes_rig.mirror, line.repo, line.branch) == 0
    )
    changes_rig.work_on(line, {"a.txt": "1\n"})
    tip = changes_rig.work_on(line, {"b.txt": "2\n"})
    assert (
        await unpushed_count(changes_rig.scratch, changes_rig.mirror, line.repo, line.branch) == 2
    )
    assert (
        await unpushed_count(changes_rig.scratch, changes_rig.mirror, line.repo, "fw/none/9") == 0
    )
    run(
        changes_rig.work, "push", "-q", str(changes_rig.upstream), f"{tip}:refs/heads/{line.branch}"
    )
    changes_rig.sync()
    assert (
        await unpushed_count(changes_rig.scratch, changes_rig.mirror, line.repo, line.branch) == 0
    )
    # the line's objects were read, not copied: the mirror has only what it fetched
    assert run(changes_rig.mirror, "cat-file", "-t", tip) == "commit"
