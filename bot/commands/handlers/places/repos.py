"""The repository commands: ``diff`` and ``branches`` show what the runs' branches hold,
``merge``, ``push`` and ``discard`` land, publish or drop one.

Their specs are :mod:`bot.commands.handlers.places.repo_specs`'s. Each asks the
repositories' desk (:class:`fleet.repos.desk.RepoDesk`); without a ``repos:``
section there is none, and each says so. Merging into a protected branch needs an admin,
and so does ``--unreviewed`` (a tip its review agent did not approve).
``discard`` of a branch holding commits that are on no upstream branch asks first, as
``stop all`` does (:mod:`bot.commands.routing.confirmations`): only its asker's ``yes`` in the same
place within the minute discards it. The router audits each verb with what it acted on
(``Reply.detail``), and each leaves a line in the agent's thread (``Reply.thread_line``).
``spawn``'s repository flags are :mod:`bot.commands.handlers.agents.spawn.repository`'s.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from bot.acl import Role
from bot.commands.errors import CommandError, NotFound, PermissionDenied
from bot.commands.family import Family, command
from bot.commands.handlers.places.repo_specs import BRANCHES, DIFF, DISCARD, MERGE, PUSH
from bot.commands.parsing.grammar import no_agent, show
from bot.commands.routing.confirmations import CHOICES, ConfirmationDesk
from bot.commands.routing.request import Reply, Request
from bot.render.forge import web_address
from bot.render.work import changes as render
from bot.render.work import tasks as render_tasks
from bot.text.agent_text import said
from connectors.base import Attachment, safe_file_name
from fleet.errors import FleetError
from fleet.forge.runs.merging import PullMergeRefused, PullMerges
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.ledger.records.lines import LineRecord
from fleet.names import is_agent_name
from fleet.repos.desk import NoLine, RepoDesk
from fleet.repos.facts import Change
from fleet.repos.schema import STRATEGIES, ref_problem
from fleet.repos.upstream.git_words import sentences
from fleet.schema import unknown_value_message
from fleet.tasks.register import Register

log = logging.getLogger(__name__)

NO_REPOS: Final = "no repositories are configured: add `repos:` to the config (see docs/repos.md)"
DIFF_PART: Final = 1_900
DIFF_PARTS_INLINE: Final = 3  # parts of a diff shown in chat; a longer one goes as a file
"""Characters of one code block of a diff: one Discord message each."""
DIFF_MOST: Final = 24_000
"""Characters of a diff shown in chat; past them, the lines left out are counted."""
_FILE_MOST: Final = 400

CoAuthors = Callable[[str, str], str | None]
"""(connector, sender) → the sender's ``NAME <EMAIL>`` for ``Co-authored-by:``, if any."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a verb's ``NAME`` names: an agent, and one of its live lines when named by its
    branch (``None``: the agent's newest live line, the one its runs work on)."""

    agent: str
    line: LineRecord | None = None

    @property
    def line_id(self) -> int | None:
        return None if self.line is None else self.line.id


class RepoCommands(Family):
    """``diff``, ``branches``, ``merge``, ``push`` and ``discard`` over the desk."""

    def __init__(
        self,
        repos: RepoDesk | None,
        confirmations: ConfirmationDesk,
        co_authors: CoAuthors | None = None,
        register: Register | None = None,
        pulls: PullMerges | None = None,
    ) -> None:
        """``repos``: ``None`` when the config has no ``repos:``. ``confirmations``: where
        ``discard`` asks before dropping unpushed work. ``co_authors``: who the sender is
        in git, for the ``Co-authored-by:`` of a merge. ``register``: the tasks, those
        whose work a ``merge`` lands done as a forge merge makes them (``None``: none).
        ``pulls``: the forges that merge a run's open pull request on ``merge``, guarded by
        its head (GitLab's; ``None``: no forge)."""
        self._repos = repos
        self._confirmations = confirmations
        self._co_authors = co_authors
        self._register = register
        self._pulls = pulls

    def _desk(self) -> RepoDesk:
        if self._repos is None:
            raise CommandError(NO_REPOS)
        return self._repos

    async def _line(self, target: Target) -> LineRecord:
        if target.line is not None:
            return target.line
        name = target.agent
        desk = self._desk()
        line = await desk.line_of(name)
        if line is None:
            await self._known(name)
            raise NoLine(await desk.no_branch(name))
        return line

    async def _target(self, req: Request) -> Target:
        """What ``NAME`` names: an agent (its newest live line), or a live branch by name."""
        name = req.arg("NAME")
        if is_agent_name(name):
            await self._known(name)
            return Target(name)
        if ref_problem(name) is None and "/" in name:  # every run's branch has a '/'
            found = await self._desk().lines_named(name)
            if len(found) == 1:
                return Target(found[0].agent, found[0])
            if found:
                repos = ", ".join(sorted(line.repo for line in found))
                raise CommandError(
                    f"branch {said(name, 80)} is live in several repositories ({repos}), so "
                    "its name is not enough: name its agent, whose verbs act on its newest"
                )
            raise NotFound(f"no live branch is called {said(name, 80)}: `branches` lists them")
        raise NotFound(f"no agent is called {show(name)}: `ps` lists them")

    async def _known(self, name: str) -> None:
        """Refuse ``name`` when no agent is called so, with the likeliest one meant."""
        agents = list(await self._desk().known_agents())
        if name not in agents:
            raise no_agent(name, agents)

    @command(DIFF)
    async def diff(self, req: Request) -> Reply:
        repos, target = self._desk(), await self._target(req)
        name, line_id = target.agent, target.line_id
        path = req.command.args.get("FILE")
        if path is not None:
            _check_file(path)
        if req.command.bool_flag("stat"):
            return Reply(render.stat(await repos.change(name, line_id)), topic=name)
        text = await repos.diff(name, path, line_id)
        what = f"**{name}**'s branch" + (f" in {said(path, 120)}" if path else "")
        if not text.strip():  # a FILE the branch does not change is said so, with its files
            change = await repos.change(name, line_id) if path is not None else None
            return Reply(render.empty_diff(name, path, change), topic=name)
        shown, left = render.diff_head(text, DIFF_MOST)
        parts = render.diff_text(shown, DIFF_PART)
        head = f"The diff of {what} against its base:"
        if left or len(parts) > DIFF_PARTS_INLINE:  # long: the whole of it as a file
            file = Attachment.of_text(safe_file_name(name, ".diff"), text, "text/x-diff")
            note = (
                f"\n\nThe whole diff is attached as `{file.name}`; `diff {name} --stat` "
                f"lists the files, `diff {name} FILE` shows one."
            )
            return Reply("\n\n".join([head, parts[0]]) + note, topic=name, files=(file,))
        return Reply("\n\n".join([head, *parts]), topic=name)

    @command(BRANCHES)
    async def branches(self, req: Request) -> str:
        repos = self._desk()
        repo = req.command.args.get("REPO")
        if repo is not None and repo not in repos.names():
            raise NotFound(unknown_value_message("repository", repo, list(repos.names())))
        stale = await repos.refresh(repo)  # "behind" as the upstream is now, or why not
        changes = await repos.lines(repo)
        text = render.branches_table(changes) + await self._several(changes)
        if stale:
            notes = (f"⚠ Not fetched: {said(sentences(note), 400)}" for note in stale)
            text += "\n\n" + "\n".join(notes)
        orphans = await repos.orphans()
        if orphans:
            listed = "\n".join(f"- {said(line, 200)}" for line in orphans)
            text += "\n\nOrphans (removed only when nothing in them is unpushed):\n\n" + listed
        return text

    async def _several(self, changes: Sequence[Change]) -> str:
        """A word under ``branches`` for each agent with more than one live branch: which
        one its name acts on, and how to name the others."""
        counts = Counter(change.agent for change in changes)
        notes = []
        for agent in sorted(a for a, n in counts.items() if n > 1):
            newest = await self._desk().line_of(agent)
            others = (c.branch for c in changes if c.agent == agent)
            other = next((b for b in others if newest is None or b != newest.branch), None)
            if newest is None or other is None or ref_problem(other) is not None:
                continue  # a branch name Fleetwarden made: nothing in it can end a code span
            notes.append(
                f"**{agent}** has {counts[agent]} live branches: `merge {agent}` and the other "
                f"verbs act on its newest, {said(newest.branch, 80)}; name another by its "
                f"branch (`merge {other}`)."
            )
        return "".join("\n\n" + note for note in notes)

    @command(MERGE)
    async def merge(self, req: Request) -> Reply:
        repos, target = self._desk(), await self._target(req)
        name = target.agent
        chosen = [s for s in STRATEGIES if req.command.bool_flag(s)]
        if len(chosen) > 1:
            raise CommandError("give one of --squash, --rebase and --merge, not several")
        line = await self._line(target)
        base = said(line.base_ref, 80)
        unreviewed = _unreviewed(req, "merge")
        was = await self._unreviewed_detail(target) if unreviewed else ""
        if repos.entry(line.repo).is_protected(line.base_ref) and req.role is not Role.ADMIN:
            raise PermissionDenied(
                f"{base} of {line.repo} is protected: merging into it needs the admin role; "
                f"you are {req.role.value}"
            )
        on_forge = await self._pulls.open_pull(line) if self._pulls is not None else None
        if on_forge is not None:
            return await self._merge_pull(req, line, on_forge, chosen, unreviewed=unreviewed)
        co_author = None
        if self._co_authors is not None:
            co_author = self._co_authors(req.message.connector, req.message.sender)
        result = await repos.merge(
            name,
            chosen[0] if chosen else None,
            by=req.who,
            co_author=co_author,
            line_id=target.line_id,
            unreviewed=unreviewed,
        )
        text = render.landed(result)
        branch = said(line.branch, 80)
        if result.new_sha is None or result.refused is not None:
            detail = f"merge of {line.branch} into {line.base_ref} refused: {result.refused}"
            thread = f"Merge of {branch} into {base} asked by {req.message.sender}: {text}"
            text = render.landed(result, agent=name)  # with the way on, for the asker
        else:
            detail = f"merged {line.branch} into {line.base_ref} at {result.new_sha}"
            thread = f"Branch {branch} merged by {req.message.sender}: {text}"
            if unreviewed:
                detail += was
                thread += " (unreviewed: `--unreviewed`)"
            done = await self._tasks_landed(line, req)
            if done:
                text += "\n\n" + done
                thread += " " + done
        return Reply(f"**{name}**: {text}", topic=name, thread_line=thread, detail=detail)

    async def _merge_pull(
        self,
        req: Request,
        line: LineRecord,
        record: ForgeRunRecord,
        chosen: Sequence[str],
        *,
        unreviewed: bool,
    ) -> Reply:
        """Merge ``line``'s open pull request ``record`` on its forge, at the head Fleetwarden
        pushed (the commit its review agent approved, unless ``--unreviewed``): the forge
        refuses if the head moved since. The forge's news of the merge ends the run."""
        assert self._pulls is not None and record.pull is not None
        name, repos = line.agent, self._desk()
        if chosen and chosen[0] == "rebase":
            raise CommandError(
                f"{name}'s merge request !{record.pull} is merged by its forge: --squash, "
                "--merge or neither (the project's setting)"
            )
        head = line.head_sha
        if head is None:
            raise CommandError(f"{name} has pushed nothing to {said(line.branch, 80)} yet")
        approved = await repos.approval(name, line.id)
        if approved is not None and approved != head and not unreviewed:
            raise CommandError(
                f"the approval on {said(line.branch, 80)} is of {approved[:12]}, and its head "
                f"is {head[:12]}: nothing was merged. Ask for a review of the head, or merge "
                "it `--unreviewed` (admin)"
            )
        where = said(record.pull_url or f"!{record.pull}", 200)
        try:
            squash = bool(chosen) and chosen[0] == "squash"
            await self._pulls.merge(record, head, line.base_ref, squash=squash)
        except PullMergeRefused as exc:
            raise CommandError(
                f"{record.forge} did not merge {name}'s merge request {where}: "
                f"{said(str(exc), 300)}. Nothing was merged."
            ) from None
        text = (
            f"merged {name}'s merge request {where} on {record.forge} at {head[:12]} (its "
            "head, as pushed); the run ends as the forge tells of it"
        )
        detail = f"merged !{record.pull} of {record.slug} at {head}"
        if unreviewed and approved != head:
            detail += " (unreviewed: `--unreviewed`)"
        thread = f"Merge request {where} merged by {req.message.sender}."
        return Reply(f"**{name}**: {text}", topic=name, thread_line=thread, detail=detail)

    async def _tasks_landed(self, line: LineRecord, req: Request) -> str:
        """The tasks whose work ``line`` held, its merge landed: done now, as a forge merge
        makes them; what to say of them (empty: none)."""
        if self._register is None:
            return ""
        why = f"{line.branch} merged into {line.base_ref} by {req.message.sender}"
        try:
            done = await self._register.landed(line, why, by=req.who)
        except FleetError as exc:  # merged all the same: `task done` ends them
            log.warning("the tasks of %s were not ended by its merge: %s", line.branch, exc)
            return ""
        return " ".join(
            f"Task {render_tasks.named(task)} is done: its change is merged." for task in done
        )

    @command(PUSH)
    async def push(self, req: Request) -> Reply:
        repos, target = self._desk(), await self._target(req)
        name, line = target.agent, await self._line(target)
        unreviewed = _unreviewed(req, "push")
        was = await self._unreviewed_detail(target) if unreviewed else ""
        url = await repos.push(name, target.line_id, unreviewed=unreviewed)
        branch = said(line.branch, 80)
        where = link(url)
        detail = f"pushed {line.branch} of {line.repo}{was}"
        return Reply(
            f"Pushed **{name}**'s branch {branch} to the upstream of {line.repo}: {where}",
            topic=name,
            thread_line=f"Branch {branch} pushed by {req.message.sender}: {where}",
            detail=detail,
        )

    async def _unreviewed_detail(self, target: Target) -> str:
        """What the audit trail keeps of a verb's ``--unreviewed``: the approved commit."""
        approved = await self._desk().approval(target.agent, target.line_id)
        was = f"; approved was {approved}" if approved else ""
        return f" --unreviewed{was}"

    @command(DISCARD)
    async def discard(self, req: Request) -> Reply:
        repos, target = self._desk(), await self._target(req)
        name = target.agent
        await self._line(target)
        # Refused before anything is asked: a running agent still writes its branch.
        line = await repos.ready(name, "discard", target.line_id)
        branch = said(line.branch, 80)
        if not req.confirmed:
            unpushed = await repos.unpushed(name, target.line_id)
            if unpushed > 0:
                commits = f"{unpushed} commit{'' if unpushed == 1 else 's'}"
                summary = (
                    f"`discard {name}` would delete branch {branch} of {line.repo} with "
                    f"{commits} on no upstream branch: that work would be lost "
                    f"(`push {name}` keeps it)."
                )
                asked = f"asked: discard {line.branch} with {commits} unpushed"
                return Reply(
                    await self._confirmations.ask(req, summary), detail=asked, choices=CHOICES
                )
        gone = await repos.discard(name, target.line_id)
        what = f"branch {said(gone.branch, 80)} of {gone.repo}"
        return Reply(
            f"Discarded **{name}**'s {what}: {discarded_words(gone)}",
            topic=name,
            thread_line=f"Discarded by {req.message.sender}: {what}, and its checkout.",
            detail=f"discarded {gone.branch} of {gone.repo}",
        )


def _unreviewed(req: Request, verb: str) -> bool:
    """Whether ``verb`` was asked ``--unreviewed``: an admin's only."""
    if not req.command.bool_flag("unreviewed"):
        return False
    if req.role is not Role.ADMIN:
        raise PermissionDenied(
            f"`{verb} --unreviewed` lands a commit its review agent did not approve: it needs "
            f"the admin role; you are {req.role.value}. Nothing was done"
        )
    return True


def discarded_words(line: LineRecord) -> str:
    """What ``discard`` removed of ``line`` — its checkout and Fleetwarden's copy of its
    branch — and, once Fleetwarden pushed it, that the upstream's copy stays and how to
    delete it there."""
    removed = "its checkout and Fleetwarden's copy of the branch are removed."
    if line.pushed_sha is None:
        return f"{removed} Fleetwarden never pushed it to the upstream."
    command = ""
    if "`" not in line.branch:  # a branch name Fleetwarden made: nothing ends the code span
        command = f", or `git push origin --delete {line.branch}` from a clone that may push"
    return (
        f"{removed} The upstream keeps the copy Fleetwarden pushed of {said(line.branch, 80)}: "
        f"delete it there if you no longer want it (on the forge's branches page{command})."
    )


def link(url: str) -> str:
    """Where a push can be seen: a web address as a link, anything else as text."""
    return f"<{url}>" if web_address(url) is not None else said(url, 300)


def _check_file(path: str) -> None:
    pure = PurePosixPath(path)
    bad = (
        not path
        or len(path) > _FILE_MOST
        or pure.is_absolute()
        or ".." in pure.parts
        or path.startswith("-")
        or not path.isprintable()
    )
    if bad:
        raise CommandError(
            f"FILE {said(path, 80)} is no path in the repository: give it relative to the "
            "repository's top, without '..'"
        )
