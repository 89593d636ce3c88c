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
def landing_rig(tmp_path: Path) -> Rig:
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


async def test_squash_lands_one_commit_with_the_trailers_on_the_base(landing_rig: Rig) -> None:
    """One commit on the moved base, by Fleetwarden, naming the work and listing the
    line's commit subjects above the trailers; only the upstream's base moved."""
    line = landing_rig.line("ann", 1)
    landing_rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"}, "first")
    landing_rig.work_on(line, {"new.txt": "new\n"}, "second")
    base = landing_rig.on_base({"keep.txt": "a\nb\nc\nd\ne\n"})
    landed, push = await landing(landing_rig, line, "squash")
    assert landed.refused is None and landed.strategy == "squash"
    assert landed.new_sha == upstream_main(landing_rig) and push.pushed == [
        (landed.new_sha, "refs/heads/main")
    ]
    assert show(landing_rig, landed.new_sha, "%P") == base
    assert (
        show(landing_rig, landed.new_sha, "%an <%ae>|%cn")
        == "Fleetwarden <fleetwarden@localhost>|Fleetwarden"
    )
    # The work named, then the line's own commit subjects as a forge's squash lists them.
    assert show(landing_rig, landed.new_sha, "%B").rstrip("\n") == (
        "Add the feature\n\n* first\n* second\n\n" + "\n".join(TRAILERS)
    )
    assert run(landing_rig.upstream, "show", f"{landed.new_sha}:f.txt") == "one\nTWO\nthree"
    assert run(landing_rig.upstream, "show", f"{landed.new_sha}:keep.txt") == "a\nb\nc\nd\ne"
    assert run(landing_rig.upstream, "show", f"{landed.new_sha}:new.txt") == "new"
    # only the base moved: the line repo and the scratch repo's refs are as they were
    assert run(line.repo, "rev-parse", "refs/heads/main") == line.fork
    assert run(landing_rig.scratch, "for-each-ref") == ""


async def test_merge_makes_a_commit_with_the_base_and_the_tip_as_parents(landing_rig: Rig) -> None:
    line = landing_rig.line("ann", 1)
    tip = landing_rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"})
    base = landing_rig.on_base({"keep.txt": "A\nb\nc\nd\n"})
    landed, _ = await landing(landing_rig, line, "merge", "Merge ann's work")
    assert landed.new_sha == upstream_main(landing_rig)
    assert show(landing_rig, landed.new_sha, "%P") == f"{base} {tip}"
    assert show(landing_rig, landed.new_sha, "%s") == "Merge ann's work"
    assert "Fleetwarden-Agent: ann" in show(landing_rig, landed.new_sha, "%B")
    assert run(landing_rig.upstream, "show", f"{landed.new_sha}:keep.txt").startswith("A\n")


async def test_rebase_replays_each_commit_with_its_author_and_message(landing_rig: Rig) -> None:
    line = landing_rig.line("ann", 1)
    landing_rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"}, "first\n\nwith a body")
    landing_rig.work_on(line, {"f.txt": "one\nTWO\nthree\nfour\n", "n.txt": "n\n"}, "second")
    base = landing_rig.on_base({"keep.txt": "A\nb\nc\nd\n"})
    landed, _ = await landing(landing_rig, line, "rebase")
    new = landed.new_sha
    assert new is not None and new == upstream_main(landing_rig)
    history = run(landing_rig.upstream, "log", "--format=%s|%an|%cn", f"{base}..{new}").split("\n")
    assert history == ["second|Agent|Fleetwarden", "first|Agent|Fleetwarden"]
    assert run(landing_rig.upstream, "rev-parse", f"{new}~2") == base
    assert show(landing_rig, f"{new}~1", "%B").rstrip("\n") == "first\n\nwith a body"
    assert run(landing_rig.upstream, "show", f"{new}:f.txt") == "one\nTWO\nthree\nfour"
    assert run(landing_rig.upstream, "show", f"{new}:keep.txt").startswith("A\n")
    assert run(landing_rig.upstream, "diff", "--stat", f"{new}~1", new).count("|") == 2


async def test_rebase_onto_an_unmoved_base_keeps_fleetwarden_the_committer(
    landing_rig: Rig,
) -> None:
    """Even where the base has not moved, each commit is made anew: the agent its author,
    Fleetwarden its committer, its tree and message as they were (a forge's rebase merge)."""
    line = landing_rig.line("ann", 1)
    base = upstream_main(landing_rig)
    tip = landing_rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"}, "the work")
    landed, _ = await landing(landing_rig, line, "rebase")
    assert landed.new_sha is not None and landed.new_sha == upstream_main(landing_rig)
    assert landed.new_sha != tip
    assert (
        show(landing_rig, landed.new_sha, "%an|%cn|%s|%P") == f"Agent|Fleetwarden|the work|{base}"
    )
    assert run(landing_rig.upstream, "rev-parse", f"{landed.new_sha}^{{tree}}") == run(
        landing_rig.work, "rev-parse", f"{tip}^{{tree}}"
    )


async def test_rebase_drops_what_the_base_has_and_flattens_a_merge(landing_rig: Rig) -> None:
    line = landing_rig.line("ann", 1)
    landing_rig.work_on(line, {"keep.txt": "A\nb\nc\nd\n"}, "same as base")
    base = landing_rig.on_base({"keep.txt": "A\nb\nc\nd\n"})
    run(landing_rig.work, "checkout", "-q", line.branch)
    run(landing_rig.work, "merge", "-q", "--no-edit", "main")
    run(landing_rig.work, "push", "-q", str(line.repo), f"HEAD:refs/heads/{line.branch}")
    landing_rig.work_on(line, {"f.txt": "one\nTWO\nthree\n"}, "real work")
    landed, _ = await landing(landing_rig, line, "rebase")
    assert landed.new_sha is not None
    assert (
        run(landing_rig.upstream, "log", "--format=%s", f"{base}..{landed.new_sha}") == "real work"
    )


async def test_nothing_to_land_is_refused(landing_rig: Rig) -> None:
    line = landing_rig.line("ann", 1)
    before = landing_rig.refs()
    strategies: tuple[Strategy, ...] = ("squash", "rebase", "merge")
    for strategy in strategies:
        landed, push = await landing(landing_rig, line, strategy)
        assert landed.new_sha is None and landed.refused and "nothing to land" in landed.refused
        assert push.pushed == []
    assert landing_rig.refs() == before


@pytest.mark.parametrize("strategy", ["squash", "rebase", "merge"])
async def test_a_conflicting_land_changes_nothing_anywhere(
    landing_rig: Rig, strategy: Strategy
) -> None:
    line = landing_rig.line("ann", 1)
    landing_rig.work_on(line, {"new.txt": "fine\n"}, "clean")
    landing_rig.work_on(line, {"f.txt": "one\nmine\nthree\n"}, "conflicting")
    landing_rig.on_base({"f.txt": "one\ntheirs\nthree\n"})
    before, upstream = landing_rig.refs(), upstream_main(landing_rig)
    landed, push = await landing(landing_rig, line, strategy)
    assert landed.new_sha is None and landed.conflicts == ("f.txt",)
    assert landed.refused is not None and "main" in landed.refused
    assert push.pushed == [] and upstream_main(landing_rig) == upstream
    assert landing_rig.refs() == before


@pytest.mark.parametrize("strategy", ["squash", "rebase", "merge"])
async def test_hostile_file_names_land_and_are_named_in_a_conflict(
    landing_rig: Rig, strategy: Strategy
) -> None:
    hostile = ["new\nline.txt", "`id`.md", "-rf", "ünï ☃.txt", ":(glob)*"]
    line = landing_rig.line("ann", 1)
    landing_rig.work_on(
        line, {name: f"{n}\nann\n" for n, name in enumerate(hostile)}, "$(id)\n\n`id`"
    )
    landed, _ = await landing(landing_rig, line, strategy, "`touch /tmp/x` $(id)")
    assert landed.new_sha == upstream_main(landing_rig)
    listed = run(landing_rig.upstream, "ls-tree", "-z", "--name-only", landed.new_sha).split("\0")
    assert set(hostile) <= set(listed)
    other = landing_rig.line("bob", 2)
    landing_rig.work_on(other, {hostile[0]: "0\nbob\n", "fine.txt": "ok\n"})
    landing_rig.on_base({hostile[0]: "0\nbase\n"})
    before = landing_rig.refs()
    refused, push = await landing(landing_rig, other, strategy)
    assert refused.conflicts == (hostile[0],) and push.pushed == [] and landing_rig.refs() == before


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
