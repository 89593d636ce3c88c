"""What the git door reads of a commit object itself, piece by piece: its headers and
message parsed whole, the identity it must carry, the trailers and references only
Fleetwarden may state, the door policy's round trip through a repository's config, and
what a base's pipelines run by reference."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.repos.hook.ci_paths import ci_path, referenced, roots
from fleet.repos.hook.commits import breaches, parse, unreferenced
from fleet.repos.hook.policy import Identity, Issue, Policy, agent_identity

ME = agent_identity("coder", "local")
RULES = Policy(
    "refs/heads/fw/coder/1",
    workflows=False,
    base="refs/heads/main",
    identity=ME,
    agent="coder",
    runs=frozenset({"7"}),
    co_authors=frozenset({"Ann Lee <ann@example.org>"}),
    issue=Issue("acme/app", 5),
)
TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def raw(
    message: str,
    *,
    author: str = ME.line(),
    committer: str = ME.line(),
    extra: str = "",
) -> bytes:
    return (
        f"tree {TREE}\nauthor {author} 1700000000 +0000\n"
        f"committer {committer} 1700000000 +0000\n{extra}\n{message}"
    ).encode()


def kinds(message: str, **kw: str) -> list[tuple[str, str]]:
    return [(b.kind, b.what) for b in breaches(parse("c" * 40, raw(message, **kw)), RULES)]


def test_the_agents_identity_names_the_agent_and_its_host() -> None:
    """An address under .invalid that no forge account or mailbox can own."""
    assert agent_identity("coder", "local") == Identity("coder", "coder@local.fleetwarden.invalid")
    assert agent_identity("x", "Build Box.1").email == "x@build-box-1.fleetwarden.invalid"


def test_an_ordinary_commit_of_the_agent_passes() -> None:
    assert kinds("Add the parser\n\nIt reads issue 12's input; fixes #5.\n") == []


@pytest.mark.parametrize(
    ("field", "who"),
    [
        ("author", "Ann Lee <ann@example.org>"),
        ("committer", "coder <attacker@example.org>"),
        ("author", "Fleetwarden <fleetwarden@localhost>"),
    ],
)
def test_an_author_or_committer_not_the_agent_is_refused(field: str, who: str) -> None:
    found = kinds("work\n", **{field: who})
    assert found == [("identity", f"its {field} is {who}")]


def test_a_commit_of_a_line_made_before_identities_is_not_held_to_one() -> None:
    old = Policy("refs/heads/fw/coder/1", workflows=False, agent="coder")
    assert breaches(parse("c" * 40, raw("work\n", author="Ann <a@b>")), old) == []


def test_headers_git_never_writes_and_other_encodings_are_refused() -> None:
    found = kinds("work\n", extra="x-token ghp_0123\n")
    assert found == [("header", "an extra header 'x-token'")]
    assert kinds("work\n", extra="encoding UTF-16\n") == [("header", "a message in UTF-16")]
    assert kinds("work\n", extra="encoding utf-8\n") == []
    signed = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n"
    assert kinds("work\n", extra=signed) == []


@pytest.mark.parametrize(
    ("line", "refused"),
    [
        ("Fleetwarden-Run: 999", True),
        ("Fleetwarden-Run: 7", False),
        ("Fleetwarden-Agent: release-bot", True),
        ("fleetwarden-agent: coder", False),
        ("Fleetwarden-Approved-By: admin", True),
        ("Co-authored-by: Ann Lee <ann@example.org>", False),
        ("Co-authored-by: Bob <bob@example.org>", True),
        ("  CO-AUTHORED-BY :Mallory <m@x>", True),
        ("Signed-off-by: coder <coder@local.fleetwarden.invalid>", False),
        ("\u200bFleetwarden-Run: 99", True),
        ("Fleetwarden\u2010Run: 99", True),
        ("Fleetw\u0430rden-Run: 99", True),
        ("Fleetwarden-Run\u200b: 99", True),
        ("x\rCo-authored-by: Mallory <m@x>", True),
        ("Fix the re-try: it works", False),
    ],
)
def test_trailers_only_fleetwarden_may_state(line: str, refused: bool) -> None:
    """Its own trailers state the line's truth only; a co-author is the requester alone —
    anywhere in the message, not just its last paragraph."""
    found = kinds(f"work\n\n{line}\n\nmore text\n")
    assert bool(found) is refused, found
    if refused:
        assert found[0][0] == "trailer"


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("Fixes #99", True),
        ("fixes #5", False),
        ("Closes acme/app#99", True),
        ("Closes acme/app#5", False),
        ("Closes ACME/App#5", False),
        ("resolves other/app#5", True),
        ("see GH-12", True),
        ("see https://github.com/acme/app/issues/99 too", True),
        ("see https://github.com/acme/app/pull/5", False),
        ("step 2 of 3, issue 12", False),
        ("colour &#35;12 in html", False),
        ("a#12: GitLab reads project a's issue 12", True),
        ("Closes acme/platform/app#12, a GitLab subgroup's", True),
        ("see https://gitlab.example.com/acme/app/-/merge_requests/99", True),
        ("see https://gitlab.example.com/acme/app/-/issues/5", False),
        ("app#5, this project's own on GitLab", False),
        ("closes !99", True),
        ("www.github.com/acme/app/issues/99", True),
        ("\u4e2d#99", True),
        ("\u00e9#99", True),
        ("see !5", False),
    ],
)
def test_references_to_any_issue_but_the_runs_own_are_refused(text: str, refused: bool) -> None:
    found = kinds(f"{text}\n")
    assert bool(found) is refused, found
    if refused:
        assert found[0][0] == "reference"


def test_a_run_with_no_issue_may_name_none() -> None:
    plain = Policy("refs/heads/fw/coder/1", workflows=False, identity=ME, agent="coder")
    found = breaches(parse("c" * 40, raw("fixes #5\n")), plain)
    assert [b.kind for b in found] == ["reference"]


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("Address the review on #6", False),
        ("Address the review on acme/app#6", False),
        ("see https://github.com/acme/app/pull/6", False),
        ("Fixes #5 with #6", False),
        ("Closes other/app#6", True),
        ("Closes #7", True),
    ],
)
def test_once_its_pull_request_is_open_a_commit_may_name_it(text: str, refused: bool) -> None:
    """The run's pull request is its own as its issue is, by the same rules."""
    rules = replace(RULES, pull=Issue("acme/app", 6))
    found = breaches(parse("c" * 40, raw(f"{text}\n")), rules)
    assert bool(found) is refused, found
    assert bool(kinds(f"{text}\n")) or not refused  # without it: #6 is another's


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("Closes #12", "Closes 12"),
        ("Fixes acme/other#3, GH-4 and gh-8", "Fixes acme/other 3, GH 4 and gh 8"),
        ("see https://github.com/acme/app/issues/9.", "see acme/app issue 9."),
        ("merge !8 first", "merge 8 first"),
        ("Fixes #5 and acme/app#6", "Fixes #5 and acme/app#6"),
        ("Fixes ACME/APP#5", "Fixes ACME/APP#5"),
        ("colour &#35;12, step 2 of 3", "colour &#35;12, step 2 of 3"),
    ],
)
def test_a_text_is_made_to_name_no_issue_but_the_runs_own(text: str, plain: str) -> None:
    """What Fleetwarden writes on a base or a pull request names only the run's issue and
    pull request: every other reference the door would refuse loses its '#'."""
    own = (Issue("acme/app", 5), Issue("acme/app", 6))
    assert unreferenced(text, own) == plain
    left = breaches(parse("c" * 40, raw(f"{plain}\n")), replace(RULES, pull=own[1]))
    assert left == []


def test_a_message_is_read_whole_every_header_too() -> None:
    """No line or column cut: line 2,001 and column 5,000 are lines of the commit too."""
    message = "x\n" * 2500 + "y" * 5000 + "TAIL\n"
    commit = parse("c" * 40, raw(message, extra="extra " + "z" * 9000 + "END\n"))
    texts = [a.text for a in commit.lines()]
    assert any(t.endswith("TAIL") and len(t) == 5004 for t in texts)
    assert any(t.endswith("END") for t in texts)
    assert len(texts) > 2500


def test_the_policy_reads_back_what_it_writes() -> None:
    rules = Policy(
        "refs/heads/fw/coder/1",
        workflows=False,
        base="refs/heads/main",
        ci_paths=("scripts/ci/", "Makefile"),
        identity=ME,
        agent="coder",
        runs=frozenset({"3", "7"}),
        co_authors=frozenset({"Ann Lee <ann@example.org>"}),
        issue=Issue("acme/app", 5),
        pull=Issue("acme/app", 6),
    )
    values: dict[str, list[str]] = {}
    for key, value in rules.settings():
        values.setdefault(key, []).append(value)
    assert Policy.read(values) == rules
    assert Policy.read({"fleetwarden.branch": ["main"]}) is None


def test_what_a_bases_pipelines_run_by_reference_counts_as_ci() -> None:
    """Followed as far as they go: a workflow's local action and reusable workflow, that
    action's own runs and local actions, the action at the top (``uses: ./``) and what it
    runs; GitLab's includes, an included file's includes and a child pipeline's."""
    files = {
        ".github/workflows/ci.yml": (
            b"jobs:\n  build:\n    steps:\n      - uses: actions/checkout@v4\n"
            b"      - uses: ./tools/build-action\n      - uses: ./\n"
            b"  again:\n    uses: ./.github/workflows/re.yml\n"
        ),
        ".github/workflows/re.yml": b"jobs:\n  x:\n    steps:\n      - uses: ./tools/other\n",
        "tools/build-action/action.yml": (
            b"runs:\n  using: composite\n  steps:\n    - uses: ./tools/inner\n"
        ),
        "action.yml": b"runs:\n  using: node20\n  main: dist/index.js\n  post: dist/post.js\n",
        ".gitlab-ci.yml": b"include:\n  - local: /ci/jobs.yml\n  - remote: https://e.example/x.yml\n"
        b"  - local: /templates/*.yml\n",
        "ci/jobs.yml": (
            b"include: ci/more.yml\nchild:\n  trigger:\n    include: pipelines/child.yml\n"
        ),
        "ci/more.yml": b"job:\n  script: [make]\n",
        ".gitea/workflows/bad.yml": b": not yaml : [",
    }
    found = referenced(files.get, roots(files))
    for path in (
        "tools/build-action",
        "tools/inner",
        "tools/other",
        ".github/workflows/re.yml",
        "action.yml",
        "dist/index.js",
        "dist/post.js",
        "ci/jobs.yml",
        "ci/more.yml",
        "pipelines/child.yml",
        "templates",
    ):
        assert ci_path(path, found), path
    assert ci_path("tools/build-action/action.yml", found)
    assert ci_path("templates/deploy.yml", found)
    assert not ci_path("tools/readme.md", found)
    assert not ci_path("src/app.py", found)
