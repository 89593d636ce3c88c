"""A forge asked at start who its credential is (ForgeHolds.check_login, in the words of
fleet.forge.api.credential_words), against the strict fake GitHub and Gitea: a wrong token
(401), an ``api_url`` that is no API (404), another login, or nothing listening — each
said with the forge, the variable the credential is read from (never its value) and the
fix; the forge held where nothing it sends could be acted on, only warned about where it
may answer later."""

from __future__ import annotations

from fleet.forge.api.credential_words import credential_words, login_problem
from fleet.forge.api.gitea.client import GiteaApi
from fleet.forge.api.github.client import GitHubApi
from fleet.forge.events.holds import ForgeHolds
from fleet.forge.model import ForgeApi, ForgeApiError
from fleet.forge.schema import ForgeEntry
from fleet.timing.clock import SystemClock
from tests.fakes.gitea.api import FakeGitea
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.postgres_server import free_port

WRONG = "ghp_wrongTokenNobodyIssued000000000000000"


def entry(api_url: str, *, kind: str = "github", login: str = BOT_LOGIN) -> ForgeEntry:
    return ForgeEntry.model_validate(
        {
            "kind": kind,
            "api_url": api_url,
            "token_env": "FLEETWARDEN_GITHUB_TOKEN",
            "poll_seconds": 60,
            "login": login,
        }
    )


async def ask(forge: ForgeEntry, api: ForgeApi) -> tuple[str | None, dict[str, str]]:
    holds = ForgeHolds({"gh": forge}, {"gh": api}, SystemClock())
    try:
        return await holds.check_login("gh"), holds.held
    finally:
        await api.close()


async def test_a_wrong_token_holds_the_forge_naming_its_variable() -> None:
    """401 from GitHub: which forge, the variable, restart after fixing; events refused."""
    async with FakeGitHub() as fake:
        forge = entry(fake.api_url)
        why, held = await ask(forge, GitHubApi(fake.api_url, WRONG))
        assert fake.violations == []
    assert why is not None and held == {"gh": why}
    assert f"forge gh ({fake.api_url}) refused Fleetwarden's credential" in why
    assert "401" in why and "FLEETWARDEN_GITHUB_TOKEN (forges.gh.token_env)" in why
    assert "restart Fleetwarden" in why and WRONG not in why


async def test_a_wrong_gitea_token_is_said_the_same_way() -> None:
    """Gitea's 401 for a token it does not know: the same words, the same hold."""
    async with FakeGitea() as fake:
        forge = entry(fake.api_url, kind="gitea")
        why, held = await ask(forge, GiteaApi(fake.api_url, WRONG))
    assert why is not None and "gh" in held and "FLEETWARDEN_GITHUB_TOKEN" in why


async def test_an_api_url_that_is_no_api_holds_the_forge_with_where_the_api_is() -> None:
    """The API root one level off: 404, so api_url is wrong; the roots are named."""
    async with FakeGitHub(check=False) as fake:
        url = fake.api_url + "/api"
        why, held = await ask(entry(url), GitHubApi(url, DEFAULT_PAT))
    assert why is not None and "gh" in held
    assert f"api_url {url} is not the root of a forge's API" in why
    assert "https://api.github.com" in why


async def test_another_login_holds_the_forge_naming_the_variable() -> None:
    """The token acts as another account: set login, or put the bot's token there."""
    async with FakeGitHub() as fake:
        why, held = await ask(
            entry(fake.api_url, login="acme-fleet"), GitHubApi(fake.api_url, DEFAULT_PAT)
        )
    assert why is not None and "gh" in held
    assert f"acts as “{BOT_LOGIN}”: set login: {BOT_LOGIN}" in why
    assert "FLEETWARDEN_GITHUB_TOKEN" in why


def test_the_forges_own_words_are_quoted_as_its_own() -> None:
    """What a forge answers — a login that is no login, its error's text — reaches chat's
    notice only inside one quote (chat escapes it whole), and a login that is no login is
    never offered as the value to set."""
    forge = entry("http://127.0.0.1:9")
    odd = login_problem("gh", forge, actual="[x](https://evil.example/) **@room**")
    assert odd is not None
    assert "acts as “[x](https://evil.example/) **@room**”: put the bot account's" in odd.text
    assert "set login" not in odd.text
    refusal = ForgeApiError("GitHub refused GET /user: 401 **Bad** [creds](https://e/)", 401)
    bad = login_problem("gh", forge, error=refusal)
    assert bad is not None
    assert "(it says “GitHub refused GET /user: 401 **Bad** [creds](https://e/)”)" in bad.text


async def test_a_forge_not_reached_is_a_warning_not_a_hold() -> None:
    """Nothing listens at api_url: said with the address and what to check; the forge is
    not held (it may answer later)."""
    url = f"http://127.0.0.1:{free_port()}"
    why, held = await ask(entry(url), GitHubApi(url, DEFAULT_PAT))
    assert why is not None and held == {}
    assert f"forge gh could not be reached at {url}" in why and "forges.gh.api_url" in why


def test_the_credential_is_named_by_its_variables_only() -> None:
    """A token's variable, or an App's two; a 5xx is a warning naming the credential."""
    forge = entry("https://api.github.com")
    assert credential_words("gh", forge) == (
        "the token in FLEETWARDEN_GITHUB_TOKEN (forges.gh.token_env)"
    )
    problem = login_problem("gh", forge, error=ForgeApiError("GitHub refused GET /user: 502", 502))
    assert problem is not None and not problem.held and "FLEETWARDEN_GITHUB_TOKEN" in problem.text
    assert login_problem("gh", forge, actual=BOT_LOGIN.upper()) is None


def test_check_config_words_the_fix_for_a_fleetwarden_not_yet_started() -> None:
    """Asked by `check-config --online` (nothing running): the fix is made before starting
    Fleetwarden — no restart, no events refused "until then" — for each held problem."""
    forge = entry("https://api.github.com")
    unauthorized = ForgeApiError("GitHub refused GET /user: 401 Bad credentials", 401)
    no_api = ForgeApiError("GitHub refused GET /user: 404 Not Found", 404)
    problems = [
        login_problem("gh", forge, error=unauthorized, running=False),
        login_problem("gh", forge, error=no_api, running=False),
        login_problem("gh", forge, actual="someone-else", running=False),
    ]
    for problem in problems:
        assert problem is not None and problem.held
        assert "restart" not in problem.text and "until then" not in problem.text
        assert "events are refused" not in problem.text
    assert problems[0] is not None
    assert "before starting Fleetwarden (it reads the variable at start)" in problems[0].text
    started = login_problem("gh", forge, error=unauthorized)
    assert started is not None and "then restart Fleetwarden" in started.text
