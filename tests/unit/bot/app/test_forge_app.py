"""Tests for the app's forges phase (bot.app.phases.forges.clients): a repository on a GitHub
App's forge fetches and pushes with the installation token the App mints for it, kept in
Fleetwarden's own overlay of its environment and known to the redactor; the config says
which forge credentials are missing, naming the variable, never a value; and the webhook
endpoint is served on its own when the dashboard is off."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pytest

from bot.app.phases.forges.clients import app_repos, git_environ, open_api
from bot.app.phases.forges.webhooks import serve_webhooks_alone
from bot.app.stops import Stops
from bot.config import Config, ConfigError
from bot.config.checks.forges import app_token_variable, repo_credentials
from bot.config.reading.load import parse_config
from fleet.forge.api.git_tokens import GitTokens
from fleet.forge.api.gitlab.client import GitLabApi
from fleet.forge.api.secrets import ForgeSecrets
from fleet.forge.events.endpoint import Refusal, WebhookEndpoint, WebhookForge
from fleet.forge.model import ForgeEvent
from fleet.ledger.records.forge import Slug
from fleet.repos.upstream.credentials import secret_of, upstream_env
from fleet.timing.clock import SystemClock
from tests.fakes.forge.webhook_sender import github_delivery, github_issue
from tests.fakes.github.api import FakeGitHub, make_app_key
from tests.postgres_server import free_port

APP_CONFIG = """\
state_dir: {state}
forges:
  gh:
    kind: github
    api_url: {api}
    app: {{app_id_env: GH_APP_ID, private_key_env: GH_APP_KEY}}
    webhook_secret_env: GH_HOOK
    login: fleetwarden[bot]
repos:
  app:
    url: https://github.com/acme/app.git
    forge: gh
"""


def config(tmp_path: Path, api: str, environ: dict[str, str]) -> Config:
    text = APP_CONFIG.format(state=tmp_path / "state", api=api)
    return parse_config(text, "fleetwarden.yaml", base_dir=tmp_path, environ=environ)


async def test_an_apps_repository_fetches_with_a_minted_installation_token(
    tmp_path: Path,
) -> None:
    """The repository's git reads the App's installation token for it from the overlay;
    the process's environment never holds it; the redactor knows it."""
    private, public = make_app_key()
    async with FakeGitHub(pat=None) as fake:
        fake.add_repo("acme/app")
        fake.enable_app(7, public)
        fake.install_app("acme", repos=["app"])
        environ = {"GH_APP_ID": "7", "GH_APP_KEY": private, "GH_HOOK": "s3cret-hook"}
        cfg = config(tmp_path, fake.api_url, environ)
        variable = app_token_variable("app")
        assert cfg.repos["app"].token_env == variable
        apis = {"gh": open_api(cfg.forges["gh"], environ, SystemClock())}
        tokens = GitTokens(apis, app_repos(cfg))
        git_reads = git_environ(tokens, environ)
        try:
            await tokens.renew()
            minted = fake.minted_tokens()
            assert minted and git_reads[variable] == minted[-1]
            assert variable not in environ
            assert {private, "s3cret-hook"} <= _secrets(cfg, environ)
            # The repository's token, as the repositories tell the redactor: read through
            # the same overlay its git reads.
            assert secret_of(cfg.repos["app"], git_reads) == minted[-1]
        finally:
            await apis["gh"].close()
        assert fake.violations == []


def test_a_missing_forge_credential_is_named_with_its_fix(tmp_path: Path) -> None:
    """An unset App key: the config is refused naming the variable, not any value."""
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, "https://api.github.com", {"GH_APP_ID": "7", "GH_HOOK": "x"})
    text = str(caught.value)
    assert "GH_APP_KEY is not set" in text and "forge gh" in text


GITLAB_CONFIG = """\
state_dir: {state}
forges:
  gl:
    kind: gitlab
    api_url: https://git.example.com/api/v4
    token_env: GL_TOKEN
    webhook_secret_env: GL_HOOK
    signing_secret_env: GL_SIGNING
    login: fleetwarden-bot
repos:
  app:
    url: https://git.example.com/acme/app.git
    forge: gl
"""


async def test_a_gitlab_forge_gets_its_client_its_secrets_and_git_as_oauth2(
    tmp_path: Path,
) -> None:
    """kind: gitlab opens a GitLabApi; its token, hook secret and signing secret are the
    redactor's; its repository's git sends the token as user oauth2, never in argv."""
    environ = {"GL_TOKEN": "gl-token-1", "GL_HOOK": "gl-hook-2", "GL_SIGNING": "whsec_Z2w="}
    text = GITLAB_CONFIG.format(state=tmp_path / "state")
    cfg = parse_config(text, "fleetwarden.yaml", base_dir=tmp_path, environ=environ)
    api = open_api(cfg.forges["gl"], environ, SystemClock())
    try:
        assert isinstance(api, GitLabApi) and api.kind == "gitlab"
        assert await api.git_token(Slug("acme", "app")) == "gl-token-1"
    finally:
        await api.close()
    assert set(environ.values()) <= _secrets(cfg, environ)
    credential = repo_credentials(cfg.repos, cfg.forges)["app"]
    assert credential.git_user == "oauth2"
    env = upstream_env("app", cfg.repos["app"], environ, tmp_path, user=credential.git_user)
    basic = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(basic).decode() == "oauth2:gl-token-1"


async def test_webhooks_are_served_alone_without_the_dashboard(tmp_path: Path) -> None:
    """No dashboard: the real webhook endpoint listens on its own, whatever name the forge
    calls it by (no Host check: deliveries are signed), refuses an unsigned delivery and
    takes a signed one."""
    environ = {"GH_APP_ID": "7", "GH_APP_KEY": make_app_key()[0], "GH_HOOK": "s3cret-hook"}
    cfg = config(tmp_path, "https://api.github.com", environ)
    stops = Stops()
    taken: list[ForgeEvent] = []

    async def receive(event: ForgeEvent) -> str:
        taken.append(event)
        return "counted"

    async def seen(
        _forge: str, _delivery: str, _event: str, _kept: str = "", _digest: str = ""
    ) -> bool:
        return True

    async def audit(_refusal: Refusal) -> None:
        return None

    endpoint = WebhookEndpoint(
        {"gh": WebhookForge(cfg.forges["gh"], b"s3cret-hook")},
        receive=receive,
        seen=seen,
        audit=audit,
        clock=SystemClock(),
    )
    name, payload = github_issue(
        "labeled", repo=Slug("acme", "app"), number=3, sender="ann", label="fleetwarden:coder"
    )
    try:
        alone = await serve_webhooks_alone(
            endpoint.routes(),
            state_dir=cfg.state_dir,
            stops=stops,
            address=f"127.0.0.1:{free_port()}",
        )
        assert alone is not None
        port = alone.port
        url = f"http://127.0.0.1:{port}/webhooks/gh"
        async with aiohttp.ClientSession() as session:
            for secret, status in ((b"", 401), (b"s3cret-hook", 202)):
                headers, body = github_delivery(name, payload, secret=secret)
                headers["Host"] = "hooks.example.com"
                async with session.post(url, data=body, headers=headers) as answer:
                    assert answer.status == status
        assert [e.number for e in taken] == [3]
    finally:
        await stops.run()


def _secrets(cfg: Config, environ: Mapping[str, str]) -> set[str]:
    """The values of the forges' secrets the redactor is given."""
    return {s.value for s in ForgeSecrets(cfg.forges, environ).known_secrets()}
