"""An upstream as Fleetwarden names it to a person: the repository, its url, and how the
config gives its credential (:class:`Credential`) in words that say where it is read from —
never its value.

:func:`credential_of` reads those words off a repository's own keys; the forges' check
gives a forge's App its own. What git's refusals of an upstream say about it is
:mod:`fleet.repos.upstream.git_words`'; how git is handed the credential itself is
:mod:`fleet.repos.upstream.credentials`'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fleet.repos.schema import RepoEntry
from fleet.repos.urls import url_kind

Loc = tuple[str | int, ...]
"""A key of the config (for ``check-config``'s file:line)."""


@dataclass(frozen=True, slots=True)
class Credential:
    """How the config gives a repository's credential, in words naming where it is read
    from — never its value. ``loc`` is the config key to fix."""

    kind: Literal["token", "app", "ssh_key", "ssh", "none", "local"]
    words: str
    loc: Loc
    variable: str | None = None
    # The user name a token goes with over https: GitHub's convention (Gitea takes it
    # too); a GitLab's repositories say ``oauth2`` (GitLab takes any, the token as password).
    git_user: str = "x-access-token"


@dataclass(frozen=True, slots=True)
class Upstream:
    """The upstream git spoke to: the repository's name in the config, its url, and how
    its credential is given."""

    repo: str
    url: str
    credential: Credential


def credential_of(repo: str, entry: RepoEntry) -> Credential:
    """``entry``'s credential as its own keys give it."""
    if entry.token_env is not None:
        return Credential(
            "token",
            f"the token in {entry.token_env} (repos.{repo}.token_env)",
            ("repos", repo, "token_env"),
            entry.token_env,
        )
    if entry.ssh_key is not None:
        return Credential(
            "ssh_key", f"the ssh key {entry.ssh_key} (repos.{repo}.ssh_key)", ("repos", repo)
        )
    kind = url_kind(entry.url)
    if kind == "local":
        return Credential("local", "no credential (a path on this machine)", ("repos", repo, "url"))
    if kind == "ssh":
        return Credential("ssh", "the ssh keys of Fleetwarden's own user", ("repos", repo))
    return Credential("none", "no credential", ("repos", repo))
