"""The git door's hook, piece by piece: the updates it reads, the ref rules, the added lines
it finds in git's (combined) diffs, the secret scan and its cap, the refusals file it
leaves for the door and the door's reading of it, and that a hook that fails refuses."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from fleet.redaction.known import Span
from fleet.repos.door.line_repo import hook_script, parse_refusals, take_refusals
from fleet.repos.hook import receive as hook
from fleet.repos.hook import scan as push_scan
from fleet.repos.hook.ci_paths import ci_path
from fleet.repos.hook.policy import REFUSALS, Policy
from fleet.repos.hook.receive import ZERO, Update, parse_updates, ref_refusal
from fleet.repos.hook.refusals import Refusal
from fleet.repos.hook.scan import Added, TooBig, added_lines, find_secrets

A = "a" * 40
B = "b" * 40
MINE = Policy("refs/heads/fw/alice/1", workflows=False)


def test_updates_are_read_from_the_lines_git_gives() -> None:
    text = f"{A} {B} refs/heads/fw/alice/1\n{ZERO} {B} refs/tags/v1\nnonsense\n"
    assert parse_updates(text) == [
        Update(A, B, "refs/heads/fw/alice/1"),
        Update(ZERO, B, "refs/tags/v1"),
    ]


@pytest.mark.parametrize(
    ("update", "kind"),
    [
        (Update(ZERO, B, "refs/tags/v1"), "tag"),
        (Update(A, ZERO, "refs/tags/v1"), "tag"),
        (Update(A, ZERO, "refs/heads/fw/alice/1"), "delete"),
        (Update(A, ZERO, "refs/heads/main"), "delete"),
        (Update(A, B, "refs/heads/main"), "ref"),
        (Update(ZERO, B, "refs/heads/fw/alice/1x"), "ref"),
        (Update(A, B, "refs/notes/commits"), "ref"),
        (Update(A, B, "refs/heads/fw/alice/1"), None),
        (Update(ZERO, B, "refs/heads/fw/alice/1"), None),
    ],
)
def test_the_ref_rules(update: Update, kind: str | None) -> None:
    refused = ref_refusal(update, MINE)
    assert (refused.kind if refused else None) == kind
    if refused is not None and kind == "ref":
        assert "git push origin HEAD:fw/alice/1" in refused.tell


@pytest.mark.parametrize(
    ("path", "workflow"),
    [
        (".github/workflows/ci.yml", True),
        (".gitea/workflows/deep/x.yaml", True),
        (".github/workflows", True),
        (".github", True),
        (".github/CODEOWNERS", False),
        ("docs/.github/workflows/x.yml", False),
        ("src/app.py", False),
        (".github/actions/build/action.yml", True),
        (".forgejo/workflows/evil.yml", True),
        (".gitea/actions/x.yml", True),
        (".gitlab-ci.yml", True),
        (".GitLab-CI.yml", True),
        (".woodpecker.yml", True),
        (".woodpecker/build.yaml", True),
        (".drone.yml", True),
        (".circleci/config.yml", True),
        ("Jenkinsfile", True),
        ("ci/Jenkinsfile", True),
        ("azure-pipelines.yml", True),
        ("bitbucket-pipelines.yml", True),
        ("./.github//workflows/x.yml", True),
        ("docs/azure-pipelines.yml", False),
    ],
)
def test_ci_paths_by_rule(path: str, workflow: bool) -> None:
    """Every forge's and CI service's pipeline places count, case aside; a look-alike
    deeper in the tree does not."""
    assert ci_path(path) is workflow


C1 = "1" * 40
C2 = "2" * 40
M = "3" * 40
PATCH = f"""{M}
diff --cc f.txt
index 7d2e724,2b1936b..a909382
--- a/f.txt
+++ b/f.txt
@@@ -5,0 -4,1 +5,2 @@@
+ side
++evil
- gone
{C1}
diff --git a/sp ace.txt b/sp ace.txt
new file mode 100644
index 0000000..fa49b07
--- /dev/null
+++ b/sp ace.txt\t
@@ -0,0 +1,3 @@
+one
++++ looks like a header
+three
diff --git "a/t\\303\\251st" "b/t\\303\\251st"
--- "a/t\\303\\251st"
+++ "b/t\\303\\251st"
@@ -3,2 +3,0 @@ def x():
-old
-old
@@ -10 +8 @@
-before
+after
\\ No newline at end of file
diff --git a/img.png b/img.png
Binary files a/img.png and b/img.png differ
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
{C2}
diff --git a/g.txt b/g.txt
--- a/g.txt
+++ b/g.txt
@@ -1 +1,2 @@
-a
+b
+c
"""


def test_added_lines_come_from_plain_and_combined_diffs() -> None:
    lines = io.BytesIO(PATCH.encode()).readlines()
    found = [
        (a.commit[0], a.path, a.line, a.text) for a in added_lines(lines, frozenset((C1, C2, M)))
    ]
    assert found == [
        ("3", "f.txt", 5, "side"),
        ("3", "f.txt", 6, "evil"),
        ("1", "sp ace.txt", 1, "one"),
        ("1", "sp ace.txt", 2, "+++ looks like a header"),
        ("1", "sp ace.txt", 3, "three"),
        ("1", '"t\\303\\251st"', 8, "after"),
        ("2", "g.txt", 1, "b"),
        ("2", "g.txt", 2, "c"),
    ]


AWS_ID = "AKIA" + "Q3EGRIYTEVSBJRNW"


def test_secrets_are_found_per_line_and_named_by_rule() -> None:
    added = [
        Added(C1, "a.py", 1, "import os"),
        Added(C1, "a.py", 2, f'KEY = "{AWS_ID}"'),
        Added(C2, "b.py", 7, "x = 1"),
    ]
    found = find_secrets(added, push_scan.shapes())
    assert [(a.path, a.line) for a, _ in found] == [("a.py", 2)]
    assert found[0][1]  # the rule's name


def test_a_scan_past_its_cap_refuses_rather_than_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push_scan, "MAX_SCAN_BYTES", 100)
    monkeypatch.setattr(push_scan, "BATCH_BYTES", 10)
    calls: list[str] = []

    def spans(text: str) -> list[Span]:
        calls.append(text)
        return []

    with pytest.raises(TooBig):
        find_secrets((Added(C1, "a", n, "x" * 30) for n in range(10)), spans)


def test_refusals_the_hook_records_are_taken_once(tmp_path: Path) -> None:
    repo = tmp_path / "1.git"
    repo.mkdir()
    hook.record(repo, [Refusal("refs/heads/main", "ref", "not its branch", "…")])
    hook.record(repo, [Refusal("refs/tags/v1", "tag", "a tag", "…")])
    with (repo / REFUSALS).open("a") as file:
        file.write('{"ref": 1}\nnot json\n["x"]\n{"ref": "r", "why": "w"')  # cut short
    taken = take_refusals(repo)
    assert [(r["ref"], r["why"], r["kind"]) for r in taken] == [
        ("refs/heads/main", "not its branch", "ref"),
        ("refs/tags/v1", "a tag", "tag"),
    ]
    assert all(r["at"].isdigit() for r in taken)
    assert take_refusals(repo) == []
    assert (repo / REFUSALS).stat().st_mode & 0o777 == 0o600


def test_a_refusals_file_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    repo = tmp_path / "1.git"
    (repo / "fleetwarden").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text('{"ref": "r", "why": "w"}\n')
    os.symlink(elsewhere, repo / REFUSALS)
    assert take_refusals(repo) == []
    assert elsewhere.read_text() == '{"ref": "r", "why": "w"}\n'
    assert take_refusals(tmp_path / "none.git") == []
    assert parse_refusals(b'{"ref": "r", "why": "w", "at": true}\n') == [{"ref": "r", "why": "w"}]


def test_the_hook_script_runs_this_interpreter_isolated() -> None:
    script = hook_script("/opt/py/bin/python3", Path("/srv/fleet root"))
    assert script.startswith("#!/opt/py/bin/python3 -I\n")
    assert "sys.path.insert(0, '/srv/fleet root')" in script
    assert "from fleet.repos.hook.receive import main" in script
    with pytest.raises(ValueError):
        hook_script("/opt/my py/python3")


def test_a_hook_that_cannot_check_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> Policy:
        raise RuntimeError("git config exited 1")

    monkeypatch.setattr(hook, "read_policy", broken)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{A} {B} refs/heads/fw/alice/1\n"))
    assert hook.main() == 1
    assert "could not check this push" in capsys.readouterr().err


def test_a_repository_without_a_branch_takes_no_push(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(hook, "read_policy", lambda: None)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{A} {B} refs/heads/fw/alice/1\n"))
    monkeypatch.setenv("GIT_DIR", str(tmp_path))
    assert hook.main() == 1
    assert "takes no pushes" in capsys.readouterr().err
    assert take_refusals(tmp_path)[0]["ref"] == "refs/heads/fw/alice/1"


def test_a_scan_past_its_time_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push_scan, "SCAN_SECONDS", 0.0)
    monkeypatch.setattr(push_scan, "BATCH_BYTES", 10)
    with pytest.raises(TooBig, match="took over"):
        find_secrets((Added(C1, "a", n, "x" * 30) for n in range(10)), lambda text: [])
