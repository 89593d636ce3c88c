"""What ``check-config`` says of the repositories and forges beyond the schema, each problem
on its line of the config file.

Offline (plain ``check-config``): a repository whose ``url`` is a path on this machine that
does not exist or is no git repository, or whose ``copy_from`` is no directory; and the
address a forge's webhook must point at (:func:`webhook_base`). Online (``check-config
--online``, :mod:`bot.cli.check.online`, loaded only then): each forge asked who its
credential is, as the bot asks at start (:mod:`fleet.forge.api.credential_words`) — a
GitLab also its token's scopes and the bot's role on each of its repositories
(:mod:`bot.cli.check.gitlab`) — and each repository's branches read with its credential
through the same code the bot fetches with (:meth:`fleet.repos.upstream.mirror.Mirror.check`)
— a GitHub App's installation token minted first, as at start — and each MCP server's OAuth
token endpoint asked for a token with the client credentials
(:func:`fleet.mcp.upstream.oauth.token_problems`), and Slack with the app's tokens
(:func:`bot.cli.check.slack.slack_problems`); each refusal in Fleetwarden's words, naming
the variable the credential is read from, never its value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from bot.config import Config, ConfigError, ConfigProblem
from bot.config.checks.problems import Locator, compose
from bot.config.checks.repos import path_problems
from bot.config.dashboard import DashboardSection
from fleet.budgets.schema import Loc


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
