"""The config file's ``repos:`` section: the repositories agents work on, by name.

Each entry says where the upstream is (``url``: https, ssh or a path on this machine),
its default branch, the credential Fleetwarden fetches and pushes with (``token_env``, the
name of an environment variable; or ``ssh_key``, a key file kept 0600) — never written in
the file, never given to an agent — and the policy of its runs' branches: their prefix,
the default merge strategy, the branches only an admin may merge into, a setup command run
in each new checkout, gitignored files copied into each checkout, whether what the git door
accepts is pushed upstream at once (``autopush``) and whether a run may change what
CI runs (``workflows``), and the review agent that reads each run's work before a human
does (``review``).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fleet.repos.line.identity import template_problem
from fleet.repos.urls import (
    SCP_URL,
    credential_problem,
    is_relative_path,
    url_kind,
    url_problem,
)
from fleet.schema import ConfigPath, EnvVarName, expand_path, schema_context

REPO_NAME_PATTERN = r"[a-z][a-z0-9-]{0,31}"
_NAME = re.compile(REPO_NAME_PATTERN)
# A branch name Fleetwarden accepts in config and commands: git's rules, narrowed.
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:/[A-Za-z0-9._-]{1,100}){1,20}")
"""``owner/name``, or a GitLab project's ``group/subgroup/…/name``."""
MergeStrategy = Literal["squash", "rebase", "merge"]
STRATEGIES: tuple[MergeStrategy, ...] = ("squash", "rebase", "merge")
READY_CHECKOUTS_DEFAULT = 1
READY_CHECKOUTS_MAX = 8


def is_repo_name(text: str) -> bool:
    """Whether ``text`` is a valid repository name (as agent names are)."""
    return _NAME.fullmatch(text) is not None


def ref_problem(name: str) -> str | None:
    """Why ``name`` cannot be a branch Fleetwarden works with, or ``None``."""
    if not _REF.fullmatch(name):
        return "use letters, digits and . _ / - (200 at most), a letter or digit first"
    if ".." in name or "//" in name or name.endswith((".", "/", ".lock")) or "/." in name:
        return "no '..', '//', '/.', and no '.', '/' or '.lock' at the end"
    if name == "HEAD" or name.startswith("-"):
        return "not HEAD, and no '-' first"
    return None


def _git_name(value: str) -> str:
    problem = template_problem(value, email=False)
    if problem is not None:
        raise PydanticCustomError("git_name", problem)
    return value


def _git_email(value: str) -> str:
    problem = template_problem(value, email=True)
    if problem is not None:
        raise PydanticCustomError("git_email", problem)
    return value


GitName = Annotated[str, AfterValidator(_git_name)]
"""An agent's ``git_name``: one line git writes as given, ``{agent}`` and ``{host}`` filled in."""
GitEmail = Annotated[str, AfterValidator(_git_email)]
"""An agent's ``git_email``: an address, ``{agent}`` and ``{host}`` filled in."""
GIT_NAME_HELP = (
    "The name its commits carry as author and committer, `{agent}` and `{host}` filled in "
    "(e.g. `{agent} (bot)`). The git door takes commits by this identity only."
)
GIT_EMAIL_HELP = (
    "The address its commits carry, `{agent}` and `{host}` filled in (e.g. "
    "`{agent}@bots.example.org`). The git door takes commits by this identity only."
)


REVIEW_ROUNDS_DEFAULT = 2
REVIEW_HELP = (
    "A second agent that reviews each run's work before a human does: `{agent: NAME, "
    "rounds: N}`. When the run says done, NAME reads the change in a read-only checkout of "
    "its commit and answers `fw-msg review approve|changes TEXT`; `changes` goes back to "
    "the agent that did the work, up to `rounds` rounds (1 to 10, default 2); `approve` (or "
    "the last round's `changes`) hands it to a human. Its spend counts on the task."
)


class ReviewPolicy(BaseModel):
    """Who reviews a repository's (or a forge's) runs before a human, and for how many
    rounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str = Field(
        description="The roster's agent that reviews: not the one that does the work."
    )
    rounds: int = Field(
        default=REVIEW_ROUNDS_DEFAULT,
        ge=1,
        le=10,
        description=(
            "How many times the review agent may ask for changes before the work goes to a "
            "human anyway (1 to 10)."
        ),
    )


class RepoEntry(BaseModel):
    """A repository agents work on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        description=(
            "Where the upstream is: `https://github.com/acme/app.git`, "
            "`git@github.com:acme/app.git`, `ssh://git@host/acme/app.git`, or a path on "
            "this machine (a relative one is read from the config file's directory). No "
            "credential in it: see `token_env` and `ssh_key`."
        )
    )
    default_branch: str = Field(
        default="main",
        description="The branch runs are cut from and merged into unless told otherwise.",
    )
    token_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding the token Fleetwarden fetches and pushes an "
            "https upstream with (sent as user `x-access-token`, GitHub's convention). No "
            "agent ever sees it."
        ),
    )
    ssh_key: ConfigPath | None = Field(
        default=None,
        description="A private key file (mode 0600) for an ssh upstream. No agent sees it.",
    )
    branch_prefix: str = Field(
        default="fw/",
        description=(
            "What each branch's name starts with: `fw/AGENT/N`, `N` the branch's own number "
            "(the agent's later runs go on on it until it is merged, discarded or `--fresh`)."
        ),
    )
    merge: MergeStrategy = Field(
        default="squash",
        description="How `merge` lands a run by default: `squash`, `rebase` or `merge`.",
    )
    protected: tuple[str, ...] = Field(
        default=(),
        description=(
            "Branches only an admin may merge into. The default branch is always protected."
        ),
    )
    setup: tuple[str, ...] = Field(
        default=(),
        description=(
            "A command (an argv list, e.g. `[npm, ci]`) run in each new checkout, inside the "
            "agent's sandbox, before the agent starts."
        ),
    )
    copy_from: ConfigPath | None = Field(
        default=None,
        description=(
            "A directory whose files named in `copy` are copied into each new checkout "
            "(gitignored files such as `.env.example` or fixtures)."
        ),
    )
    copy_paths: tuple[str, ...] = Field(
        default=(),
        alias="copy",
        description="Paths relative to `copy_from` copied into each new checkout (opt-in).",
    )
    ready_checkouts: int = Field(
        default=READY_CHECKOUTS_DEFAULT,
        description=(
            "How many checkouts of the default branch Fleetwarden keeps made, at its tip, "
            "for the next runs on this machine (0 to 8; 0: none). A new run's checkout is then "
            "one of them renamed onto its own path, instead of every file being written as "
            "it starts; each is made again in the background. Each takes the room of one "
            "checkout. Runs on SSH hosts make theirs as before."
        ),
    )
    autopush: bool = Field(
        default=False,
        description=(
            "Push what the git door accepts to the upstream at once. Default: nothing reaches "
            "the upstream until an operator says `push` or `merge`."
        ),
    )
    workflows: bool | tuple[str, ...] = Field(
        default=False,
        description=(
            "Whether runs may change what CI runs. `false` (the default): the git door "
            "refuses a push that changes any forge's or CI service's pipeline "
            "(`.github/workflows/`, `.github/actions/`, `.gitea/`, `.forgejo/`, "
            "`.gitlab-ci.yml` and what it includes, `.woodpecker*`, `.drone.yml`, "
            "`.circleci/`, `Jenkinsfile`, `azure-pipelines.yml`, `bitbucket-pipelines.yml`, "
            "…) or what a workflow of the base runs by `uses: ./path`. A list of paths "
            "(files or folders) refuses those too, e.g. `[scripts/ci/, Makefile]`. `true` "
            "lets runs change all of it."
        ),
    )
    forge: str | None = Field(
        default=None,
        description=(
            "The `forges:` entry this repository lives on: its issues become runs and its "
            "runs open pull requests there. An https url with neither `token_env` nor "
            "`ssh_key` is fetched and pushed with the forge's credential."
        ),
    )
    forge_repo: str | None = Field(
        default=None,
        description="Its `owner/name` on the forge (default: from the url's path).",
    )
    review: ReviewPolicy | None = Field(
        default=None,
        description=REVIEW_HELP + " Default: its forge's `review:`, if any.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        if is_relative_path(value):  # read from the config file's directory, as paths are
            context = schema_context(info)
            if context.base_dir is not None or value.startswith("~"):
                value = str(expand_path(Path(value), context))
        if url_kind(value) is None:
            raise ValueError(url_problem(value))
        return value

    @field_validator("default_branch", "protected")
    @classmethod
    def _branches(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        for name in (value,) if isinstance(value, str) else value:
            problem = ref_problem(name)
            if problem:
                raise ValueError(f"{name!r} is not a branch name Fleetwarden takes: {problem}")
        return value

    @field_validator("branch_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and (ref_problem(value.rstrip("/")) or not value.endswith("/")):
            raise ValueError("branch_prefix is a branch-name prefix ending in '/', like 'fw/'")
        return value

    @field_validator("ready_checkouts", mode="before")
    @classmethod
    def _ready(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, bool):
                found = "a boolean (yes/no, true/false)"
            elif isinstance(value, str):
                found = f"the text {value!r} (write the number without quotes)"
            else:
                found = repr(value)
            raise ValueError(
                f"ready_checkouts is a whole number from 0 to {READY_CHECKOUTS_MAX} "
                f"(how many checkouts are kept made; 0: none), found {found}"
            )
        if not 0 <= value <= READY_CHECKOUTS_MAX:
            raise ValueError(
                f"ready_checkouts is from 0 (none) to {READY_CHECKOUTS_MAX}, not {value}: "
                "each ready checkout takes the room of a whole checkout"
            )
        return value

    @field_validator("copy_paths")
    @classmethod
    def _copy(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            pure = PurePosixPath(path)
            if pure.is_absolute() or ".." in pure.parts or not path or path.startswith("-"):
                raise ValueError(f"copy path {path!r} must be relative, inside copy_from")
            if pure.parts and pure.parts[0] == ".git":
                raise ValueError(f"copy path {path!r} may not reach into .git")
        return value

    @model_validator(mode="after")
    def _credential(self) -> RepoEntry:
        if self.token_env is not None and self.ssh_key is not None:
            raise ValueError("give token_env or ssh_key, not both")
        problem = credential_problem(self.url, token_env=self.token_env, ssh_key=self.ssh_key)
        if problem is not None:
            raise ValueError(problem)
        if self.copy_paths and self.copy_from is None:
            raise ValueError("copy names paths inside copy_from: set copy_from too")
        return self

    @field_validator("workflows", mode="before")
    @classmethod
    def _workflows(cls, value: object) -> bool | tuple[str, ...]:
        if isinstance(value, bool):
            return value
        if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
            raise ValueError(
                "workflows is true, false, or a list of more paths CI runs, like "
                "[scripts/ci/, Makefile]"
            )
        for path in value:
            pure = PurePosixPath(path)
            if not path.strip() or pure.is_absolute() or ".." in pure.parts:
                raise ValueError(
                    f"workflows path {path!r} must be relative to the repository's top, "
                    "like scripts/ci/ or Makefile"
                )
        return tuple(value)

    @field_validator("forge_repo")
    @classmethod
    def _forge_repo(cls, value: str | None) -> str | None:
        if value is not None and not _SLUG.fullmatch(value):
            raise ValueError(
                f"forge_repo {value!r} is OWNER/NAME (a GitLab's GROUP/SUBGROUP/NAME), "
                "e.g. acme/app"
            )
        return value

    def forge_slug(self) -> str | None:
        """Its ``owner/name`` on its forge: ``forge_repo``, or the url's last two path
        parts (``.git`` dropped); None when the url has no such path."""
        if self.forge_repo is not None:
            return self.forge_repo
        if url_kind(self.url) == "local":
            return None
        match = SCP_URL.fullmatch(self.url)
        path = match["path"] if match and "://" not in self.url else urlsplit(self.url).path
        parts = [p for p in path.removesuffix("/").removesuffix(".git").split("/") if p]
        slug = "/".join(parts[-2:])
        return slug if len(parts) >= 2 and _SLUG.fullmatch(slug) else None

    def workflows_allowed(self) -> bool:
        """Whether runs may change what CI runs (``workflows: true``)."""
        return self.workflows is True

    def ci_paths(self) -> tuple[str, ...]:
        """The repository's own paths that count as CI (``workflows: [paths…]``)."""
        return self.workflows if isinstance(self.workflows, tuple) else ()

    def review_of(self, forge: ReviewPolicy | None = None) -> ReviewPolicy | None:
        """Who reviews its runs: its own ``review:``, else its forge's (``forge``)."""
        return self.review if self.review is not None else forge

    def is_protected(self, branch: str) -> bool:
        """Whether only an admin may merge into ``branch``."""
        return branch == self.default_branch or branch in self.protected

    def branch_for(self, agent: str, line: int) -> str:
        """The branch of ``agent``'s line number ``line`` (the ledger's, not a run's)."""
        return f"{self.branch_prefix}{agent}/{line}"
