"""The change on an agent's dashboard page, over a real ledger and Fleet and a small desk
that answers as the repositories would: the branch, its base, the files with their ``+/−``,
whether it applies and what it clashes with, each file's diff as escaped text (cut when
long, redacted, what hides in it shown), read from the desk at most every few seconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from bot.acl import Role
from bot.dashboard.access.signin import Viewer
from bot.dashboard.pages.change import CHANGE_EVERY, DIFF_CHARS, DIFF_FILES, DIFF_LINES, shown_diff
from bot.dashboard.pages.pages import Pages
from bot.dashboard.pages.views import Views
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.model import AgentSpec, DesiredState
from fleet.names import AgentName
from fleet.redaction.guard import HIDDEN
from fleet.repos.desk import NoLine, RepoError
from fleet.repos.facts import Change, Clash, CommitLine, FileStat
from fleet.timing.clock import Clock, ManualClock
from tests.unit.bot.dashboard.views_rig import views_over

AGENT = "coder-1"
CUT_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SECRET = "s3cret-" + "Vq8Lm2Zx"
HOSTILE_NAME = "<img src=x onerror=alert(1)>.js"
HOSTILE_DIFF = (
    f"diff --git a/{HOSTILE_NAME} b/{HOSTILE_NAME}\n@@ -0,0 +1,3 @@\n"
    "+</pre><script>alert(1)</script>\n+const key = 1;\n+<b>bold</b>\n"
)


@dataclass
class Desk:
    """The repositories as the dashboard reads them
    (:class:`~bot.dashboard.pages.change.ChangeDesk`): one live line per agent in
    ``changes``, each file's diff in ``diffs``, an agent without one refused as the desk
    refuses it (:class:`NoLine`); every call recorded."""

    changes: dict[str, Change] = field(default_factory=dict)
    diffs: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    failing: str | None = None  # change() refuses with this

    async def line_of(self, agent: str) -> LineRecord | None:
        self.calls.append(f"line_of {agent}")
        change = self.changes.get(agent)
        if change is None:
            return None
        return LineRecord(
            id=1,
            repo=change.repo,
            agent=agent,
            line=7,
            branch=change.branch,
            base_ref=change.base_ref,
            fork_sha=change.fork_sha,
            checkout=f"/state/checkouts/{change.repo}/{agent}-7",
            state=LineState.LIVE,
            created_at=CUT_AT,
        )

    async def change(self, agent: str) -> Change:
        self.calls.append(f"change {agent}")
        if self.failing is not None:
            raise RepoError(self.failing)
        try:
            return self.changes[agent]
        except KeyError:
            raise NoLine(f"{agent} has no branch") from None

    async def diff(self, agent: str, path: str | None = None) -> str:
        self.calls.append(f"diff {agent} {path}")
        if agent not in self.changes:
            raise NoLine(f"{agent} has no branch")
        if path is None:
            return "".join(self.diffs.values())
        return self.diffs.get(path, "")


def change(files: Sequence[FileStat], **fields: object) -> Change:
    made = Change(
        repo="web",
        agent=AGENT,
        branch=f"fw/{AGENT}/7",
        base_ref="main",
        fork_sha="a" * 40,
        base_sha="b" * 40,
        head_sha="c" * 40,
        base_moved=2,
        commits=(CommitLine("c" * 12, "add <script>alert(1)</script> page"),),
        files=tuple(files),
        applies=False,
        conflicts=("app.js",),
        clashes=(Clash("coder-2", "fw/coder-2/9", ("app.js",)),),
        pushed=True,
    )
    return replace(made, **fields)  # type: ignore[arg-type]


async def views(ledger: Ledger, clock: Clock, tmp_path: Path, desk: Desk | None) -> Views:
    await ledger.agents.upsert_agent(AgentSpec(AgentName(AGENT), "stub"), DesiredState.RUNNING)
    return views_over(
        ledger, clock, tmp_path, backends={"subprocess": SubprocessBackend()}, repos=desk,
        redact=lambda text: text.replace(SECRET, "[redacted: DEPLOY_TOKEN]"),
    )  # fmt: skip


def page(data: dict[str, object]) -> str:
    viewer = Viewer("matrix", "@ann:example.org", Role.VIEWER, "s")
    return Pages().page("agent", data, viewer, here=f"/agents/{AGENT}", topic=f"agent:{AGENT}")


def hostile_desk() -> Desk:
    files = [
        FileStat(HOSTILE_NAME, 3, 0, "A"),
        FileStat("app.js", 1, 1),
        FileStat("logo.png", None, None),
    ]
    return Desk(
        changes={AGENT: change(files)},
        diffs={
            HOSTILE_NAME: HOSTILE_DIFF,
            "app.js": f"diff --git a/app.js b/app.js\n-old\n+TOKEN={SECRET}\n",
            "logo.png": "Binary files a/logo.png and b/logo.png differ\n",
        },
    )


async def test_the_agent_page_shows_the_branch_its_files_and_each_diff_as_text(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The API has the change: branch, base, how far the base moved, the commits, each file
    with its ``+/−`` (a binary one as such), whether it applies and the clash; each file's
    diff redacted. The page escapes a file named as markup and a diff line that would close
    the ``<pre>``: nothing of them is markup."""
    desk = hostile_desk()
    data = await (await views(ledger, clock, tmp_path, desk)).agent(AGENT)
    shown = data["change"]
    assert shown["branch"] == f"fw/{AGENT}/7" and shown["base_ref"] == "main"
    assert (shown["base_moved"], shown["applies"], shown["pushed"]) == (2, False, True)
    assert shown["conflicts"] == ["app.js"]
    assert shown["clashes"] == [{"agent": "coder-2", "branch": "fw/coder-2/9", "files": ["app.js"]}]
    assert [
        (f["path"], f["status"], f["added"], f["removed"], f["binary"]) for f in shown["files"]
    ] == [
        (HOSTILE_NAME, "A", 3, 0, False),
        ("app.js", "M", 1, 1, False),
        ("logo.png", "M", None, None, True),
    ]
    hostile, app, logo = shown["files"]
    assert hostile["diff"] == HOSTILE_DIFF.rstrip("\n") and hostile["note"] is None
    assert app["diff"] == "diff --git a/app.js b/app.js\n-old\n+TOKEN=[redacted: DEPLOY_TOKEN]"
    assert logo["diff"].startswith("Binary files")
    assert (shown["added"], shown["removed"], shown["diffs_shown"]) == (4, 1, 3)

    html = page(data)
    assert "<script>" not in html and "<img" not in html and "<b>bold</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.js" in html
    assert "+&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "add &lt;script&gt;alert(1)&lt;/script&gt; page" in html  # the commit subject
    assert SECRET not in html and "conflicts with main in app.js" in html
    assert html.count('<pre class="diff">') == 3 and html.count("</pre>") == 3
    assert "clashes with coder-2" in html


async def test_without_a_live_branch_or_repositories_there_is_no_change(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """No repositories configured, or no live line for the agent: ``change`` is null and
    the page has no change section; a desk that refuses is said in one line, redacted."""
    for desk in (None, Desk()):
        data = await (await views(ledger, clock, tmp_path, desk)).agent(AGENT)
        assert data["change"] is None
        assert 'id="change"' not in page(data)
    desk = hostile_desk()
    desk.failing = f"git failed reading {SECRET}\nsecond line"
    data = await (await views(ledger, clock, tmp_path, desk)).agent(AGENT)
    assert data["change"] == {"error": "git failed reading [redacted: DEPLOY_TOKEN] ⏎ second line"}
    assert "git failed reading [redacted: DEPLOY_TOKEN]" in page(data)


async def test_the_change_is_read_again_every_few_seconds_and_a_diff_when_the_branch_moves(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Pages rendered twice a second ask the desk once per :data:`CHANGE_EVERY`; a file's
    diff is read again only when the branch's tip, its fork or the base moved."""
    desk = hostile_desk()
    made = await views(ledger, clock, tmp_path, desk)
    await made.agent(AGENT)
    first = list(desk.calls)
    assert (
        first.count(f"change {AGENT}") == 1 and len([c for c in first if c.startswith("diff")]) == 3
    )
    await made.agent(AGENT)
    assert desk.calls == first  # within CHANGE_EVERY: nothing asked
    clock.advance(CHANGE_EVERY.total_seconds())
    await made.agent(AGENT)
    again = desk.calls[len(first) :]
    assert again == [f"line_of {AGENT}", f"change {AGENT}"]  # the same tips: the diffs kept
    desk.changes[AGENT] = replace(desk.changes[AGENT], head_sha="d" * 40)
    desk.diffs["app.js"] = "diff --git a/app.js b/app.js\n+new\n"
    clock.advance(CHANGE_EVERY.total_seconds())
    data = await made.agent(AGENT)
    assert len([c for c in desk.calls if c.startswith("diff")]) == 6
    assert data["change"]["files"][1]["diff"] == "diff --git a/app.js b/app.js\n+new"


async def test_long_diffs_and_many_files_are_cut_with_a_note(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Past :data:`DIFF_LINES` lines a file's diff is cut and says how much is shown; past
    :data:`DIFF_FILES` files the rest are listed with their ``+/−`` but no diff."""
    files = [FileStat(f"f{i}.txt", 1, 0) for i in range(DIFF_FILES + 3)]
    long = "".join(f"+line {i}\n" for i in range(DIFF_LINES + 100))
    desk = Desk(changes={AGENT: change(files)}, diffs={"f0.txt": long})
    data = await (await views(ledger, clock, tmp_path, desk)).agent(AGENT)
    shown = data["change"]
    first = shown["files"][0]
    assert first["diff"].count("\n") + 1 == DIFF_LINES
    assert first["note"] == (
        f"Cut: {DIFF_LINES} of its {DIFF_LINES + 100} lines are shown here; "
        "in chat, the diff command sends all of it."
    )
    assert shown["diffs_shown"] == DIFF_FILES
    assert [f["diff"] is None for f in shown["files"][DIFF_FILES:]] == [True] * 3
    assert f"Diffs are shown for the first {DIFF_FILES} files" in page(data)


def test_a_diff_is_shown_inert_what_hides_in_it_shown_and_a_huge_line_cut() -> None:
    """A bidi override in a diff is shown as its code point; with a secret in it, hidden
    characters are taken out and the diff says so; one huge line is cut to the limit."""
    bidi = "+if (user != \u202eadmin\u2066) {\n"
    shown, note = shown_diff(bidi, lambda text: text)
    assert shown == "+if (user != [U+202E]admin[U+2066]) {" and note is None
    shown, _ = shown_diff(bidi + f"+k={SECRET}\n", lambda text: text.replace(SECRET, "[r]"))
    assert shown == f"{HIDDEN}\n+if (user != admin) {{\n+k=[r]"
    shown, note = shown_diff("+" + "x" * (DIFF_CHARS * 3), lambda text: text)
    assert len(shown) == DIFF_CHARS and note is not None and note.startswith("Cut: 1 of its 1")


async def test_a_page_for_another_agent_reads_its_own_change(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The change is kept per agent: another agent's page asks the desk for its own."""
    desk = hostile_desk()
    made = await views(ledger, clock, tmp_path, desk)
    await ledger.agents.upsert_agent(AgentSpec(AgentName("coder-2"), "stub"), DesiredState.RUNNING)
    await made.agent(AGENT)
    clock.advance(1)
    assert (await made.agent("coder-2"))["change"] is None
    assert desk.calls[-1] == "line_of coder-2"
