"""What ``check-config --online`` asks a GitLab beyond who its token is: the token's
scopes (``GET /personal_access_tokens/self``, which project and group tokens answer too)
and the bot's role on each repository of that forge (``members/all``), each shortfall
said at the forge's key in Fleetwarden's words with its fix, never the token.

Fleetwarden needs the ``api`` scope: GitLab's API for comments, merge requests and
approvals, and — as GitLab includes ``write_repository`` in ``api`` — git over HTTPS too;
``write_repository`` alone pushes but reaches no API, ``read_api`` reads only. And the
Developer role (30) or above on each repository: pushing a branch and opening a merge
request need it (Maintainer to push to a protected branch, which Fleetwarden never does).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from fleet.budgets.schema import Loc
from fleet.forge.api.gitlab.client import GitLabApi
from fleet.forge.model import ForgeApiError
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from fleet.repos.schema import RepoEntry

log = logging.getLogger(__name__)

NEEDED_SCOPE: Final = "api"
DEVELOPER: Final = 30
_ROLES: Final = {50: "Owner", 40: "Maintainer", 30: "Developer", 20: "Reporter", 10: "Guest",
                 5: "Minimal Access"}  # fmt: skip


def _role(level: int) -> str:
    return f"{_ROLES.get(level, 'no role')} ({level})" if level else "no member"


async def gitlab_problems(
    name: str, entry: ForgeEntry, api: GitLabApi, repos: Mapping[str, RepoEntry]
) -> list[tuple[Loc, str]]:
    """The token's scopes and the bot's role on each of ``repos`` whose forge is ``name``."""
    found: list[tuple[Loc, str]] = []
    variable = entry.token_env or "its token variable"
    try:
        scopes = await api.token_scopes()
    except ForgeApiError as exc:
        if exc.status == 404:  # a GitLab older than 15.5 has no /personal_access_tokens/self
            log.info("forge %s: GitLab did not say the token's scopes", name)
            scopes = None
        else:
            found.append(
                (
                    ("forges", name, "token_env"),
                    f"forge {name}: GitLab did not say the scopes of the token in {variable} "
                    f"({exc})",
                )
            )
            return found
    if scopes is not None and NEEDED_SCOPE not in scopes:
        held = ", ".join(scopes) or "none"
        found.append(
            (
                ("forges", name, "token_env"),
                f"forge {name}: the token in {variable} has the scopes {held}, not api — "
                "Fleetwarden comments, opens merge requests and pushes with it; make a "
                "token with the api scope (it covers git over HTTPS too) and export it "
                f"in {variable}",
            )
        )
    try:
        login = await api.whoami()
    except ForgeApiError:
        return found  # said already: the forge's login problem
    for repo_name, repo in repos.items():
        slug = repo.forge_slug()
        if repo.forge != name or slug is None:
            continue
        try:
            level = await api.access_level(Slug.parse(slug), login)
        except ForgeApiError as exc:
            found.append(
                (
                    ("repos", repo_name, "forge"),
                    f"repository {repo_name}: forge {name} did not say {login}'s role on "
                    f"{slug} ({exc})",
                )
            )
            continue
        if level < DEVELOPER:
            found.append(
                (
                    ("repos", repo_name, "forge"),
                    f"repository {repo_name}: {login} is {_role(level)} on {slug} on forge "
                    f"{name}; pushing a branch and opening a merge request need the "
                    f"Developer role (30) or above — invite {login} to {slug} as Developer",
                )
            )
    return found
