"""The fake GitHub itself is as strict as GitHub: it refuses missing and wrong
credentials, JWTs GitHub would refuse, tokens beyond their reach, bodies that break the
official description (and records them), and its own answers pass the description."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fleet.forge.api.github.app_token import app_jwt, load_key
from fleet.timing.clock import ManualClock
from tests.fakes.github import shapes
from tests.fakes.github.api import DEFAULT_PAT, FakeGitHub, github_thread, make_app_key
from tests.fakes.github.openapi_check import Call, github_description, json_reply
from tests.unit.chat_fakes import T0

REPO = "acme/app"
AUTH = {"Authorization": f"Bearer {DEFAULT_PAT}"}
KEYS = make_app_key()
APP_ID = 77


@pytest.fixture
async def fake_github(clock: ManualClock) -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(clock=clock) as fake:
        fake.add_repo(REPO, files={"README.md": "hi\n"})
        fake.add_repo("acme/other")
        fake.enable_app(APP_ID, KEYS[1])
        fake.install_app("acme", repos=["app"], permissions={"issues": "write"})
        yield fake


async def _send(
    fake: FakeGitHub,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    no_agent: bool = False,
) -> tuple[int, Any, dict[str, str]]:
    skip = ["User-Agent"] if no_agent else []
    async with (
        aiohttp.ClientSession(skip_auto_headers=skip) as session,
        session.request(method, fake.api_url + path, headers=headers, json=body) as answer,
    ):
        raw = await answer.read()
        return answer.status, json.loads(raw) if raw else None, dict(answer.headers)


async def test_no_credential_is_401_with_githubs_headers(fake_github: FakeGitHub) -> None:
    """No Authorization is 401 "Requires authentication", with rate-limit headers and a
    request id as every answer has."""
    status, data, headers = await _send(fake_github, "GET", "/repos/acme/app/issues/1")
    assert status == 401 and data["message"] == "Requires authentication"
    assert data["documentation_url"].startswith("https://docs.github.com/")
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert name in headers
    assert headers["X-RateLimit-Resource"] == "core" and headers["X-GitHub-Request-Id"]
    assert fake_github.violations == []


async def test_wrong_credential_and_missing_user_agent(fake_github: FakeGitHub) -> None:
    """A token the fake never gave is 401 "Bad credentials"; no User-Agent is 403."""
    status, data, _ = await _send(
        fake_github, "GET", "/repos/acme/app/issues", headers={"Authorization": "token ghp_nope"}
    )
    assert (status, data["message"]) == (401, "Bad credentials")
    status, data, _ = await _send(
        fake_github, "GET", "/repos/acme/app/issues", headers=AUTH, no_agent=True
    )
    assert status == 403 and "User-Agent" in data["message"]
    assert fake_github.violations == []


async def test_a_body_breaking_the_description_is_422_and_recorded(fake_github: FakeGitHub) -> None:
    """A comment without ``body`` breaks the description: 422, and a violation."""
    number = fake_github.add_issue(REPO, "x")
    path = f"/repos/acme/app/issues/{number}/comments"
    status, data, _ = await _send(fake_github, "POST", path, headers=AUTH, body={"text": "hi"})
    assert status == 422 and data["message"].startswith("Invalid request.")
    assert fake_github.comments_on(REPO, number) == []
    (violation,) = fake_github.violations
    assert violation.startswith(f"POST {path}: request:") and "'body' is a required" in violation


async def test_a_bad_query_and_an_unserved_path_are_violations(fake_github: FakeGitHub) -> None:
    """``per_page=lots`` breaks the description (422); a path the fake does not serve is
    404 and a violation, so a client cannot drift off the described API unseen."""
    status, _, _ = await _send(
        fake_github, "GET", "/repos/acme/app/issues?per_page=lots", headers=AUTH
    )
    assert status == 422
    status, _, _ = await _send(fake_github, "GET", "/repos/acme/app/labels", headers=AUTH)
    assert status == 404
    assert [v.split(":")[0] for v in fake_github.violations] == [
        "GET /repos/acme/app/issues",
        "GET /repos/acme/app/labels",
    ]


async def test_listings_page_with_githubs_link_header(fake_github: FakeGitHub) -> None:
    """A long listing is paged with ``Link: <…>; rel="next"``."""
    for index in range(3):
        fake_github.add_issue(REPO, f"i{index}")
    status, data, headers = await _send(
        fake_github, "GET", "/repos/acme/app/issues?per_page=2", headers=AUTH
    )
    assert status == 200 and [item["number"] for item in data] == [3, 2]
    assert 'page=2>; rel="next"' in headers["Link"]
    assert fake_github.violations == []


def test_the_judge_refuses_a_broken_answer_and_takes_a_whole_one() -> None:
    """An issue without ``user`` breaks the description; the fake's own shape passes."""
    fake_github = FakeGitHub(check=False)
    repo = fake_github.add_repo(REPO)
    number = fake_github.add_issue(REPO, "x", author="alice")
    whole = shapes.issue(repo, repo.issues[number], fake_github.accounts, "http://127.0.0.1:1")
    call = Call(
        "GET",
        f"/repos/acme/app/issues/{number}",
        "/repos/{owner}/{repo}/issues/{issue_number}",
        {"owner": "acme", "repo": "app", "issue_number": str(number)},
        [],
        {},
        None,
        "",
    )
    judge = github_description().description
    assert judge.response_errors(call, json_reply(200, whole)) == []
    broken = {key: value for key, value in whole.items() if key != "user"}
    (problem,) = judge.response_errors(call, json_reply(200, broken))
    assert "'user' is a required property" in problem


def _jwt(**claims: Any) -> str:
    """A JWT signed with the App's key, its claims changed as given."""
    key = load_key(KEYS[0])
    header, _, _ = app_jwt(str(APP_ID), key, T0).split(".")
    body = {"iat": int(T0.timestamp()) - 60, "exp": int(T0.timestamp()) + 540, "iss": APP_ID}
    body.update(claims)
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({}, None),
        ({"exp": int(T0.timestamp()) - 1}, "'Expiration time' claim ('exp') must be"),
        ({"exp": int(T0.timestamp()) + 700}, "is too far in the future"),
        ({"iat": int(T0.timestamp()) + 30}, "'Issued at' claim ('iat') must be"),
        ({"iss": 1}, "'Issuer' claim ('iss')"),
    ],
)
async def test_jwts_are_held_to_githubs_rules(
    fake_github: FakeGitHub, claims: dict[str, int], words: str | None
) -> None:
    """A good JWT finds the installation; an expired, too long, future or foreign one is
    401 in GitHub's words."""
    headers = {"Authorization": f"Bearer {_jwt(**claims)}"}
    status, data, _ = await _send(
        fake_github, "GET", "/repos/acme/app/installation", headers=headers
    )
    if words is None:
        assert status == 200 and data["app_id"] == APP_ID
    else:
        assert status == 401 and words in data["message"]
    assert fake_github.violations == []


async def test_minting_is_narrowed_to_what_the_installation_has(fake_github: FakeGitHub) -> None:
    """A token for a repository or permission outside the installation is refused (422);
    a PAT cannot mint; a minted token reaches its repository only, and no check runs."""
    headers = {"Authorization": f"Bearer {_jwt()}"}
    installation = next(iter(fake_github.credentials.installations))
    path = f"/app/installations/{installation}/access_tokens"
    status, _, _ = await _send(
        fake_github, "POST", path, headers=headers, body={"repositories": ["other"]}
    )
    assert status == 422
    wanted = {"permissions": {"contents": "write"}}
    status, _, _ = await _send(fake_github, "POST", path, headers=headers, body=wanted)
    assert status == 422
    status, data, _ = await _send(fake_github, "POST", path, headers=AUTH, body={})
    assert status == 401 and data["message"] == "A JSON web token could not be decoded"
    status, data, _ = await _send(
        fake_github, "POST", path, headers=headers, body={"repositories": ["app"]}
    )
    assert status == 201 and data["expires_at"] == shapes.stamp(T0 + timedelta(hours=1))
    token = {"Authorization": f"token {data['token']}"}
    assert (await _send(fake_github, "GET", "/repos/acme/other/issues", headers=token))[0] == 404
    assert (await _send(fake_github, "GET", "/repos/acme/app/issues", headers=token))[0] == 200
    check = {"name": "x", "head_sha": "0" * 39 + "1"}
    status, data, _ = await _send(
        fake_github, "POST", "/repos/acme/app/check-runs", headers=token, body=check
    )
    assert status == 403 and data["message"] == "Resource not accessible by integration"
    status, data, _ = await _send(
        fake_github, "POST", "/repos/acme/app/check-runs", headers=AUTH, body=check
    )
    assert status == 403 and "GitHub App" in data["message"]
    assert fake_github.violations == []


def test_the_thread_runner_serves_a_synchronous_client() -> None:
    """From a plain thread: seeded state is served, and a bad token is refused."""
    with github_thread() as fake:
        fake.add_repo(REPO)
        number = fake.add_issue(REPO, "from the thread", labels=["fleetwarden:coder"])
        request = urllib.request.Request(
            f"{fake.base_url}/repos/acme/app/issues/{number}", headers=AUTH
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read())["labels"][0]["name"] == "fleetwarden:coder"
        refused = urllib.request.Request(
            f"{fake.base_url}/repos/acme/app/issues/{number}", headers={"Authorization": "token x"}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=10)
        assert caught.value.code == 401
        caught.value.close()
        assert fake.violations == []


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


async def test_a_repository_linked_to_git_reads_and_deletes_there(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    """Branches and files come from the bare repository; deleting a branch deletes it."""
    work, bare = tmp_path / "work", tmp_path / "bare.git"
    _git("init", "-q", "-b", "main", str(work))
    (work / "src").mkdir()
    (work / "src" / "a.py").write_text("x = 1\n")
    _git("add", ".", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "one", cwd=work)
    _git("branch", "feature", cwd=work)
    _git("clone", "-q", "--bare", str(work), str(bare))
    fake_github.link_git(REPO, bare)
    status, data, _ = await _send(
        fake_github, "GET", "/repos/acme/app/contents/src/a.py?ref=feature", headers=AUTH
    )
    assert status == 200 and data["sha"] == _git("rev-parse", "HEAD:src/a.py", cwd=work)
    status, data, _ = await _send(fake_github, "GET", "/repos/acme/app/contents/src", headers=AUTH)
    assert [entry["name"] for entry in data] == ["a.py"]
    status, _, _ = await _send(
        fake_github, "DELETE", "/repos/acme/app/git/refs/heads/feature", headers=AUTH
    )
    assert status == 204
    assert _git("--git-dir", str(bare), "branch", "--list", "feature") == ""
    assert fake_github.violations == []


async def test_one_operation_can_be_refused_until_allowed_again(fake_github: FakeGitHub) -> None:
    """`refuse_route` refuses one operation with the status and message asked (as a token
    without that permission is refused), others still served; `allow_route` lifts it."""
    pulls = "/repos/{owner}/{repo}/pulls"
    fake_github.refuse_route("POST", pulls, 403, "Resource not accessible by personal access token")
    body = {"title": "t", "head": "main", "base": "main"}
    status, data, _ = await _send(
        fake_github, "POST", f"/repos/{REPO}/pulls", headers=AUTH, body=body
    )
    assert (status, data["message"]) == (403, "Resource not accessible by personal access token")
    assert (await _send(fake_github, "GET", f"/repos/{REPO}/pulls", headers=AUTH))[0] == 200
    fake_github.allow_route("POST", pulls)
    status, data, _ = await _send(
        fake_github, "POST", f"/repos/{REPO}/pulls", headers=AUTH, body=body
    )
    assert status == 422 and "No commits between" in str(data)
    with pytest.raises(ValueError, match="serves no"):
        fake_github.refuse_route("POST", "/repos/{owner}/{repo}/nothing")
