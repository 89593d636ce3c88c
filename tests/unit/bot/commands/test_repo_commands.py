"""Tests for the repository commands (bot.commands.handlers.places.repos) through the real router
and ledger, over a small desk that keeps the `RepoDesk` protocol and records each call:
`diff`, `branches`, `merge` (an admin for a protected base), `push`, `discard` (asking
first for unpushed work, as `stop all` does), `spawn --repo/--base/--fresh`, each verb
audited and told in the agent's thread, and each saying so when no repository is set up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from markdown_it import MarkdownIt

from bot.acl import Acl, Grant, Role
from bot.commands.errors import CommandError
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.owners import ChatWords
from bot.commands.handlers.agents.spawn.launching import Launching, SpawnRepos
from bot.commands.handlers.places.repos import NO_REPOS, RepoCommands, link
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.confirmations import ConfirmationDesk
from bot.commands.routing.request import Reply, Request
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from fleet.ledger import Ledger
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.repos.desk import NoLine, RepoDesk, RepoError
from fleet.repos.facts import Change, FileStat, Landed
from fleet.repos.line.cutting import Asked
from fleet.repos.schema import RepoEntry
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.owners import AgentOwners, AgentRecords, ForgeRuns
from fleet.supervisor.interfaces import AgentControl
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.fleet import FakeFleet
from tests.fakes.doubles.launches import an_admission
from tests.unit.chat_fakes import OPERATOR, VIEWER, Calls, FakeConnector, message

ADMIN = "@ada:example.org"
T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
APP = RepoEntry.model_validate({"url": "https://github.com/acme/app.git", "protected": ["rel"]})


def a_line(agent: str = "coder", base: str = "main", branch: str | None = None) -> LineRecord:
    return LineRecord(
        id=1,
        repo="app",
        agent=agent,
        line=12,
        branch=branch or f"fw/{agent}/12",
        base_ref=base,
        fork_sha="a" * 40,
        checkout=f"/state/checkouts/app/{agent}-12",
        state=LineState.LIVE,
        created_at=T,
    )


class FakeDesk:
    """The repositories as the commands see them: lines by agent, recorded calls."""

    def __init__(
        self, *lines: LineRecord, unpushed: int = 0, diff: str = "", busy: str | None = None
    ) -> None:
        self.lines_by_agent = {line.agent: line for line in lines}
        self.earlier: list[LineRecord] = []  # live lines older than their agent's newest
        self.busy = busy  # why a verb may not act now (the agent runs), if it may not
        self.lines_used: list[int | None] = []  # the line each call named (None: newest)
        self.unpushed_commits = unpushed
        self.diff_out = diff
        self.landing: Landed | None = None
        self.stale: list[str] = []  # what `refresh` could not fetch
        self.calls: list[tuple[Any, ...]] = []
        self.approved: str | None = None  # the commit a review agent approved, if one did

    def names(self) -> Sequence[str]:
        return ["app"]

    def entry(self, repo: str) -> RepoEntry:
        return {"app": APP}[repo]

    async def line_of(self, agent: str) -> LineRecord | None:
        return self.lines_by_agent.get(agent)

    def _live(self, agent: str, line_id: int | None = None) -> LineRecord:
        self.lines_used.append(line_id)
        for line in self.earlier:
            if line_id is not None and line.id == line_id and line.agent == agent:
                return line
        if agent not in self.lines_by_agent:
            raise NoLine(f"{agent} has no branch")
        return self.lines_by_agent[agent]

    async def no_branch(self, agent: str) -> str:
        return f"{agent} has no branch yet: `spawn {agent} --repo REPO` cuts one"

    async def lines_named(self, branch: str) -> Sequence[LineRecord]:
        every = [*self.earlier, *self.lines_by_agent.values()]
        return [line for line in every if line.branch == branch]

    async def ready(self, agent: str, verb: str, line_id: int | None = None) -> LineRecord:
        self.calls.append(("ready", agent, verb, line_id))
        line = self._live(agent, line_id)
        if self.busy is not None and line_id is None:
            raise RepoError(f"{agent} is {self.busy}: `stop {agent}` first, then {verb}")
        return line

    async def change(self, agent: str, line_id: int | None = None) -> Change:
        self.calls.append(("change", agent))
        line = self._live(agent, line_id)
        return Change(
            line.repo, agent, line.branch, line.base_ref, line.fork_sha, "b" * 40, "c" * 40, 0,
            files=(FileStat("src/app.py", 3, 1),),
        )  # fmt: skip

    async def diff(self, agent: str, path: str | None = None, line_id: int | None = None) -> str:
        self.calls.append(("diff", agent, path))
        self._live(agent, line_id)
        return self.diff_out

    async def lines(self, repo: str | None = None) -> Sequence[Change]:
        self.calls.append(("lines", repo))
        return [await self.change(agent) for agent in self.lines_by_agent]

    async def orphans(self) -> Sequence[str]:
        return ["checkout app/old-3 without a line (12 kB)"]

    async def known_agents(self) -> Sequence[str]:
        return [*self.lines_by_agent, "other", "coder-2"]

    async def refresh(self, repo: str | None = None) -> Sequence[str]:
        self.calls.append(("refresh", repo))
        return self.stale

    async def merge(
        self,
        agent: str,
        strategy: str | None,
        *,
        by: str,
        co_author: str | None = None,
        line_id: int | None = None,
        unreviewed: bool = False,
    ) -> Landed:
        self.calls.append(("merge", agent, strategy, by, co_author))
        if unreviewed:
            self.calls.append(("unreviewed", agent))
        line = self._live(agent, line_id)
        return self.landing or Landed(line.base_ref, "e" * 40, strategy or APP.merge)

    async def push(self, agent: str, line_id: int | None = None, unreviewed: bool = False) -> str:
        self.calls.append(("push", agent))
        if unreviewed:
            self.calls.append(("unreviewed", agent))
        line = self._live(agent, line_id)
        return f"https://github.com/acme/app/compare/{line.base_ref}...{line.branch}"

    async def approval(self, agent: str, line_id: int | None = None) -> str | None:
        return self.approved

    async def unpushed(self, agent: str, line_id: int | None = None) -> int:
        self.calls.append(("unpushed", agent))
        self._live(agent, line_id)
        return self.unpushed_commits

    async def discard(self, agent: str, line_id: int | None = None) -> LineRecord:
        self.calls.append(("discard", agent) if line_id is None else ("discard", agent, line_id))
        line = self._live(agent, line_id)
        if line in self.earlier:
            self.earlier.remove(line)
            return line
        return self.lines_by_agent.pop(agent)


def on_repo(repo: str) -> FakeFleet:
    """What `spawn` asks of the fleet: ``coder``'s own settings, naming ``repo``, and the
    launch."""
    return FakeFleet(specs={"coder": AgentSpec(name=AgentName("coder"), runtime="stub", repo=repo)})


def open_admission(
    fleet: FakeFleet, desk: RepoDesk | None = None, forge_runs: ForgeRuns | None = None
) -> Admission:
    """An admission of no budgets and no caps over ``fleet``: what these tests launch by;
    whose an agent is read from ``fleet``, the ``desk``'s lines and ``forge_runs``."""
    owners = AgentOwners(cast(AgentRecords, fleet), forge_runs, desk, ChatWords())
    return an_admission(fleet, slots=None, budgets=None, owners=owners)


def a_router(ledger: Ledger, desk: RepoDesk | None, fleet: FakeFleet | None = None) -> Router:
    clock = ManualClock(T)
    confirmations = ConfirmationDesk(ledger.chat, clock)

    def git_identity(connector: str, sender: str) -> str | None:
        return f"{sender} <{sender[1:4]}@example.org>" if connector == "matrix" else None

    fake = fleet or FakeFleet()
    handlers = Handlers(
        fleet=cast(AgentControl, fake),
        clock=clock,
        launching=Launching(open_admission(fake, desk)),
        repos=SpawnRepos(desk, git_identity),
    )
    commands = RepoCommands(desk, confirmations, git_identity)
    acl = Acl(
        [Grant(ADMIN, Role.ADMIN), Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)]
    )
    table = {**Calls().table(), **commands.table(), "spawn": handlers.spawn}
    return Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=table,
        audit=ledger.audit,
        chat=ledger.chat,
        confirmations=confirmations,
    )


async def say(router: Router, chat: FakeConnector, text: str, sender: str = OPERATOR) -> str:
    await router.handle(chat, message(text, sender=sender, event_id=f"${len(chat.sent)}{text}"))
    return chat.sent[-1].markdown


def direct(text: str, role: Role = Role.ADMIN, confirmed: bool = False) -> Request:
    command = Grammar(COMMANDS).parse(text)
    assert command is not None
    return Request(message(text, sender=ADMIN), role, command, confirmed)


@pytest.mark.parametrize(
    "text",
    ["!diff coder", "!branches", "!merge coder", "!push coder", "!discard coder",
     "!spawn coder --repo app", "!spawn coder --fresh"],
)  # fmt: skip
async def test_without_repositories_each_verb_says_how_to_add_them(
    ledger: Ledger, chat: FakeConnector, text: str
) -> None:
    """No `repos:`: every verb, and spawn's repository flags, answer the same pointer."""
    fleet = FakeFleet()
    answer = await say(a_router(ledger, None, fleet), chat, text, sender=ADMIN)
    assert answer == NO_REPOS
    assert fleet.spawned == []


async def test_diff_is_the_agents_text_in_blocks_nothing_closes(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """A hostile diff stays inside its code blocks; FILE reaches the desk; a viewer may ask."""
    hostile = "+```\n+# heading\n+@room <b>x</b>\n" + "".join(f"+{n}\n" for n in range(600))
    desk = FakeDesk(a_line(), diff=hostile)
    router = a_router(ledger, desk)
    answer = await say(router, chat, "!diff coder", sender=VIEWER)
    assert answer.startswith("The diff of **coder**'s branch against its base:")
    tokens = MarkdownIt("commonmark").parse(answer)
    assert {t.type for t in tokens} <= {"paragraph_open", "inline", "paragraph_close", "fence"}
    shown = "".join(t.content for t in tokens if t.type == "fence")
    assert shown == hostile
    await say(router, chat, "!diff coder src/app.py")
    assert desk.calls[-1] == ("diff", "coder", "src/app.py")
    assert "**coder**'s branch in src/app.py" in chat.sent[-1].markdown


async def test_a_long_diff_is_sent_whole_as_a_diff_file(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """Past the size chat shows, its head is shown and the whole diff goes as a file."""
    diff = "".join(f"+line {n:06d}\n" for n in range(10_000))
    desk = FakeDesk(a_line(), diff=diff)
    answer = await say(a_router(ledger, desk), chat, "!diff coder")
    assert "The whole diff is attached as `coder.diff`" in answer
    assert "`diff coder --stat` lists the files" in answer
    assert len(answer) < 3_000
    (file,) = chat.sent[-1].files
    assert file.name == "coder.diff" and file.mime == "text/x-diff"
    assert file.data.decode() == diff


async def test_diff_stat_and_a_bad_file_name(ledger: Ledger, chat: FakeConnector) -> None:
    """`--stat` lists files with +/−; a path out of the repository is refused unasked."""
    desk = FakeDesk(a_line())
    router = a_router(ledger, desk)
    assert "- changed src/app.py +3 −1" in await say(router, chat, "!diff coder --stat")
    for path in ("../etc/passwd", "/etc/passwd", '"-p"', "a/../../b"):
        answer = await say(router, chat, f"!diff coder {path}")
        assert "is no path in the repository" in answer
    assert [c for c in desk.calls if c[0] == "diff"] == []
    assert "has no branch" in await say(router, chat, "!diff other")


async def test_branches_lists_rows_and_orphans_and_checks_the_repo(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """The table, the orphans below it; an unknown repository gets did-you-mean."""
    desk = FakeDesk(a_line(), a_line("other"))
    router = a_router(ledger, desk)
    answer = await say(router, chat, "!branches app", sender=VIEWER)
    assert "| coder | fw/coder/12 | app |" in answer and "| other |" in answer
    assert "Orphans" in answer and "checkout app/old-3 without a line" in answer
    assert ("lines", "app") in desk.calls
    assert "did you mean 'app'" in await say(router, chat, "!branches ap")


async def test_branches_fetches_first_and_says_what_it_could_not(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """`branches` asks the desk to fetch before it counts; an upstream it could not reach
    is said below the table, escaped, its reason begun as a sentence after the full stop,
    with the table still there."""
    desk = FakeDesk(a_line())
    desk.stale = ["app's behind counts are as of its last fetch. cannot reach `x`"]
    answer = await say(router := a_router(ledger, desk), chat, "!branches", sender=VIEWER)
    assert desk.calls.index(("refresh", None)) < desk.calls.index(("lines", None))
    assert "| coder | fw/coder/12 | app |" in answer
    assert "⚠ Not fetched: app's behind counts are as of its last fetch. Cannot" in answer
    assert "Cannot reach \\`x\\`" in answer  # git's words are text, not markup
    desk.stale = []
    assert "Not fetched" not in await say(router, chat, "!branches app", sender=VIEWER)
    assert ("refresh", "app") in desk.calls


async def test_a_verb_on_an_unknown_agent_says_so_and_guesses(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """`merge nobody` names no agent (not "has no branch"); a near miss gets did-you-mean;
    a known agent without a branch is told how to give it one."""
    router = a_router(ledger, FakeDesk(a_line()))
    nobody = await say(router, chat, "!merge nobody")
    assert "no agent is called 'nobody'" in nobody and "has no branch" not in nobody
    assert "did you mean 'coder'?" in await say(router, chat, "!merge codr")
    assert "did you mean 'coder'?" in await say(router, chat, "!push coderr")
    assert "did you mean 'coder'?" in await say(router, chat, "!diff codr")
    assert "did you mean 'coder'?" in await say(router, chat, "!discard codr")
    other = await say(router, chat, "!merge other")
    assert "other has no branch yet: `spawn other --repo REPO` cuts one" in other


async def test_merging_into_a_protected_branch_needs_an_admin(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """An operator is refused (audited as denied, nothing merged); an admin merges, with
    the strategy asked and their git identity; an unprotected base is an operator's."""
    desk = FakeDesk(a_line(), a_line("feat", base="feature"))
    router = a_router(ledger, desk)
    refused = await say(router, chat, "!merge coder --rebase")
    assert "main of app is protected: merging into it needs the admin role" in refused
    assert not [c for c in desk.calls if c[0] == "merge"]
    merged = await say(router, chat, "!merge coder --rebase", sender=ADMIN)
    assert merged == "**coder**: Merged into main (rebase): it is now at `eeeeeeeeee`."
    assert desk.calls[-1] == (
        "merge", "coder", "rebase", f"{ADMIN} on matrix", f"{ADMIN} <ada@example.org>"
    )  # fmt: skip
    await say(router, chat, "!merge feat")
    merge_feat: tuple[Any, ...] = desk.calls[-1]
    assert merge_feat[:3] == ("merge", "feat", None)  # the repository's default
    entries = await ledger.audit.audit_entries()
    assert [(e.outcome, e.detail) for e in reversed(entries[:3])] == [
        ("denied", refused),
        ("ok", f"merged fw/coder/12 into main at {'e' * 40}"),
        ("ok", f"merged fw/feat/12 into feature at {'e' * 40}"),
    ]
    assert "give one of --squash" in await say(router, chat, "!merge feat --squash --merge")


async def test_unreviewed_is_an_admins_and_is_audited_with_the_approved_commit(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """`--unreviewed` from an operator is refused before anything is asked of the desk; an
    admin's merge and push go through with it, the audit naming the commit approved."""
    desk = FakeDesk(a_line("feat", base="feature"))
    desk.approved = "a1b2c3d4" * 5
    router = a_router(ledger, desk)
    for text in ("!merge feat --unreviewed", "!push feat --unreviewed"):
        refused = await say(router, chat, text)
        assert "--unreviewed` lands a commit its review agent did not approve" in refused
        assert "needs the admin role; you are operator" in refused
    assert desk.calls == []
    await say(router, chat, "!merge feat --unreviewed", sender=ADMIN)
    assert ("unreviewed", "feat") in desk.calls
    [entry] = (await ledger.audit.audit_entries())[:1]
    assert entry.outcome == "ok"
    assert entry.detail == (
        f"merged fw/feat/12 into feature at {'e' * 40} --unreviewed; approved was {desk.approved}"
    )
    await say(router, chat, "!push feat --unreviewed", sender=ADMIN)
    [entry] = (await ledger.audit.audit_entries())[:1]
    assert entry.detail == f"pushed fw/feat/12 of app --unreviewed; approved was {desk.approved}"


async def test_a_refused_merge_names_the_files_and_is_told_in_the_thread(ledger: Ledger) -> None:
    """Conflicts: not merged, the files named, nothing changed; the thread hears it too."""
    desk = FakeDesk(a_line())
    desk.landing = Landed("main", None, "squash", ("src/a.py",), "the change conflicts")
    commands = RepoCommands(desk, ConfirmationDesk(ledger.chat, ManualClock(T)))
    reply = await commands.merge(direct("!merge coder"))
    assert "Not merged into main: the change conflicts. Conflicting files: src/a.py." in (
        reply.markdown
    )
    assert reply.topic == "coder" and reply.thread_line is not None
    assert "Not merged" in reply.thread_line and ADMIN in reply.thread_line
    assert reply.detail == "merge of fw/coder/12 into main refused: the change conflicts"
    # The way on: the agent's next run merges its base in and resolves; then merge again.
    assert '`spawn coder --prompt "git fetch origin, merge origin/main into your branch' in (
        reply.markdown
    )
    assert "then `merge coder` again" in reply.markdown
    assert "spawn coder" not in reply.thread_line


async def test_push_answers_with_the_link_audits_and_tells_the_thread(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """The forge's page as a link; the audit names the branch; a viewer may not push."""
    desk = FakeDesk(a_line())
    router = a_router(ledger, desk)
    assert "role" in await say(router, chat, "!push coder", sender=VIEWER)
    answer = await say(router, chat, "!push coder")
    assert answer.endswith("<https://github.com/acme/app/compare/main...fw/coder/12>")
    assert (await ledger.audit.audit_entries())[0].detail == "pushed fw/coder/12 of app"
    reply = await RepoCommands(desk, ConfirmationDesk(ledger.chat, ManualClock(T))).push(
        direct("!push coder")
    )
    assert reply.topic == "coder" and reply.thread_line is not None
    assert reply.thread_line.startswith("Branch fw/coder/12 pushed by @ada:example.org")


def test_a_push_link_is_a_link_only_when_it_reads_as_a_plain_web_address() -> None:
    """The same rule as the forge's links: a web address is linked; one that could break
    out of markup, or is no web address, is shown as text."""
    assert link("https://git.example.org/acme/app/compare/main...fw/c/1") == (
        "<https://git.example.org/acme/app/compare/main...fw/c/1>"
    )
    for odd in ("https://x.org/a)b", "javascript:alert(1)", 'https://x.org/"><b>'):
        assert not link(odd).startswith("<")


async def test_discard_of_pushed_work_acts_at_once(ledger: Ledger, chat: FakeConnector) -> None:
    """Nothing unpushed: no question, the checkout and branch go, the thread is told."""
    desk = FakeDesk(a_line())
    answer = await say(a_router(ledger, desk), chat, "!discard coder")
    assert answer == (
        "Discarded **coder**'s branch fw/coder/12 of app: its checkout and Fleetwarden's copy "
        "of the branch are removed. Fleetwarden never pushed it to the upstream."
    )
    assert desk.calls[-1] == ("discard", "coder")
    reply = await RepoCommands(
        FakeDesk(a_line()), ConfirmationDesk(ledger.chat, ManualClock(T))
    ).discard(direct("!discard coder"))
    assert isinstance(reply, Reply) and reply.topic == "coder"
    assert (
        reply.thread_line
        == "Discarded by @ada:example.org: branch fw/coder/12 of app, and its checkout."
    )


async def test_discard_of_a_pushed_branch_says_the_upstreams_copy_stays(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """A branch Fleetwarden pushed: the answer says only its checkout and Fleetwarden's
    copy are removed, that the upstream keeps its copy, and how to delete it there."""
    desk = FakeDesk(replace(a_line(), pushed_sha="b" * 40))
    answer = await say(a_router(ledger, desk), chat, "!discard coder")
    assert answer == (
        "Discarded **coder**'s branch fw/coder/12 of app: its checkout and Fleetwarden's copy "
        "of the branch are removed. The upstream keeps the copy Fleetwarden pushed of "
        "fw/coder/12: delete it there if you no longer want it (on the forge's branches "
        "page, or `git push origin --delete fw/coder/12` from a clone that may push)."
    )
    assert "gone" not in answer


async def test_discard_of_unpushed_work_asks_its_sender_first(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """Unpushed commits: it says how many and waits; another's `yes` is refused; the
    asker's `yes` discards; all of it audited."""
    desk = FakeDesk(a_line(), unpushed=2)
    router = a_router(ledger, desk)
    asked = await say(router, chat, "!discard coder")
    assert "would delete branch fw/coder/12 of app with 2 commits on no upstream branch" in asked
    assert "Reply `yes` here within 60 s" in asked
    assert ("discard", "coder") not in desk.calls
    assert "waits for the reply of" in await say(router, chat, "yes", sender=ADMIN)
    assert ("discard", "coder") not in desk.calls
    done = await say(router, chat, "yes")
    assert done.startswith("Discarded **coder**'s branch fw/coder/12")
    assert desk.calls[-1] == ("discard", "coder")
    ask, other, confirmed = reversed((await ledger.audit.audit_entries())[:3])
    assert ask.detail == "asked: discard fw/coder/12 with 2 commits unpushed"
    assert (other.outcome, other.sender) == ("denied", ADMIN)
    assert (confirmed.outcome, confirmed.detail) == ("ok", "discarded fw/coder/12 of app")


async def test_spawn_takes_a_repository_a_base_and_fresh(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """`--repo app --base develop --fresh`: the next run cuts a new branch, the spec names
    the repository and base; wrong names and mixes are refused before anything starts."""
    desk = FakeDesk()
    fleet = FakeFleet()
    router = a_router(ledger, desk, fleet)
    await say(router, chat, "!spawn coder --repo app --base develop --fresh")
    [spawned] = fleet.spawned
    assert spawned["asked"] == Asked(co_author=f"{OPERATOR} <ann@example.org>", fresh=True)
    assert (spawned["repo"], spawned["repo_base"], spawned["workdir"]) == ("app", "develop", None)
    refusals = {
        "!spawn coder --repo ap": "unknown repository 'ap' — did you mean 'app'?",
        "!spawn coder --repo app --workdir /tmp": "give --repo or --workdir, not both",
        "!spawn coder --repo app --base ../main": "is no branch name",
        "!spawn coder --base develop": "--base and --fresh are for an agent on a repository",
    }
    for text, why in refusals.items():
        assert why in await say(router, chat, text)
    assert len(fleet.spawned) == 1
    await say(router, chat, "!spawn plain --workdir /tmp")  # on no repository: not told
    assert len(fleet.spawned) == 2 and fleet.spawned[1]["asked"] is None


async def test_spawn_fresh_of_an_agent_on_a_repository_by_its_roster(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """An agent whose own settings name a repository takes `--fresh` without `--repo`, and
    goes to another host with it (its checkout is made there)."""
    desk = FakeDesk()
    fleet = on_repo("app")
    router = a_router(ledger, desk, fleet)
    await say(router, chat, "!spawn coder --fresh", sender=ADMIN)
    assert fleet.spawned[0]["asked"] == Asked(co_author=f"{ADMIN} <ada@example.org>", fresh=True)
    assert (fleet.spawned[0]["repo"], fleet.spawned[0]["repo_base"]) == (None, None)
    await say(router, chat, "!spawn coder --host box2")
    assert len(fleet.spawned) == 2 and fleet.spawned[1]["host"] == "box2"


def test_the_fake_desk_keeps_the_protocol() -> None:
    """The desk these tests use is a `RepoDesk` as the type checker reads it."""
    desk: RepoDesk = FakeDesk()
    assert desk.names() == ["app"]


async def test_spawn_of_an_agent_on_a_forge_issue_is_refused(ledger: Ledger) -> None:
    """An agent working on an issue from a forge: a chat `spawn` would take over its
    branch, so it is refused with what to do; a queued issue does not hold it."""
    from fleet.ledger.records.forge import ForgeRunRecord, Slug

    record = ForgeRunRecord(
        id=1, forge="gh", repo="app", slug=Slug("acme", "app"), issue=12, title="Fix it",
        agent="coder", branch="fw/coder/issue-12", state="waiting", requester="ann", pull=18,
        pull_url="https://github.com/acme/app/pull/18",
        issue_url="https://github.com/acme/app/issues/12", comment_id=None, check_id=None,
        run_id=3, line_id=1, done_signal="agent", done_status="ok", summary=None,
        started_at=T, activity_at=None, ended_at=None,
    )  # fmt: skip
    runs = [record]

    async def forge_runs(agent: str | None) -> list[ForgeRunRecord]:
        return [r for r in runs if agent in (None, r.agent)]

    fleet = FakeFleet()
    handlers = Handlers(
        fleet=cast(AgentControl, fleet), clock=ManualClock(T),
        launching=Launching(open_admission(fleet, forge_runs=forge_runs)), forge_runs=forge_runs,
    )  # fmt: skip
    with pytest.raises(CommandError, match=r"works on issue .*acme/app#12.* \(waiting\)"):
        await handlers.spawn(direct("!spawn coder"))
    assert fleet.spawned == []
    # A restart would end the issue's session and start another on its branch: refused too.
    with pytest.raises(CommandError, match=r"works on issue .*acme/app#12.* \(waiting\)"):
        await handlers.restart(direct("!restart coder"))
    assert fleet.restarted == []
    runs[0] = replace(record, state="queued")
    await handlers.spawn(direct("!spawn coder"))
    assert [s["name"] for s in fleet.spawned] == ["coder"]


async def test_discard_of_a_running_agent_is_refused_before_anything_is_asked(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """Unpushed work on the branch of a running agent: the refusal (`stop` first) comes
    at once, with no question asked and nothing discarded."""
    desk = FakeDesk(a_line(), unpushed=2, busy="running and still writing fw/coder/12")
    answer = await say(a_router(ledger, desk), chat, "!discard coder")
    assert "`stop coder` first, then discard" in answer
    assert "yes" not in answer
    assert [call[0] for call in desk.calls] == ["ready"]
    assert "waits for" not in await say(a_router(ledger, desk), chat, "yes")


def an_earlier_line() -> LineRecord:
    """``coder``'s line that ``spawn --fresh`` left live, older than its newest."""
    return replace(a_line(branch="fw/coder/3"), id=3, line=3)


@pytest.mark.parametrize(
    ("text", "verb", "said"),
    [
        ("!diff fw/coder/3 --stat", "change", "src/app.py"),
        ("!push fw/coder/3", "push", "Pushed **coder**'s branch fw/coder/3"),
        ("!merge fw/coder/3", "merge", "**coder**: Merged into main"),
        ("!discard fw/coder/3", "discard", "Discarded **coder**'s branch fw/coder/3"),
    ],
)
async def test_an_earlier_branch_is_named_by_its_branch(
    ledger: Ledger, chat: FakeConnector, text: str, verb: str, said: str
) -> None:
    """After `spawn --fresh`, the agent's earlier live branch is reached by its name: the
    verb acts on that line (the agent, running on its newest, does not hold it)."""
    desk = FakeDesk(a_line(), busy="running")
    desk.earlier.append(an_earlier_line())
    answer = await say(a_router(ledger, desk), chat, text, sender=ADMIN)
    assert said in answer
    assert desk.calls[-1][:2] == (verb, "coder")
    assert desk.lines_used and set(desk.lines_used) == {3}


async def test_a_branch_no_line_has_is_refused_naming_branches(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """A branch-shaped NAME no live line has: refused, pointing to `branches`."""
    desk = FakeDesk(a_line())
    answer = await say(a_router(ledger, desk), chat, "!merge fw/coder/99")
    assert answer.endswith("no live branch is called fw/coder/99: `branches` lists them")
    assert [call[0] for call in desk.calls] == []


async def test_spawn_fresh_names_the_earlier_branch_it_leaves(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """`spawn coder --fresh` with a live branch: the answer says it stays and how to name
    it; a running agent's `--fresh` is refused (its run writes that branch), nothing set."""
    desk = FakeDesk(a_line())
    fleet = on_repo("app")
    router = a_router(ledger, desk, fleet)
    answer = await say(router, chat, "!spawn coder --fresh", sender=ADMIN)
    assert "Its earlier branch fw/coder/12 stays as it was" in answer
    assert "`merge fw/coder/12`" in answer and "`discard fw/coder/12`" in answer
    fleet.live.add("coder")
    desk.calls.clear()
    refused = await say(router, chat, "!spawn coder --fresh", sender=ADMIN)
    assert "coder is running on its branch fw/coder/12: `stop coder` first" in refused
    assert desk.calls == [] and len(fleet.spawned) == 1


async def test_an_agent_on_an_issue_without_a_session_is_told_what_goes_on(
    ledger: Ledger,
) -> None:
    """An agent on a forge issue whose session ended: `spawn` no longer points to `send`
    (which would say "spawn it first"), and `send` says what gives it its next run."""
    from fleet.ledger.records.forge import ForgeRunRecord, Slug

    record = ForgeRunRecord(
        id=1, forge="gh", repo="app", slug=Slug("acme", "app"), issue=12, title="Fix it",
        agent="coder", branch="fw/coder/issue-12", state="waiting", requester="ann", pull=18,
        pull_url="https://github.com/acme/app/pull/18",
        issue_url="https://github.com/acme/app/issues/12", comment_id=None, check_id=None,
        run_id=3, line_id=1, done_signal="agent", done_status="ok", summary=None,
        started_at=T, activity_at=None, ended_at=None,
    )  # fmt: skip

    async def forge_runs(agent: str | None) -> list[ForgeRunRecord]:
        return [r for r in [record] if agent in (None, r.agent)]

    fleet = FakeFleet()
    handlers = Handlers(
        fleet=cast(AgentControl, fleet), clock=ManualClock(T),
        launching=Launching(open_admission(fleet, forge_runs=forge_runs)), forge_runs=forge_runs,
    )  # fmt: skip
    goes_on = "a review or comment on its pull request starts its next run on its branch"
    with pytest.raises(CommandError) as spawned:
        await handlers.spawn(direct("!spawn coder"))
    assert "and is not running now: " + goes_on in str(spawned.value)
    assert "send coder" not in str(spawned.value)
    with pytest.raises(CommandError) as sent:
        await handlers.send(direct("!send coder look again"))
    assert "coder has no live session to send to" in str(sent.value)
    assert goes_on in str(sent.value) and "spawn it first" not in str(sent.value)
    fleet.live.add("coder")
    with pytest.raises(CommandError, match=r"`send coder TEXT` continues that session"):
        await handlers.spawn(direct("!spawn coder"))
