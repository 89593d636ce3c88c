"""What a line's door repo takes of a push, as Fleetwarden writes it into that repository's
config (``fleetwarden.*``) and the pre-receive hook reads it back: the line's branch and
base, whether runs may change CI and which more paths count as CI, who the agent commits as,
and the facts a commit may state about its run (its agent, its runs, its requester, its
issue and, once it is open, its pull request). Everything here is Fleetwarden's own; the
agent never writes this config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

_HOST_LABEL: Final = re.compile(r"[^a-z0-9-]+")
REFUSALS: Final = "fleetwarden/refusals.jsonl"
"""Where, inside a line's door repo, the hook appends each refusal as a JSON line."""
MAX_REFUSALS_FILE: Final = 1024 * 1024
"""Bytes of the refusals file read at most; the hook stops appending past it."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The name and e-mail a run's commits carry as author and committer."""

    name: str
    email: str

    def line(self) -> str:
        return f"{self.name} <{self.email}>"

    def env(self) -> dict[str, str]:
        """git's environment for a commit made as this identity."""
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


def agent_identity(agent: str, host: str) -> Identity:
    """The identity ``agent``'s commits carry on ``host`` (``local`` or an SSH host's
    name): its name, and an address under ``.invalid`` that names both and that no mail
    system or forge account will ever own."""
    return Identity(agent, f"{agent}@{host_label(host)}.fleetwarden.invalid")


def host_label(host: str) -> str:
    """``host`` (``local`` or an SSH host's name) as a domain label."""
    return _HOST_LABEL.sub("-", host.lower()).strip("-") or "local"


@dataclass(frozen=True, slots=True)
class Issue:
    """A forge issue or pull request of a run: ``owner/name`` and its number."""

    slug: str
    number: int

    def said(self) -> str:
        """As the door repo's config keeps it: ``owner/name#N``."""
        return f"{self.slug}#{self.number}"

    @classmethod
    def read(cls, text: str) -> Issue | None:
        """The issue ``owner/name#N`` says; None when it says none."""
        slug, _, number = text.rpartition("#")
        return cls(slug, int(number)) if slug and number.isdigit() else None


@dataclass(frozen=True, slots=True)
class Policy:
    """What the door repo's config says a push may do and say."""

    branch: str  # the full ref, refs/heads/...
    workflows: bool
    base: str = ""  # the full ref of the line's base, refs/heads/...
    ci_paths: tuple[str, ...] = ()  # more paths that count as CI (the repository's list)
    identity: Identity | None = None  # None: a line repo made before identities
    agent: str = ""
    runs: frozenset[str] = field(default_factory=frozenset)
    co_authors: frozenset[str] = field(default_factory=frozenset)
    issue: Issue | None = None
    pull: Issue | None = None  # the run's pull request, once it is open

    def own(self) -> tuple[Issue, ...]:
        """The issue and pull request the line's commits may name."""
        return tuple(i for i in (self.issue, self.pull) if i is not None)

    def settings(self) -> list[tuple[str, str]]:
        """The ``fleetwarden.*`` config lines that say this policy (multi-valued keys once
        per value)."""
        out = [
            ("fleetwarden.branch", self.branch),
            ("fleetwarden.workflows", "true" if self.workflows else "false"),
            ("fleetwarden.base", self.base),
            ("fleetwarden.agent", self.agent),
        ]
        if self.identity is not None:
            out += [
                ("fleetwarden.name", self.identity.name),
                ("fleetwarden.email", self.identity.email),
            ]
        if self.issue is not None:
            out.append(("fleetwarden.issue", self.issue.said()))
        if self.pull is not None:
            out.append(("fleetwarden.pull", self.pull.said()))
        out += [("fleetwarden.cipath", p) for p in self.ci_paths]
        out += [("fleetwarden.coauthor", p) for p in sorted(self.co_authors)]
        out += [("fleetwarden.run", r) for r in sorted(self.runs)]
        return out

    @classmethod
    def read(cls, values: Mapping[str, Sequence[str]]) -> Policy | None:
        """The policy of config ``values`` (key → its values, in order); None when it names
        no branch."""

        def one(key: str) -> str:
            found = values.get(f"fleetwarden.{key}", ())
            return found[-1] if found else ""

        def many(key: str) -> tuple[str, ...]:
            return tuple(values.get(f"fleetwarden.{key}", ()))

        branch = one("branch")
        if not branch.startswith("refs/heads/"):
            return None
        name, email = one("name"), one("email")
        return cls(
            branch=branch,
            workflows=one("workflows") == "true",
            base=one("base"),
            ci_paths=many("cipath"),
            identity=Identity(name, email) if name and email else None,
            agent=one("agent"),
            runs=frozenset(many("run")),
            co_authors=frozenset(many("coauthor")),
            issue=Issue.read(one("issue")),
            pull=Issue.read(one("pull")),
        )
