"""``check-config --online`` with a `connectors.slack` section, against a fake Slack on
loopback speaking its Web API: both tokens taken → OK; a scope the bot lacks named; a
wrong token said as Slack's `invalid_auth`; a token of the wrong kind refused offline by
its variable — through the real ``fleetwarden check-config`` too, no token in any output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp import web

from bot.cli.slack_check import slack_problems
from connectors.slack.config import API_BASE_ENV, SlackConfig
from connectors.slack.manifest import bot_scopes
from tests.fakes.loopback import LoopbackServer
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

BOT_TOKEN = "xoxb-1111111111-2222222222222-BotTokenSecretPart0001"
APP_TOKEN = "xapp-1-A0123ABCDEF-3333333333333-AppTokenSecretPart0002"
WRONG_BOT = "xoxb-1111111111-2222222222222-WrongTokenSecretPart9"
SECRET_PARTS = ("SecretPart", "1111111111", "3333333333333")
CHANNEL = "C0123456789"


class WebApi(LoopbackServer):
    """The two methods the check calls, as Slack answers them: POST with a bearer token,
    `x-oauth-scopes` on every answer, `missing_scope` with `needed`."""

    def __init__(self) -> None:
        super().__init__()
        self.bot_scopes = set(bot_scopes(agent_sessions=True))
        self.app_scopes = {"connections:write"}
        self.calls: list[tuple[str, str]] = []  # (method, token kind)

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self.serve)

    async def serve(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.method != "POST":
            return web.Response(status=405)
        body = parse_qs(await request.text())
        assert "token" not in body, "a token belongs in the Authorization header"
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        kind = {BOT_TOKEN: "bot", APP_TOKEN: "app"}.get(token, "unknown")
        self.calls.append((method, kind))
        scopes = {"bot": self.bot_scopes, "app": self.app_scopes}.get(kind, set())
        headers = {"x-oauth-scopes": ",".join(sorted(scopes))}
        if not token:
            answer: dict[str, object] = {"ok": False, "error": "not_authed"}
        elif kind == "unknown":
            answer = {"ok": False, "error": "invalid_auth"}
        elif method == "auth.test" and kind == "bot":
            answer = {
                "ok": True,
                "url": "https://fleet.slack.com/",
                "team": "Fleet",
                "user": "fleetwarden",
                "team_id": "T0123ABCD",
                "user_id": "U0BOT1234",
                "bot_id": "B0123ABCD",
                "is_enterprise_install": False,
            }
        elif method == "apps.connections.open" and kind == "app":
            if "connections:write" not in scopes:
                answer = {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": "connections:write",
                    "provided": ",".join(sorted(scopes)),
                }
            else:
                answer = {"ok": True, "url": f"ws://127.0.0.1:{self._port}/link/?ticket=t1"}
        elif method in ("auth.test", "apps.connections.open"):
            answer = {"ok": False, "error": "not_allowed_token_type"}
        else:
            answer = {"ok": False, "error": "unknown_method"}
        return web.Response(
            text=json.dumps(answer), content_type="application/json", headers=headers
        )


@pytest.fixture
async def slack() -> AsyncIterator[WebApi]:
    async with WebApi() as server:
        yield server


def section(**extra: object) -> SlackConfig:
    return SlackConfig.model_validate(
        {
            "bot_token_env": "FW_SLACK_BOT",
            "app_token_env": "FW_SLACK_APP",
            "channel_id": CHANNEL,
            **extra,
        }
    )


def env(server: WebApi, bot: str = BOT_TOKEN, app: str = APP_TOKEN) -> dict[str, str]:
    return {"FW_SLACK_BOT": bot, "FW_SLACK_APP": app, API_BASE_ENV: server.api_base}


def no_secret(text: str) -> None:
    assert not any(part in text for part in SECRET_PARTS), text


async def test_both_tokens_with_every_scope_pass(slack: WebApi) -> None:
    """auth.test with the bot token and apps.connections.open with the app token: no
    problem, and the socket address was only asked for, never opened."""
    assert await slack_problems(section(), env(slack)) == []
    assert slack.calls == [("auth.test", "bot"), ("apps.connections.open", "app")]


async def test_http_mode_asks_only_the_bot_token(slack: WebApi) -> None:
    """http mode has no app-level token: only auth.test is called."""
    config = section(mode="http", signing_secret_env="FW_SLACK_SIGNING", app_token_env=None)
    assert await slack_problems(config, env(slack)) == []
    assert slack.calls == [("auth.test", "bot")]


async def test_a_scope_the_bot_lacks_is_named_with_the_fix(slack: WebApi) -> None:
    """Scopes missing from the bot token's x-oauth-scopes are listed, with where to add
    them; assistant:write's says it comes with declaring the app an agent."""
    slack.bot_scopes -= {"reactions:write", "assistant:write"}
    [(loc, said)] = await slack_problems(section(), env(slack))
    assert loc == ("connectors", "slack", "bot_token_env")
    assert said.startswith(
        "the bot token in FW_SLACK_BOT lacks the scopes assistant:write, reactions:write: "
    )
    assert "Bot Token Scopes" in said and "reinstall" in said and "agent_sessions: false" in said
    slack.bot_scopes.add("reactions:write")
    assert await slack_problems(section(agent_sessions=False), env(slack)) == []


async def test_the_app_tokens_missing_scope_says_what_slack_needed(slack: WebApi) -> None:
    """apps.connections.open answering missing_scope: its `needed` is said."""
    slack.app_scopes.clear()
    [(loc, said)] = await slack_problems(section(), env(slack))
    assert loc == ("connectors", "slack", "app_token_env")
    assert "missing_scope, it needs connections:write" in said


async def test_a_wrong_token_is_said_as_invalid_auth_without_the_token(slack: WebApi) -> None:
    """A bot token Slack does not know: `invalid_auth` said plainly at bot_token_env."""
    [(loc, said)] = await slack_problems(section(), env(slack, bot=WRONG_BOT))
    assert loc == ("connectors", "slack", "bot_token_env")
    assert said.startswith("Slack refused the Slack app's bot token in FW_SLACK_BOT: invalid_auth")
    no_secret(said)


async def test_a_slack_out_of_reach_is_said(slack: WebApi) -> None:
    """Nothing listening at the API base: said per token, with the address asked."""
    base = slack.api_base
    await slack.stop()
    found = await slack_problems(section(), {**env(slack), API_BASE_ENV: base})
    assert [loc[-1] for loc, _ in found] == ["bot_token_env", "app_token_env"]
    assert all(said.startswith(f"could not reach Slack at {base}") for _, said in found)


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


async def check(tmp_path: Path, *args: str, **environ: str) -> tuple[int, str, str]:
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
    no_secret(out.decode() + err.decode())
    return process.returncode, out.decode(), err.decode()


async def test_check_config_online_says_slack_took_both_tokens(
    slack: WebApi, tmp_path: Path
) -> None:
    """The real command: OK, Slack listed among the connectors, and what --online asked."""
    code, out, err = await check(tmp_path, "--online", **env(slack))
    assert code == 0, err
    assert "  connectors: slack" in out.splitlines()
    assert "  online:     Slack took the bot token and app-level token; the bot holds every " in out
    assert slack.calls == [("auth.test", "bot"), ("apps.connections.open", "app")]
    code, out, err = await check(tmp_path, **env(slack))
    assert code == 0, err
    assert "Slack not asked (`check-config --online` tries the bot token and app-level" in out


async def test_check_config_refuses_swapped_tokens_by_their_variables(
    slack: WebApi, tmp_path: Path
) -> None:
    """The two tokens swapped: exit 2, each variable at its line with the start it needs,
    before Slack is asked anything."""
    code, _, err = await check(tmp_path, "--online", **env(slack, bot=APP_TOKEN, app=BOT_TOKEN))
    assert code == 2
    assert (
        "fleetwarden.yaml:7: connectors.slack.bot_token_env: environment variable "
        "FW_SLACK_BOT holds an app-level token (xapp-…), not the Slack app's bot token"
    ) in err
    assert (
        "fleetwarden.yaml:8: connectors.slack.app_token_env: environment variable "
        "FW_SLACK_APP holds a bot token (xoxb-…), not the Slack app's app-level token"
    ) in err
    assert slack.calls == []


async def test_check_config_online_says_invalid_auth_at_its_line(
    slack: WebApi, tmp_path: Path
) -> None:
    """A bot token Slack refuses: exit 2 at bot_token_env's line, Slack's word said."""
    code, _, err = await check(tmp_path, "--online", **env(slack, bot=WRONG_BOT))
    assert code == 2
    assert (
        "fleetwarden.yaml:7: connectors.slack.bot_token_env: Slack refused the Slack app's "
        "bot token in FW_SLACK_BOT: invalid_auth"
    ) in err
