"""What ``check-config --online`` asks: each forge who its credential is, each repository's
branches with its credential, each MCP server's OAuth token endpoint and Slack
(:mod:`bot.cli.check.offline` says what of each, and places every problem on its line).
Loaded only when ``--online`` is given: the forges' clients are needed for nothing else.
"""

from __future__ import annotations

import logging
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path

from bot.app.phases.forges.clients import app_repos, open_api
from bot.cli.check.gitlab import gitlab_problems
from bot.cli.check.mcp import mcp_tool_problems
from bot.cli.check.slack import slack_problems
from bot.config import Config
from bot.config.checks.forges import repo_credentials
from fleet.budgets.schema import Loc
from fleet.forge.api.credential_words import login_problem
from fleet.forge.api.gitlab.client import GitLabApi
from fleet.forge.model import ForgeApi, ForgeApiError
from fleet.mcp.upstream.oauth import token_problems
from fleet.repos.upstream.mirror import Mirror
from fleet.timing.clock import SystemClock

log = logging.getLogger(__name__)


async def online_problems(
    config: Config, environ: Mapping[str, str], scratch: Path
) -> list[tuple[Loc, str]]:
    """Each forge and repository asked with its credential now; what each refused, and
    where in the config the fix goes. ``scratch``: a directory of the check's own."""
    found: list[tuple[Loc, str]] = []
    apis = {name: open_api(entry, environ, SystemClock()) for name, entry in config.forges.items()}
    minted: dict[str, str] = {}
    unminted: set[str] = set()
    try:
        for name, entry in config.forges.items():
            try:
                problem = login_problem(
                    name, entry, actual=await apis[name].whoami(), running=False
                )
            except ForgeApiError as exc:
                problem = login_problem(name, entry, error=exc, running=False)
            if problem is not None:
                found.append((("forges", name, problem.key), problem.text))
            api = apis[name]
            if isinstance(api, GitLabApi) and problem is None:
                found += await gitlab_problems(name, entry, api, config.repos)
        for forge, variable, slug in app_repos(config):
            try:
                minted[variable] = await apis[forge].git_token(slug)
            except ForgeApiError as exc:
                unminted.add(variable)
                found.append(
                    (
                        ("forges", forge, "app"),
                        f"forge {forge}'s GitHub App could not get a token for {slug}: {exc}. "
                        f"Install the App on {slug}, with contents read and write",
                    )
                )
        environ = ChainMap(minted, dict(environ))
        credentials = repo_credentials(config.repos, config.forges)
        for name, repo in config.repos.items():
            if repo.token_env in unminted:
                continue
            mirror = Mirror(name, repo, scratch, environ, credentials[name])
            said = await mirror.check()
            if said is not None:
                found.append((said.loc, said.text))
    finally:
        for api in apis.values():
            await _close(api)
    found += await token_problems(config.mcp, environ)
    written = {name: list(e.tools) for name, e in config.document.mcp.items() if e.tools}
    found += await mcp_tool_problems(config.mcp, written, environ)
    found += await slack_problems(config.slack, environ)
    return found


async def _close(api: ForgeApi) -> None:
    try:
        await api.close()
    except Exception:  # the check's answer stands; a client that would not close is noise
        log.debug("a forge client did not close", exc_info=True)
