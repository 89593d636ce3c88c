"""Landing a line on its base with real git: squash, merge and rebase commits made in the
scratch repo and pushed upstream fast-forward; a conflicting land changes nothing
anywhere; and the compare URL of a pushed branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.repos import git as g
from fleet.repos.facts import Landed
from fleet.repos.landing.strategies import LandWords, Strategy, compare_url, land
from tests.unit.fleet.repos.lines_rig import Line, Rig, run

BASE = {"f.txt": "one\ntwo\nthree\n", "keep.txt": "a\nb\nc\nd\n"}
TRAILERS = (
    "Fleetwarden-Run: 42",
    "Fleetwarden-Agent: ann",
    "Co-authored-by: Op Erator <op@example.org>",
)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig.make(tmp_path, BASE)


class Upstream:
    """The caller's fast-forward push of the new base commit, from the scratch repo."""

    def __init__(self, rig: Rig, line: Line) -> None:
        self.rig, self.line = rig, line
        self.pushed: list[tuple[str, str]] = []

    async def __call__(self, sha: str, ref: str) -> None:
        self.pushed.append((sha, ref))
        await g.git(
            self.rig.scratch,
            ["push", "-q", str(self.rig.upstream), f"{sha}:{ref}"],
            env=g.alternates(self.line.repo),
        )
        self.rig.sync()


async def landing(
    rig: Rig, line: Line, strategy: Strategy, message: str = "Add the feature"
) -> tuple[Landed, Upstream]:
    push = Upstream(rig, line)
    landed = await land(
        rig.scratch,
        rig.mirror,
        line.repo,
        branch=line.branch,
        base_ref="main",
        strategy=strategy,
        words=LandWords(message=message, trailers=TRAILERS),
        upstream_push=push,
    )
    return landed, push


def upstream_main(rig: Rig) -> str:
    return run(rig.upstream, "rev-parse", "refs/heads/main")


def show(rig: Rig, sha: str, fmt: str) -> str:
    return run(rig.upstream, "log", "-1", f"--format={fmt}", sha)


async def test_squash_lands_one_commit_with_the_trailers_on_the_base(rig: Rig) -> None:
    """One commit on the moved base, by Fleetwarden, naming the work and listing the
    line's commit subjects above the trailers; only the upstream's base moved."""
    line = rig.line("ann", 1)
    rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"}, "first")
    rig.work_on(line, {"new.txt": "new\n"}, "second")
    base = rig.on_base({"keep.txt": "a\nb\nc\nd\ne\n"})
    landed, push = await landing(rig, line, "squash")
    assert landed.refused is None and landed.strategy == "squash"
    assert landed.new_sha == upstream_main(rig) and push.pushed == [
        (landed.new_sha, "refs/heads/main")
    ]
    assert show(rig, landed.new_sha, "%P") == base
    assert (
        show(rig, landed.new_sha, "%an <%ae>|%cn")
        == "Fleetwarden <fleetwarden@localhost>|Fleetwarden"
    )
    # The work named, then the line's own commit subjects as a forge's squash lists them.
    assert show(rig, landed.new_sha, "%B").rstrip("\n") == (
        "Add the feature\n\n* first\n* second\n\n" + "\n".join(TRAILERS)
    )
    assert run(rig.upstream, "show", f"{landed.new_sha}:f.txt") == "one\nTWO\nthree"
    assert run(rig.upstream, "show", f"{landed.new_sha}:keep.txt") == "a\nb\nc\nd\ne"
    assert run(rig.upstream, "show", f"{landed.new_sha}:new.txt") == "new"
    # only the base moved: the line repo and the scratch repo's refs are as they were
    assert run(line.repo, "rev-parse", "refs/heads/main") == line.fork
    assert run(rig.scratch, "for-each-ref") == ""


async def test_merge_makes_a_commit_with_the_base_and_the_tip_as_parents(rig: Rig) -> None:
    line = rig.line("ann", 1)
    tip = rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"})
    base = rig.on_base({"keep.txt": "A\nb\nc\nd\n"})
    landed, _ = await landing(rig, line, "merge", "Merge ann's work")
    assert landed.new_sha == upstream_main(rig)
    assert show(rig, landed.new_sha, "%P") == f"{base} {tip}"
    assert show(rig, landed.new_sha, "%s") == "Merge ann's work"
    assert "Fleetwarden-Agent: ann" in show(rig, landed.new_sha, "%B")
    assert run(rig.upstream, "show", f"{landed.new_sha}:keep.txt").startswith("A\n")


async def test_rebase_replays_each_commit_with_its_author_and_message(rig: Rig) -> None:
    line = rig.line("ann", 1)
    rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"}, "first\n\nwith a body")
    rig.work_on(line, {"f.txt": "one\nTWO\nthree\nfour\n", "n.txt": "n\n"}, "second")
    base = rig.on_base({"keep.txt": "A\nb\nc\nd\n"})
    landed, _ = await landing(rig, line, "rebase")
    new = landed.new_sha
    assert new is not None and new == upstream_main(rig)
    history = run(rig.upstream, "log", "--format=%s|%an|%cn", f"{base}..{new}").split("\n")
    assert history == ["second|Agent|Fleetwarden", "first|Agent|Fleetwarden"]
    assert run(rig.upstream, "rev-parse", f"{new}~2") == base
    assert show(rig, f"{new}~1", "%B").rstrip("\n") == "first\n\nwith a body"
    assert run(rig.upstream, "show", f"{new}:f.txt") == "one\nTWO\nthree\nfour"
    assert run(rig.upstream, "show", f"{new}:keep.txt").startswith("A\n")
    assert run(rig.upstream, "diff", "--stat", f"{new}~1", new).count("|") == 2


async def test_rebase_onto_an_unmoved_base_keeps_fleetwarden_the_committer(rig: Rig) -> None:
    """Even where the base has not moved, each commit is made anew: the agent its author,
    Fleetwarden its committer, its tree and message as they were (a forge's rebase merge)."""
    line = rig.line("ann", 1)
    base = upstream_main(rig)
    tip = rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"}, "the work")
    landed, _ = await landing(rig, line, "rebase")
    assert landed.new_sha is not None and landed.new_sha == upstream_main(rig)
    assert landed.new_sha != tip
    assert show(rig, landed.new_sha, "%an|%cn|%s|%P") == f"Agent|Fleetwarden|the work|{base}"
    assert run(rig.upstream, "rev-parse", f"{landed.new_sha}^{{tree}}") == run(
        rig.work, "rev-parse", f"{tip}^{{tree}}"
    )


async def test_rebase_drops_what_the_base_has_and_flattens_a_merge(rig: Rig) -> None:
    line = rig.line("ann", 1)
    rig.work_on(line, {"keep.txt": "A\nb\nc\nd\n"}, "same as base")
    base = rig.on_base({"keep.txt": "A\nb\nc\nd\n"})
    run(rig.work, "checkout", "-q", line.branch)
    run(rig.work, "merge", "-q", "--no-edit", "main")
    run(rig.work, "push", "-q", str(line.repo), f"HEAD:refs/heads/{line.branch}")
    rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"}, "real work")
    landed, _ = await landing(rig, line, "rebase")
    assert landed.new_sha is not None
    assert run(rig.upstream, "log", "--format=%s", f"{base}..{landed.new_sha}") == "real work"


async def test_nothing_to_land_is_refused(rig: Rig) -> None:
    line = rig.line("ann", 1)
    before = rig.refs()
    strategies: tuple[Strategy, ...] = ("squash", "rebase", "merge")
    for strategy in strategies:
        landed, push = await landing(rig, line, strategy)
        assert landed.new_sha is None and landed.refused and "nothing to land" in landed.refused
        assert push.pushed == []
    assert rig.refs() == before


@pytest.mark.parametrize("strategy", ["squash", "rebase", "merge"])
async def test_a_conflicting_land_changes_nothing_anywhere(rig: Rig, strategy: Strategy) -> None:
    line = rig.line("ann", 1)
    rig.work_on(line, {"new.txt": "fine\n"}, "clean")
    rig.work_on(line, {"f.txt": "one\nmine\nthree\n"}, "conflicting")
    rig.on_base({"f.txt": "one\ntheirs\nthree\n"})
    before, upstream = rig.refs(), upstream_main(rig)
    landed, push = await landing(rig, line, strategy)
    assert landed.new_sha is None and landed.conflicts == ("f.txt",)
    assert landed.refused is not None and "main" in landed.refused
    assert push.pushed == [] and upstream_main(rig) == upstream
    assert rig.refs() == before


@pytest.mark.parametrize("strategy", ["squash", "rebase", "merge"])
async def test_hostile_file_names_land_and_are_named_in_a_conflict(
    rig: Rig, strategy: Strategy
) -> None:
    hostile = ["new\nline.txt", "`id`.md", "-rf", "ünï ☃.txt", ":(glob)*"]
    line = rig.line("ann", 1)
    rig.work_on(line, {name: f"{n}\nann\n" for n, name in enumerate(hostile)}, "$(id)\n\n`id`")
    landed, _ = await landing(rig, line, strategy, "`touch /tmp/x` $(id)")
    assert landed.new_sha == upstream_main(rig)
    listed = run(rig.upstream, "ls-tree", "-z", "--name-only", landed.new_sha).split("\0")
    assert set(hostile) <= set(listed)
    other = rig.line("bob", 2)
    rig.work_on(other, {hostile[0]: "0\nbob\n", "fine.txt": "ok\n"})
    rig.on_base({hostile[0]: "0\nbase\n"})
    before = rig.refs()
    refused, push = await landing(rig, other, strategy)
    assert refused.conflicts == (hostile[0],) and push.pushed == [] and rig.refs() == before


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/o/r.git", "https://github.com/o/r/compare/main...fw/ann/1"),
        (
            "https://x-access-token:SECRET@github.com/o/r",
            "https://github.com/o/r/compare/main...fw/ann/1",
        ),
        ("git@github.com:o/r.git", "https://github.com/o/r/compare/main...fw/ann/1"),
        ("ssh://git@github.com/o/r.git", "https://github.com/o/r/compare/main...fw/ann/1"),
        ("https://codeberg.org/o/r.git", "https://codeberg.org/o/r/compare/main...fw/ann/1"),
        (
            "https://tok@git.example.org:3000/o/r",
            "https://git.example.org:3000/o/r/compare/main...fw/ann/1",
        ),
        ("https://gitlab.com/g/sub/r.git", "https://gitlab.com/g/sub/r/-/compare/main...fw/ann/1"),
        ("https://git.example.org/a/b/c.git", "https://git.example.org/a/b/c.git fw/ann/1"),
        ("https://bitbucket.org/o/r.git", "https://bitbucket.org/o/r.git fw/ann/1"),
        ("http://user:pw@10.0.0.2/o/r.git", "http://10.0.0.2/o/r.git fw/ann/1"),
        ("ssh://git:pw@git.example.org/o/r.git", "ssh://git@git.example.org/o/r.git fw/ann/1"),
        ("git@git.example.org:o/r.git", "git@git.example.org:o/r.git fw/ann/1"),
        ("/srv/git/r.git", "/srv/git/r.git fw/ann/1"),
    ],
)
def test_compare_url(url: str, expected: str) -> None:
    shown = compare_url(url, "main", "fw/ann/1")
    assert shown == expected
    assert "SECRET" not in shown and "pw" not in shown and "tok@" not in shown
