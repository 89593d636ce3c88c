"""``check-config --online`` with a `connectors.slack` section, against a fake Slack on
loopback speaking its Web API: both tokens taken → OK; a scope the bot lacks named; a
wrong token said as Slack's `invalid_auth`; a token of the wrong kind refused offline by
its variable — through the real ``fleetwarden check-config`` too, no token in any output."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli.check.slack import slack_problems
from connectors.slack.config import API_BASE_ENV, SlackConfig
from connectors.slack.manifest import SESSION_SCOPE
from tests.fakes.slack.server import SlackServer, slack_server
from tests.fakes.slack.world import SlackWorld
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

CHANNEL = "C0123456789"


@pytest.fixture
async def slack() -> AsyncIterator[SlackServer]:
    """The fake Slack, its bot token holding the manifest's scopes (an agent's too)."""
    world = SlackWorld()
    world.bot_scopes.add(SESSION_SCOPE)
    async with slack_server(world) as server:
        yield server


def asked(server: SlackServer) -> list[tuple[str, str | None]]:
    """Each Web API call the fake took: its method and the kind of token it came with."""
    return [(call.method, call.token_kind) for call in server.world.calls]


def wrong_token(token: str) -> str:
    """A token of the same kind, not the one Slack knows."""
    return token[:-8] + "x" * 8


def section(**extra: object) -> SlackConfig:
    return SlackConfig.model_validate(
        {
            "bot_token_env": "FW_SLACK_BOT",
            "app_token_env": "FW_SLACK_APP",
            "channel_id": CHANNEL,
            **extra,
        }
    )


def env(server: SlackServer, bot: str | None = None, app: str | None = None) -> dict[str, str]:
    world = server.world
    return {
        "FW_SLACK_BOT": world.bot_token if bot is None else bot,
        "FW_SLACK_APP": world.app_token if app is None else app,
        API_BASE_ENV: server.api_base,
    }


def no_secret(server: SlackServer, text: str) -> None:
    """Neither token, nor their secret tails, anywhere in ``text``."""
    for token in (server.world.bot_token, server.world.app_token):
        assert token[-16:] not in text and wrong_token(token)[-16:] not in text, text


async def test_both_tokens_with_every_scope_pass(slack: SlackServer) -> None:
    """auth.test with the bot token and apps.connections.open with the app token: no
    problem, and the socket address was only asked for, never opened."""
    assert await slack_problems(section(), env(slack)) == []
    assert asked(slack) == [("auth.test", "bot"), ("apps.connections.open", "app")]
    assert len(slack.hub.tickets) == 1 and slack.hub.links == []


async def test_http_mode_asks_only_the_bot_token(slack: SlackServer) -> None:
    """http mode has no app-level token: only auth.test is called."""
    config = section(mode="http", signing_secret_env="FW_SLACK_SIGNING", app_token_env=None)
    assert await slack_problems(config, env(slack)) == []
    assert asked(slack) == [("auth.test", "bot")]


async def test_a_scope_the_bot_lacks_is_named_with_the_fix(slack: SlackServer) -> None:
    """Scopes missing from the bot token's x-oauth-scopes are listed, with where to add
    them; assistant:write's says it comes with declaring the app an agent."""
    slack.world.bot_scopes -= {"reactions:write", "assistant:write"}
    [(loc, said)] = await slack_problems(section(), env(slack))
    assert loc == ("connectors", "slack", "bot_token_env")
    assert said.startswith(
        "the bot token in FW_SLACK_BOT lacks the scopes assistant:write, reactions:write: "
    )
    assert "Bot Token Scopes" in said and "reinstall" in said and "agent_sessions: false" in said
    slack.world.bot_scopes.add("reactions:write")
    assert await slack_problems(section(agent_sessions=False), env(slack)) == []


async def test_the_app_tokens_missing_scope_says_what_slack_needed(slack: SlackServer) -> None:
    """apps.connections.open answering missing_scope: its `needed` is said."""
    slack.world.app_scopes.clear()
    [(loc, said)] = await slack_problems(section(), env(slack))
    assert loc == ("connectors", "slack", "app_token_env")
    assert "missing_scope, it needs connections:write" in said


async def test_a_wrong_token_is_said_as_invalid_auth_without_the_token(slack: SlackServer) -> None:
    """A bot token Slack does not know: `invalid_auth` said plainly at bot_token_env."""
    [(loc, said)] = await slack_problems(
        section(), env(slack, bot=wrong_token(slack.world.bot_token))
    )
    assert loc == ("connectors", "slack", "bot_token_env")
    assert said.startswith("Slack refused the Slack app's bot token in FW_SLACK_BOT: invalid_auth")
    no_secret(slack, said)


async def test_a_slack_out_of_reach_is_said(slack: SlackServer) -> None:
    """Nothing listening at the API base: said per token, with the address asked."""
    base = slack.api_base
    await slack.stop()
    found = await slack_problems(section(), {**env(slack), API_BASE_ENV: base})
    assert [loc[-1] for loc, _ in found] == ["bot_token_env", "app_token_env"]
    assert all(said.startswith(f"could not reach Slack at {base}") for _, said in found)


async def test_a_bad_api_base_override_is_named(slack: SlackServer) -> None:
    """FLEETWARDEN_SLACK_API_BASE that is no http(s) URL: said at api_base, Slack not
    asked."""
    [(loc, said)] = await slack_problems(section(), {**env(slack), API_BASE_ENV: "ftp://x"})
    assert loc == ("connectors", "slack", "api_base")
    assert said.startswith(f"{API_BASE_ENV} must be an http:// or https:// URL")
    assert asked(slack) == []


# --- the real command ------------------------------------------------------------------

CONFIG = f"""\
state_dir: ./state
operators:
  - {{id: U0123ABCD, role: admin}}
  - {{id: 'usergroup:S0123ABCD', role: operator, connector: slack}}
connectors:
  slack:
    bot_token_env: FW_SLACK_BOT
    app_token_env: FW_SLACK_APP
    channel_id: {CHANNEL}
"""


async def check(
    server: SlackServer, tmp_path: Path, *args: str, **environ: str
) -> tuple[int, str, str]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG)
    process = await asyncio.create_subprocess_exec(
        str(FLEETWARDEN),
        "check-config",
        "--config",
        str(config),
        *args,
        env=clean_env(**environ),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    no_secret(server, out.decode() + err.decode())
    return process.returncode, out.decode(), err.decode()


async def test_check_config_online_says_slack_took_both_tokens(
    slack: SlackServer, tmp_path: Path
) -> None:
    """The real command: OK, Slack listed among the connectors, and what --online asked."""
    code, out, err = await check(slack, tmp_path, "--online", **env(slack))
    assert code == 0, err
    assert "  connectors: slack" in out.splitlines()
    assert "  online:     Slack took the bot token and app-level token; the bot holds every " in out
    assert asked(slack) == [("auth.test", "bot"), ("apps.connections.open", "app")]
    code, out, err = await check(slack, tmp_path, **env(slack))
    assert code == 0, err
    assert "Slack not asked (`check-config --online` tries the bot token and app-level" in out


async def test_check_config_refuses_swapped_tokens_by_their_variables(
    slack: SlackServer, tmp_path: Path
) -> None:
    """The two tokens swapped: exit 2, each variable at its line with the start it needs,
    before Slack is asked anything."""
    code, _, err = await check(
        slack,
        tmp_path,
        "--online",
        **env(slack, bot=slack.world.app_token, app=slack.world.bot_token),
    )
    assert code == 2
    assert (
        "fleetwarden.yaml:7: connectors.slack.bot_token_env: environment variable "
        "FW_SLACK_BOT holds an app-level token (xapp-…), not the Slack app's bot token"
    ) in err
    assert (
        "fleetwarden.yaml:8: connectors.slack.app_token_env: environment variable "
        "FW_SLACK_APP holds a bot token (xoxb-…), not the Slack app's app-level token"
    ) in err
    assert asked(slack) == []


async def test_check_config_online_says_invalid_auth_at_its_line(
    slack: SlackServer, tmp_path: Path
) -> None:
    """A bot token Slack refuses: exit 2 at bot_token_env's line, Slack's word said."""
    code, _, err = await check(
        slack, tmp_path, "--online", **env(slack, bot=wrong_token(slack.world.bot_token))
    )
    assert code == 2
    assert (
        "fleetwarden.yaml:7: connectors.slack.bot_token_env: Slack refused the Slack app's "
        "bot token in FW_SLACK_BOT: invalid_auth"
    ) in err
