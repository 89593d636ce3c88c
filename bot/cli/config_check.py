"""What ``check-config`` says of the repositories and forges beyond the schema, each problem
on its line of the config file.

Offline (plain ``check-config``): a repository whose ``url`` is a path on this machine that
does not exist or is no git repository, or whose ``copy_from`` is no directory; and the
address a forge's webhook must point at (:func:`webhook_base`). Online (``check-config
--online``): each forge asked who its credential is, as the bot asks at start
(:mod:`fleet.forge.api.credential_words`) — a GitLab also its token's scopes and the bot's
role on each of its repositories (:mod:`bot.cli.gitlab_check`) — and each repository's
branches read with its credential through the same code the bot fetches with
(:meth:`fleet.repos.upstream.mirror.Mirror.check`) — a GitHub App's installation token minted first,
as at start — and each MCP server's OAuth token endpoint asked for a token with the client
credentials (:func:`fleet.mcp.upstream.oauth.token_problems`), and Slack with the app's
tokens (:func:`bot.cli.slack_check.slack_problems`); each refusal in Fleetwarden's words,
naming the variable the credential is read from, never its value.
"""

from __future__ import annotations

import contextlib
import logging
from collections import ChainMap
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.app.phases.forges.clients import app_repos, open_api
from bot.cli.gitlab_check import gitlab_problems
from bot.cli.mcp_check import mcp_tool_problems
from bot.cli.slack_check import slack_problems
from bot.config import Config, ConfigError, ConfigProblem
from bot.config.checks.forges import repo_credentials
from bot.config.checks.problems import Locator, compose
from bot.config.checks.repos import path_problems
from bot.config.dashboard import DashboardSection
from fleet.budgets.schema import Loc
from fleet.forge.api.credential_words import login_problem
from fleet.forge.api.gitlab.client import GitLabApi
from fleet.forge.model import ForgeApi, ForgeApiError
from fleet.mcp.upstream.oauth import token_problems
from fleet.repos.upstream.mirror import Mirror
from fleet.timing.clock import SystemClock

log = logging.getLogger(__name__)


def webhook_base(config: Config) -> str:
    """Where a forge's webhook points, up to its ``/webhooks/NAME``: the dashboard's
    ``public_url``, else its ``listen`` address — ``http://127.0.0.1:8750`` without a
    ``dashboard:`` section, as the webhooks are then served alone. Never the dashboard's
    own name on this machine (it keeps its cookie from other local ports)."""
    settings = config.dashboard or DashboardSection().settings(config.state_dir)
    if settings.configured_url is not None:
        return settings.configured_url.rstrip("/")
    scheme = "https" if settings.tls else "http"
    if settings.host in ("0.0.0.0", "::"):  # every address: the one the forge reaches
        host = "<this machine's address>"
    else:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{scheme}://{host}:{settings.port}"


def offline_problems(config: Config) -> list[tuple[Loc, str]]:
    """Repositories whose url is a path on this machine that is not a git repository, or
    whose ``copy_from`` is no directory (:func:`bot.config.checks.repos.path_problems`)."""
    return path_problems(config.repos)


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


def located(config: Config, shown: str, found: Sequence[tuple[Loc, str]]) -> list[str]:
    """``found`` as ``check-config`` prints problems: ``FILE:LINE: key.path: message``."""
    if not found:
        return []
    root = None
    if config.source is not None:
        with contextlib.suppress(OSError, ConfigError):
            root, _, _ = compose(config.source.read_text(encoding="utf-8"), shown)
    locate = Locator(root)
    problems = []
    for loc, message in found:
        line, path, _ = locate(loc)
        problems.append(str(ConfigProblem(shown, line, path, message)))
    return problems


async def _close(api: ForgeApi) -> None:
    try:
        await api.close()
    except Exception:  # the check's answer stands; a client that would not close is noise
        log.debug("a forge client did not close", exc_info=True)
