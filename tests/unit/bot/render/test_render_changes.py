"""Tests for bot.render.work.changes: a run's change block, the `diff` as code blocks nothing can
close, the `branches` table and what `merge` did — with hostile names everywhere a
repository string goes (backticks, line breaks, `@room`, markdown, very long lists)."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from bot.render.work.changes import (
    FILES_SHOWN,
    branches_table,
    change_block,
    diff_head,
    diff_text,
    landed,
    stat,
)
from connectors.markdown import to_html, to_plain
from connectors.markdown_discord import to_discord
from fleet.repos.facts import Change, Clash, CommitLine, FileStat, Landed

HOSTILE = "x`y``z```\n# Heading\n@room **bold** <b>html</b> [link](http://evil) |pipe|"
_FENCED = re.compile(r"^(`{3,})diff$")


def change(**fields: object) -> Change:
    values: dict[str, object] = {
        "repo": "app",
        "agent": "coder",
        "branch": "fw/coder/12",
        "base_ref": "main",
        "fork_sha": "a" * 40,
        "base_sha": "b" * 40,
        "head_sha": "c" * 40,
        "base_moved": 0,
        "commits": (CommitLine("c" * 40, "Fix the parser"),),
        "files": (FileStat("src/app.py", 10, 2), FileStat("logo.png", None, None, "A")),
    }
    values.update(fields)
    return Change(**values)  # type: ignore[arg-type]


def parsed_lines(markdown: str) -> list[str]:
    """The lines of text a reader sees outside code: what markdown-it renders as text."""
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)
    types = {t.type for t in tokens}
    assert "heading_open" not in types and "html_block" not in types
    return [t.content for t in tokens if t.type == "inline"]


def test_the_block_says_branch_commits_files_base_applies_and_where_it_is() -> None:
    """Every part of the block, for a plain change."""
    text = change_block(change(base_moved=3, disk_bytes=12_300_000, copied=(".env.example",)))
    assert text.startswith("**Branch** fw/coder/12 of **app**: 1 commit, 2 files, +10 −2")
    assert "Forked from main at `aaaaaaaaaa`; it has moved 3 commits since (now `bbbbbbbbbb`)" in (
        text
    )
    assert "Commits: `cccccccccc` Fix the parser" in text
    assert "Applies cleanly to main." in text
    assert "Secret scan: clean." in text
    assert "Not pushed: nothing reaches the upstream until `push coder` or `merge coder`." in text
    assert "Copied into the checkout: .env.example." in text
    assert "Checkout on disk: 12.3 MB." in text
    assert "- changed src/app.py +10 −2" in text and "- added logo.png (binary)" in text


def test_what_of_copy_was_not_there_is_said() -> None:
    """A ``copy`` path missing from ``copy_from`` is said in the block, never skipped."""
    text = change_block(change(not_copied="absent not found in copy_from /srv/f, so not copied in"))
    assert "- Not copied into the checkout: absent not found in copy" in text
    assert "/srv/f, so not copied in." in text
    assert "Not copied into the checkout" not in change_block(change())


def test_conflicts_clashes_refusals_and_merged_are_said() -> None:
    """A change that does not apply names the files; a clash names agent, branch, files."""
    text = change_block(
        change(
            applies=False,
            conflicts=("src/a.py", "src/b.py"),
            clashes=(Clash("other", "fw/other/9", ("src/a.py",)),),
            refused=("a push to refs/heads/main: only fw/coder/12 is yours",),
            secrets="refused: an AWS key in src/k.py line 3 (aws-access-token)",
            merged=True,
        )
    )
    assert "⚠ Conflicts with main: src/a.py, src/b.py." in text
    assert "⚠ Clashes with **other** (fw/other/9) in src/a.py." in text
    assert "The git door refused: a push to refs/heads/main: only fw/coder/12 is yours." in text
    assert "Secret scan: refused: an AWS key in src/k.py line 3 (aws-access-token)." in text
    assert "- Merged." in text


def test_hostile_names_stay_text_on_one_line_each() -> None:
    """A path, a subject, a branch and a clashing agent written to break out: no heading,
    no HTML, no link, no code span, no line of their own — in every dialect."""

    def block(name: str) -> str:
        return change_block(
            change(
                branch=name,
                commits=(CommitLine("d" * 40, name),),
                files=(FileStat(name, 1, 0),),
                clashes=(Clash(name, name, (name,)),),
                conflicts=(name,),
                applies=False,
                copied=(name,),
            )
        )

    text = block(HOSTILE)
    assert text.count("\n") == block("plain").count("\n")  # no line of their own
    for line in parsed_lines(text):
        assert "\n# Heading" not in line
    html = to_html(text)
    assert "<b>html</b>" not in html and "<a " not in html and "<h1>" not in html
    assert "<code>y" not in html  # the backticks are text, not a code span
    assert "⏎ # Heading" in to_plain(text)  # the line break is shown, on the same line
    assert "<b>" not in to_discord(text).replace("\\<b\\>", "")
    assert all(not line.startswith("#") for line in text.split("\n"))


def test_long_lists_are_cut_with_a_count() -> None:
    """Past the lines shown, files, commits and conflicts are counted, not listed."""
    files = tuple(FileStat(f"f{n}.py", n, 0) for n in range(200))
    commits = tuple(CommitLine(f"{n:040x}", f"commit {n}") for n in range(30))
    text = change_block(
        change(
            files=files,
            more_files=50,
            commits=commits,
            more_commits=4,
            applies=False,
            conflicts=tuple(f"c{n}" for n in range(40)),
        )
    )
    assert f"- … and {200 - FILES_SHOWN + 50} more files" in text
    assert "f14.py" in text and "f15.py" not in text
    assert "… and 26 more" in text  # 30 − 8 shown + 4 past those listed
    assert "and 35 more" in text  # conflicts: 5 named
    assert "34 commits, 250 files" in text
    assert len(text) < 4000


def test_a_very_long_name_is_cut_in_the_middle() -> None:
    """A path of 10,000 characters shows both ends, bounded."""
    path = "a" * 5000 + "/" + "z" * 5000 + ".py"
    text = stat(change(files=(FileStat(path, 1, 1),)))
    assert len(text) < 400 and "…" in text and text.rstrip().endswith("+1 −1")


def test_a_diff_is_inert_code_that_no_line_can_close() -> None:
    """Fences, headings, mentions and bidi overrides stay inside blocks of the size given."""
    diff = (
        "diff --git a/x b/x\n+```\n+````````````````````````````````\n+~~~\n+# not a heading\n"
        "+@room <b>ping</b>\n+admin\u202e)txt.exe\r\n" + "".join(f"+line {n}\n" for n in range(400))
    )
    parts = diff_text(diff, 1000)
    assert len(parts) > 3 and all(len(part) <= 1000 for part in parts)
    inside: list[str] = []
    for part in parts:
        tokens = MarkdownIt("commonmark").parse(part)
        assert [t.type for t in tokens] == ["fence"], part[:200]
        assert tokens[0].info == "diff"
        inside += tokens[0].content.rstrip("\n").split("\n")
        assert _FENCED.match(part.split("\n")[0])
    assert inside[1:4] == ["+```", "+⟪32 backticks⟫", "+~~~"]
    assert "+admin[U+202E])txt.exe" in inside  # shown, not obeyed; the CR of CRLF dropped
    assert inside[-1] == "+line 399"
    assert len(inside) == len(diff.rstrip("\n").split("\n"))


def test_a_diff_line_longer_than_a_block_is_cut_in_the_middle() -> None:
    """One line of 10,000 characters still fits, both its ends shown."""
    [part] = diff_text("+" + "x" * 10_000 + "END", 500)
    assert len(part) <= 500 and "…" in part and "END" in part


def test_diff_head_keeps_whole_lines_and_counts_the_rest() -> None:
    """Cut at a line's end within the size, the lines left out counted."""
    diff = "".join(f"+{n}\n" for n in range(100))
    head, left = diff_head(diff, 50)
    assert head.endswith("\n") and len(head) <= 50
    assert head.count("\n") + left == 100
    assert diff_head("short\n", 50) == ("short\n", 0)
    assert diff_text("", 1000) == []


def test_the_branches_table_escapes_and_counts() -> None:
    """One row per branch; a hostile branch name cannot add a column or a row."""
    table = branches_table(
        [
            change(base_moved=2, pushed=True, clashes=(Clash("other", "fw/other/9", ()),)),
            change(agent="other", branch=HOSTILE, applies=False),
        ]
    )
    rows = [line for line in table.split("\n") if line.startswith("|")]
    assert len(rows) == 4
    assert rows[2] == ("| coder | fw/coder/12 | app | 1 | 2 | +10 −2 | pushed | other |")
    assert "\\|pipe\\|" in rows[3] and "not pushed, conflicts" in rows[3]
    assert branches_table([]) == "No branches: no agent works on a repository now."


def test_landed_says_the_new_commit_or_why_nothing_changed() -> None:
    """Merged: the base and its new commit; refused: why, the files, nothing changed."""
    assert landed(Landed("main", "e" * 40, "squash")) == (
        "Merged into main (squash): it is now at `eeeeeeeeee`."
    )
    refused = landed(
        Landed("main", None, "rebase", conflicts=(HOSTILE,), refused="the change conflicts")
    )
    assert refused.startswith("Not merged into main: the change conflicts.")
    assert "Conflicting files: x\\`y" in refused
    assert refused.endswith("the upstream and the branch are as they were.")
    assert "\n" not in refused


def test_a_run_whose_push_the_door_refused_claims_nothing_reached_the_upstream() -> None:
    """A run's change with refusals and no new commit says nothing of the run reached the
    branch, and that the upstream has it as before (not "Pushed"); one whose commits
    arrived says where it is as usual."""
    refused = ("commit 0123456789ab: names #7",)
    text = change_block(change(refused=refused, arrived=False, pushed=True))
    assert "- Nothing of this run reached the branch: the git door refused its push." in text
    assert "- The upstream has the branch as it was before this run." in text
    assert "Pushed to the upstream." not in text
    assert text.count("The git door refused: commit 0123456789ab: names #7.") == 1
    arrived = change_block(change(refused=refused, arrived=True, pushed=True))
    assert "Nothing of this run" not in arrived and "- Pushed to the upstream." in arrived
