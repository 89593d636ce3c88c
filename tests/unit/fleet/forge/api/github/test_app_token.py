"""The GitHub client as a GitHub App against the strict fake: the JWT, installation
tokens minted once for callers arriving together, narrowed to one repository, renewed
five minutes before they expire (on an injected clock), and never in a message or log."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fleet.forge.api.github.app_token import AppKey, app_jwt, load_key
from fleet.forge.api.github.client import GitHubApi
from fleet.forge.model import CheckRun, ForgeApiError
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import ManualClock
from tests.fakes.github.api import FakeGitHub, make_app_key
from tests.unit.chat_fakes import T0

APP_ID = 4242
REPO = "acme/app"
SLUG = Slug("acme", "app")
HEAD = "1" * 40
KEYS = make_app_key()  # one key pair for the module: RSA keys are slow to make


@pytest.fixture
async def app_token_github(clock: ManualClock) -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(pat=None, clock=clock) as fake:
        fake.add_repo(REPO, base_sha=HEAD)
        fake.add_repo("acme/other")
        fake.enable_app(APP_ID, KEYS[1])
        fake.install_app("acme")
        yield fake
    assert fake.violations == []


@pytest.fixture
async def api(app_token_github: FakeGitHub, clock: ManualClock) -> AsyncIterator[GitHubApi]:
    client = GitHubApi(app_token_github.api_url, AppKey(str(APP_ID), KEYS[0]), clock=clock)
    yield client
    await client.close()


def _mints(github: FakeGitHub) -> int:
    return sum(1 for seen in github.requests if seen.path.endswith("/access_tokens"))


def _claims(jwt: str) -> dict[str, object]:
    payload = jwt.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(decoded, dict)
    return decoded


def test_the_jwt_is_rs256_backdated_and_short() -> None:
    """The JWT is signed RS256 with the key, issued 60 s back, expiring 9 min ahead."""
    key = load_key(KEYS[0])
    jwt = app_jwt(str(APP_ID), key, T0)
    header, payload, signature = jwt.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "RS256", "typ": "JWT"}
    now = int(T0.timestamp())
    assert _claims(jwt) == {"iat": now - 60, "exp": now + 540, "iss": APP_ID}
    public = serialization.load_pem_public_key(KEYS[1])
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{header}.{payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


async def test_callers_together_share_one_mint(
    app_token_github: FakeGitHub, api: GitHubApi
) -> None:
    """Five calls at once find the installation once and mint one token, as the App."""
    number = app_token_github.add_issue(REPO, "x")
    issues = await asyncio.gather(*(api.issue(SLUG, number) for _ in range(5)))
    assert {issue.number for issue in issues} == {number}
    assert _mints(app_token_github) == 1
    assert [seen.credential for seen in app_token_github.requests] == ["app", "app"] + [
        "installation"
    ] * 5
    assert app_token_github.requests[0].path == "/repos/acme/app/installation"


async def test_the_token_is_renewed_five_minutes_before_it_expires(
    app_token_github: FakeGitHub, api: GitHubApi, clock: ManualClock
) -> None:
    """A token lasts its hour less five minutes: then another is minted."""
    first = await api.git_token(SLUG)
    clock.advance(54 * 60)
    assert await api.git_token(SLUG) == first
    clock.advance(61)
    second = await api.git_token(SLUG)
    assert second != first and _mints(app_token_github) == 2
    assert set(app_token_github.minted_tokens()) == {first, second}


async def test_a_token_reaches_only_its_repository(
    app_token_github: FakeGitHub, api: GitHubApi
) -> None:
    """The token minted for acme/app is narrowed to it: acme/other is Not Found with it."""
    app_token_github.add_issue("acme/other", "x")
    token = await api.git_token(SLUG)
    narrowed = GitHubApi(app_token_github.api_url, token)
    try:
        with pytest.raises(ForgeApiError) as caught:
            await narrowed.issue(Slug("acme", "other"), 1)
        assert caught.value.status == 404
    finally:
        await narrowed.close()


async def test_membership_uses_an_org_token_that_only_reads_members(
    app_token_github: FakeGitHub, api: GitHubApi
) -> None:
    """In-org questions get the org installation's token narrowed to members: read."""
    app_token_github.add_org_member("acme", "alice")
    assert await api.in_org("acme", "alice")
    (grant,) = app_token_github.credentials.minted.values()
    assert dict(grant.permissions) == {"members": "read"}
    token = app_token_github.minted_tokens()[0]
    member_reader = GitHubApi(app_token_github.api_url, token)
    try:
        with pytest.raises(ForgeApiError) as caught:
            await member_reader.comment(SLUG, app_token_github.add_issue(REPO, "x"), "hi")
        assert caught.value.status == 403
    finally:
        await member_reader.close()


async def test_a_refused_token_is_forgotten_and_minted_again(
    app_token_github: FakeGitHub, api: GitHubApi
) -> None:
    """GitHub refusing a token (401) drops it: the next call works with a new one."""
    number = app_token_github.add_issue(REPO, "x")
    await api.issue(SLUG, number)
    app_token_github.expire_tokens()
    with pytest.raises(ForgeApiError) as caught:
        await api.issue(SLUG, number)
    assert caught.value.status == 401
    assert (await api.issue(SLUG, number)).number == number
    assert _mints(app_token_github) == 2


async def test_an_installation_made_again_is_found_again(
    app_token_github: FakeGitHub, api: GitHubApi
) -> None:
    """An App uninstalled and installed again (a new id): the old token is refused (401),
    then the old installation (404), and the call after finds the new one."""
    number = app_token_github.add_issue(REPO, "x")
    await api.issue(SLUG, number)
    app_token_github.credentials.installations.clear()
    app_token_github.install_app("acme")
    app_token_github.expire_tokens()
    statuses = []
    for _ in range(2):
        with pytest.raises(ForgeApiError) as caught:
            await api.issue(SLUG, number)
        statuses.append(caught.value.status)
    assert statuses == [401, 404]
    assert (await api.issue(SLUG, number)).number == number


async def test_check_runs_are_made_and_completed(
    app_token_github: FakeGitHub, api: GitHubApi
) -> None:
    """A check run is created on the head commit and completed with a conclusion."""
    made = await api.check_run(
        SLUG, CheckRun(head_sha=HEAD, title="Fleetwarden", summary="working", status="in_progress")
    )
    assert made is not None
    again = await api.check_run(
        SLUG,
        CheckRun(
            head_sha=HEAD,
            title="Fleetwarden",
            summary="done",
            status="completed",
            conclusion="success",
        ),
        check_id=made,
    )
    assert again == made
    (run,) = app_token_github.check_runs(REPO)
    assert (run.status, run.conclusion, run.summary) == ("completed", "success", "done")
    with pytest.raises(ForgeApiError) as caught:
        await api.check_run(
            SLUG, CheckRun(head_sha="9" * 40, title="t", summary="s", status="queued")
        )
    assert caught.value.status == 422


async def test_the_wrong_key_and_a_missing_installation_are_refused(
    app_token_github: FakeGitHub, api: GitHubApi, caplog: pytest.LogCaptureFixture
) -> None:
    """A JWT from another key is 401; a repository the App is not on is 404; no key,
    JWT or token is in any message or log line."""
    caplog.set_level(logging.DEBUG)
    app_token_github.add_repo("stranger/repo")
    with pytest.raises(ForgeApiError) as missing:
        await api.issue(Slug("stranger", "repo"), 1)
    assert (
        str(missing.value) == "GitHub refused GET /repos/stranger/repo/installation: 404 Not Found"
    )
    other_private, _ = make_app_key()
    wrong = GitHubApi(app_token_github.api_url, AppKey(str(APP_ID), other_private))
    try:
        with pytest.raises(ForgeApiError) as bad:
            await wrong.issue(SLUG, 1)
    finally:
        await wrong.close()
    assert bad.value.status == 401
    assert "A JSON web token could not be decoded" in str(bad.value)
    secrets = [
        *app_token_github.minted_tokens(),
        KEYS[0].splitlines()[1],
        other_private.splitlines()[1],
    ]
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in str(missing.value) + str(bad.value)
    assert app_token_github.requests[-1].status == 401


def test_a_bad_private_key_is_refused_without_showing_it() -> None:
    """A key that is not PEM is refused, and the message quotes none of it."""
    with pytest.raises(ForgeApiError) as caught:
        GitHubApi("https://api.github.com", AppKey("1", "-----BEGIN nonsense SECRETKEYTEXT"))
    assert "SECRETKEYTEXT" not in str(caught.value)


def test_an_app_key_does_not_show_its_private_key() -> None:
    """The AppKey's repr leaves the private key out."""
    assert KEYS[0].splitlines()[1] not in repr(AppKey("1", KEYS[0]))
