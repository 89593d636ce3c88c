"""The config file's ``forges:`` section: the GitHub, Gitea, Forgejo or GitLab servers whose
issues become runs, by name.

Each entry says what kind of forge it is and where its API is, the credential Fleetwarden
uses there — a GitHub App (its id and private key, from the environment; installation
tokens are minted per repository) or a token (``token_env``: a GitHub PAT, a Gitea or a
GitLab token) — the webhook secret's variable (GitLab's: its secret token, or its signing
token), the bot's own login, what starts a run (a label ``fleetwarden:AGENT``, assigning the
issue to the bot, a mention ``@LOGIN``) and who may
start one (people with write access to the repository, or members of an org or team,
asked of the forge when the event comes). No secret is ever written in the file, and none
reaches an agent.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fleet.budgets.quoting.quote import QUOTE_UNDER_HELP, QuoteUnder
from fleet.forge.model import ForgeKind
from fleet.repos.schema import REVIEW_HELP, ReviewPolicy
from fleet.repos.urls import shaped_problem, split_problem
from fleet.schema import EnvVarName

FORGE_NAME_PATTERN = r"[a-z][a-z0-9-]{0,31}"
_NAME = re.compile(FORGE_NAME_PATTERN)
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38})(?:\[bot\])?")  # an App: NAME[bot]
_LABEL_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/ -]{0,40}")
GITHUB_API = "https://api.github.com"
GITEA_API_EXAMPLE = "api_url: https://git.example.com/api/v1"
GITLAB_API = "https://gitlab.com/api/v4"
GITLAB_API_EXAMPLE = "api_url: https://gitlab.example.com/api/v4"


def api_url_problem(value: str, kind: object = None) -> str | None:
    """Why ``value`` cannot be the ``api_url`` of a forge of ``kind``, or ``None``."""
    parts, problem = split_problem(value, "api_url")
    if problem is not None or parts is None:
        return problem
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "api_url is an http(s) URL such as https://api.github.com"
    if parts.username or parts.password:
        return (
            "api_url takes no credential: take it out, and name the variable holding it "
            "in token_env (or use app, a GitHub App)"
        )
    if shaped := shaped_problem(value, "api_url"):
        return shaped
    if parts.query or parts.fragment:
        return "api_url takes no query or fragment"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"api_url's port is not a number from 1 to 65535: {parts.netloc}"
    path = parts.path.rstrip("/")
    if kind == "gitea" and not path.endswith("/api/v1"):
        return f"a Gitea's (or Forgejo's) API is under /api/v1: {GITEA_API_EXAMPLE}"
    if kind == "gitlab" and not path.endswith("/api/v4"):
        return f"a GitLab's API is under /api/v4: {GITLAB_API_EXAMPLE}"
    if kind == "github" and parts.hostname.casefold() in ("github.com", "www.github.com"):
        return f"GitHub's API is at {GITHUB_API}, not on github.com"
    return None


def is_forge_name(text: str) -> bool:
    """Whether ``text`` is a valid forge name (as repository names are)."""
    return _NAME.fullmatch(text) is not None


def is_login(text: str) -> bool:
    """Whether ``text`` can be a login on GitHub, Gitea or GitLab."""
    return _LOGIN.fullmatch(text) is not None


class GitHubApp(BaseModel):
    """A GitHub App Fleetwarden acts as: installation tokens are minted from its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id_env: EnvVarName = Field(description="The variable holding the App's id.")
    private_key_env: EnvVarName = Field(
        description="The variable holding the App's private key (PEM)."
    )


class ForgeTrigger(BaseModel):
    """What makes an issue a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_prefix: str = Field(
        default="fleetwarden:",
        description="An issue labelled `PREFIX` + an agent's name becomes a run of that agent.",
    )
    assign: bool = Field(
        default=True,
        description="An issue assigned to the bot's login becomes a run of the forge's `agent`.",
    )
    mention: bool = Field(
        default=True,
        description="A comment mentioning `@LOGIN` starts a run of the forge's `agent`.",
    )

    @field_validator("label_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _LABEL_PREFIX.fullmatch(value):
            raise ValueError("label_prefix is a short label start such as 'fleetwarden:'")
        return value


class ForgeAllow(BaseModel):
    """Who may start, steer and stop a run, asked of the forge at each event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    write_access: bool = Field(
        default=True,
        description="People with write (or admin) access to the repository may.",
    )
    org: str | None = Field(default=None, description="Members of this org may.")
    team: str | None = Field(
        default=None, description="Members of this team of `org` may (its slug)."
    )

    @model_validator(mode="after")
    def _some(self) -> ForgeAllow:
        if self.team is not None and self.org is None:
            raise ValueError("team names a team of an org: set org too")
        if not self.write_access and self.org is None:
            raise ValueError("nobody could start a run: keep write_access or name an org")
        for name in (self.org, self.team):
            if name is not None and not is_login(name):
                raise ValueError(f"{name!r} is not an org or team name")
        return self


class ForgeEntry(BaseModel):
    """A forge whose issues become runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ForgeKind = Field(description="`github`, `gitea` (Forgejo too) or `gitlab`.")
    api_url: str = Field(
        default=GITHUB_API,
        description=(
            "The REST API's root: `https://api.github.com` (a GitHub Enterprise Server's "
            "`https://HOST/api/v3`), a Gitea's or Forgejo's `https://HOST/api/v1` (needed "
            "for a Gitea), or a GitLab's `https://HOST/api/v4` (default for a GitLab: "
            "`https://gitlab.com/api/v4`)."
        ),
    )
    token_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The variable holding a token (a GitHub PAT, a Gitea access token, a GitLab "
            "personal, group or project access token)."
        ),
    )
    app: GitHubApp | None = Field(
        default=None, description="A GitHub App instead of a token (GitHub only)."
    )
    webhook_secret_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The variable holding the webhook secret (on GitLab the hook's secret token, "
            "which GitLab sends back in `X-Gitlab-Token`). Without it (or, on GitLab, "
            "`signing_secret_env`) no webhook is taken: set `poll_seconds` instead."
        ),
    )
    signing_secret_env: EnvVarName | None = Field(
        default=None,
        description=(
            "GitLab only: the variable holding the hook's signing token (`whsec_…`). Set, "
            "every delivery must be signed with it (and sent within 5 minutes)."
        ),
    )
    login: str = Field(description="The bot's own login on the forge (mentions, assignment).")
    agent: str | None = Field(
        default=None,
        description="The agent an assignment or a mention starts (a label names its own).",
    )
    trigger: ForgeTrigger = Field(default_factory=ForgeTrigger)
    allow: ForgeAllow = Field(default_factory=ForgeAllow)
    poll_seconds: int | None = Field(
        default=None,
        ge=30,
        le=86400,
        description="Read events through the API this often, where webhooks cannot reach.",
    )
    max_event_age_seconds: int = Field(
        default=3600,
        ge=60,
        description="A webhook about something older than this is refused as stale.",
    )
    done_timeout_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="Silence after which the watchdog says the agent did not signal done.",
    )
    draft: bool = Field(default=True, description="Pull requests open as drafts.")
    quote_under: QuoteUnder | None = Field(
        default=None,
        description=QUOTE_UNDER_HELP
        + " Over it, the issue's run is not started and its status comment says why."
        + " Default: the agent's own `quote_under:`.",
    )
    review: ReviewPolicy | None = Field(
        default=None,
        description=REVIEW_HELP
        + " On a forge its pull request opens as a draft; an approval posts the review agent's"
        + " review and lifts the draft flag. The default of its repositories: a"
        + " repository's own `review:` wins.",
    )
    on_done: Literal["freeze", "end"] = Field(
        default="freeze",
        description=(
            "After `done`: `freeze` keeps the run's session to continue on a review; `end` "
            "ends it (a review then starts the session again)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _gitlab_api(cls, data: object) -> object:
        """A GitLab without ``api_url`` is gitlab.com's."""
        if isinstance(data, dict) and data.get("kind") == "gitlab" and "api_url" not in data:
            return {**data, "api_url": GITLAB_API}
        return data

    @field_validator("api_url")
    @classmethod
    def _api(cls, value: str, info: ValidationInfo) -> str:
        problem = api_url_problem(value, info.data.get("kind"))
        if problem is not None:
            raise ValueError(problem)
        return value.rstrip("/")

    @field_validator("login")
    @classmethod
    def _login(cls, value: str) -> str:
        if not is_login(value):
            raise ValueError(f"{value!r} is not a login (letters, digits, . _ -)")
        return value

    @model_validator(mode="after")
    def _credential(self) -> ForgeEntry:
        if (self.token_env is None) == (self.app is None):
            raise ValueError("give token_env or app (a GitHub App), one of them")
        if self.app is not None and self.kind != "github":
            raise ValueError("app is a GitHub App: a Gitea takes token_env")
        if self.kind == "gitea" and "api_url" not in self.model_fields_set:
            raise ValueError(f"a Gitea's api_url is needed: {GITEA_API_EXAMPLE}")
        if self.kind == "gitlab":
            return self._gitlab()
        if self.signing_secret_env is not None:
            raise ValueError("signing_secret_env is a GitLab hook's: use webhook_secret_env")
        if self.webhook_secret_env is None and self.poll_seconds is None:
            raise ValueError(
                "events come by webhook (webhook_secret_env) or by polling (poll_seconds): set one"
            )
        return self

    def _gitlab(self) -> ForgeEntry:
        if self.poll_seconds is not None:
            raise ValueError(
                "a GitLab's events come by webhook: drop poll_seconds and set "
                "webhook_secret_env (the hook's secret token) or signing_secret_env"
            )
        if self.webhook_secret_env is None and self.signing_secret_env is None:
            raise ValueError(
                "a GitLab's events come by webhook: set webhook_secret_env (the hook's "
                "secret token) or signing_secret_env (its signing token), or both"
            )
        return self

    def label_for(self, agent: str) -> str:
        """The label that makes an issue a run of ``agent``."""
        return f"{self.trigger.label_prefix}{agent}"

    def agent_of_label(self, label: str) -> str | None:
        """The agent ``label`` names, or None when it is not a trigger label."""
        prefix = self.trigger.label_prefix
        if not label.startswith(prefix) or len(label) == len(prefix):
            return None
        return label[len(prefix) :]
