"""Config checks of the forges across entries: each repository's ``forge`` names a
``forges:`` entry and has an ``owner/name`` there, each forge's ``agent`` is an agent of
the roster on one of its repositories, each ``review:`` names an agent of the roster that
is not the one given the work, sandboxed on this machine (its checkout is read-only only
in its sandbox); and, at start, each forge's credentials are in the
environment (its token, or its App's id and key, and its webhook secret), the webhook
secret no API token: a token there was likely meant for ``token_env``, and the forge would
sign every delivery with a secret that leaks where tokens do.

What is checked inside one entry is the schema's own, :class:`fleet.forge.schema.ForgeEntry`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from bot.config.schema import ConfigFile
from fleet.budgets.schema import Loc
from fleet.forge.events.standard_webhooks import signing_key
from fleet.forge.schema import ForgeEntry
from fleet.hosts.schema import LOCAL_HOST
from fleet.redaction.shapes import credential_shaped
from fleet.repos.schema import RepoEntry, ReviewPolicy
from fleet.repos.upstream.named import Credential, credential_of
from fleet.schema import token_problem, unknown_value_message, unset_variable

GUIDE = "docs/forges.md"
"""Where an operator reads how forges are set up."""


def forge_problems(document: ConfigFile) -> Iterator[tuple[Loc, str]]:
    """Repositories naming no forge of the config, or without an ``owner/name`` there;
    a forge's ``agent`` that no repository of it has."""
    known = sorted(document.forges)
    for name, entry in document.repos.items():
        if entry.forge is None:
            if entry.forge_repo is not None:
                yield ("repos", name, "forge_repo"), "forge_repo needs forge: name the forge"
            continue
        if entry.forge not in document.forges:
            yield (
                ("repos", name, "forge"),
                unknown_value_message("forge", entry.forge, known)
                if known
                else f"repository {name} names forge {entry.forge!r}, but the config has no "
                f"`forges:` section: add the forge there (see {GUIDE})",
            )
        elif entry.forge_slug() is None:
            yield (
                ("repos", name, "forge_repo"),
                f"repository {name}'s owner/name on its forge cannot be read from its url: "
                "set forge_repo: OWNER/NAME",
            )
    for name, forge in document.forges.items():
        if forge.agent is None:
            continue
        agent = next((a for a in document.agents if a.name == forge.agent), None)
        repo = document.repos.get(agent.repo) if agent is not None and agent.repo else None
        if repo is None or repo.forge != name:
            yield (
                ("forges", name, "agent"),
                f"forge {name}'s agent {forge.agent!r} must be an agent of the roster whose "
                f"`repo` is a repository on {name} (repos: NAME: forge: {name})",
            )


def review_problems(document: ConfigFile) -> Iterator[tuple[Loc, str]]:
    """Each ``review:`` (a forge's, a repository's) whose agent is not in the roster, or is
    the agent its forge gives the work to (an agent never reviews its own work)."""
    names = sorted(a.name for a in document.agents)
    worker: dict[tuple[str, str], str | None] = {}
    for name, forge in document.forges.items():
        worker["forges", name] = forge.agent
    for name, entry in document.repos.items():
        on = document.forges.get(entry.forge) if entry.forge else None
        worker["repos", name] = on.agent if on is not None else None
    policies: list[tuple[tuple[str, str], ReviewPolicy | None]] = [
        (("forges", name), forge.review) for name, forge in document.forges.items()
    ]
    policies += [(("repos", name), entry.review) for name, entry in document.repos.items()]
    for where, review in policies:
        if review is None:
            continue
        loc = (*where, "review", "agent")
        agent = next((a for a in document.agents if a.name == review.agent), None)
        if agent is None:
            yield loc, unknown_value_message("review agent", review.agent, names)
        elif review.agent == worker[where]:
            yield (
                loc,
                f"{review.agent} is the agent {where[1]}'s work is given to, and an agent "
                "never reviews its own work: name another agent of the roster",
            )
        elif agent.host != LOCAL_HOST:
            yield (
                loc,
                f"review agent {review.agent} runs on host {agent.host}, but a review's "
                "checkout is made on this machine: give it `host: local`, or name another agent",
            )
        elif (agent.sandbox or document.defaults.sandbox) == "none":
            yield (
                loc,
                f"review agent {review.agent} has `sandbox: none`, so its checkout could not "
                "be read-only, nor the line and the other agents' checkouts out of its reach: "
                "give it `sandbox: bwrap`, or name another agent",
            )


def environment_problems(
    forges: Mapping[str, ForgeEntry], environ: Mapping[str, str]
) -> Iterator[tuple[Loc, str]]:
    """Credentials that are not in the environment: each is named, never shown."""
    for name, forge in forges.items():
        wanted: list[tuple[Loc, str, str]] = []
        if forge.token_env is not None:
            what = f"the forge's token of forge {name}"
            if (problem := token_problem(environ, forge.token_env, what)) is not None:
                yield ("forges", name, "token_env"), problem
        if forge.app is not None:
            app = ("forges", name, "app")
            wanted.append(((*app, "app_id_env"), forge.app.app_id_env, "the App's id"))
            wanted.append(
                ((*app, "private_key_env"), forge.app.private_key_env, "the App's private key")
            )
        if forge.webhook_secret_env is not None:
            wanted.append(
                (
                    ("forges", name, "webhook_secret_env"),
                    forge.webhook_secret_env,
                    "the webhook secret",
                )
            )
        if forge.signing_secret_env is not None:
            wanted.append(
                (
                    ("forges", name, "signing_secret_env"),
                    forge.signing_secret_env,
                    "the webhook signing token",
                )
            )
        for loc, variable, what in wanted:
            problem = unset_variable(environ, variable, f"{what} of forge {name}")
            if problem is not None:
                yield loc, problem
        if (swapped := _swapped_secret(name, forge, environ)) is not None:
            yield ("forges", name, "webhook_secret_env"), swapped
        signing = environ.get(forge.signing_secret_env or "", "").strip()
        if signing and signing_key(signing) is None:
            yield (
                ("forges", name, "signing_secret_env"),
                f"environment variable {forge.signing_secret_env} is no signing token: set it "
                "to the GitLab hook's signing token as GitLab shows it (whsec_ and base64)",
            )


def _swapped_secret(name: str, forge: ForgeEntry, environ: Mapping[str, str]) -> str | None:
    """Why the webhook secret in the environment is likely the forge's token (or another
    API token): shaped like one, or the very value of ``token_env``. Never shows it."""
    variable = forge.webhook_secret_env
    secret = environ.get(variable or "", "").strip()
    if not variable or not secret:
        return None
    token = environ.get(forge.token_env or "", "").strip()
    if secret == token:
        why = f"the same value as {forge.token_env} (token_env)"
        how = "one of the two is the wrong value"
    elif credential_shaped(secret):
        why = "a value shaped like an API token (ghp_…, glpat-…, or another service's)"
        how = "the two were likely swapped"
    else:
        return None
    where = f"{forge.token_env} (token_env)" if forge.token_env else "the variable token_env names"
    return (
        f"environment variable {variable} holds {why}, not the webhook secret of forge "
        f"{name}: {how}. Put the bot's token in {where} and, in "
        f"{variable}, the secret you gave the forge's webhook (any long random text, e.g. "
        "`openssl rand -hex 32`); the value is not shown"
    )


def with_forge_credentials(
    repos: Mapping[str, RepoEntry], forges: Mapping[str, ForgeEntry]
) -> dict[str, RepoEntry]:
    """``repos``, where one on a forge has no credential of its own and an https url,
    fetching and pushing with its forge's token (``token_env``), or with the installation
    token its forge's GitHub App mints for it (:func:`app_token_variable`)."""
    out = dict(repos)
    for name, entry in repos.items():
        forge = forges.get(entry.forge) if entry.forge else None
        if forge is None or entry.token_env is not None or entry.ssh_key is not None:
            continue
        if not entry.url.startswith("http"):
            continue
        variable = forge.token_env or app_token_variable(name)
        out[name] = entry.model_copy(update={"token_env": variable})
    return out


def repo_credentials(
    repos: Mapping[str, RepoEntry], forges: Mapping[str, ForgeEntry]
) -> dict[str, Credential]:
    """How each of ``repos`` (as :func:`with_forge_credentials` gave them their
    credential) reaches its upstream, in words naming the variable and the config key to
    fix: its forge's token or App where it has none of its own; a GitLab's repositories
    send their token as user ``oauth2``."""
    out = {}
    for name, entry in repos.items():
        forge = forges.get(entry.forge) if entry.forge else None
        out[name] = credential_of(name, entry)
        if forge is None or entry.token_env is None:
            continue
        if forge.app is not None and entry.token_env == app_token_variable(name):
            out[name] = Credential(
                "app",
                f"the installation token forge {entry.forge}'s GitHub App mints for it "
                f"(forges.{entry.forge}.app)",
                ("forges", str(entry.forge), "app"),
            )
        elif entry.token_env == forge.token_env:
            out[name] = Credential(
                "token",
                f"the token in {forge.token_env} (forges.{entry.forge}.token_env, which "
                f"repository {name} fetches and pushes with)",
                ("forges", str(entry.forge), "token_env"),
                forge.token_env,
            )
    for name, entry in repos.items():
        forge = forges.get(entry.forge) if entry.forge else None
        if forge is not None and forge.kind == "gitlab":  # GitLab's user for a token
            out[name] = replace(out[name], git_user="oauth2")
    return out


def app_token_variable(repo: str) -> str:
    """Where the installation token a GitHub App minted for ``repo`` is kept for git, in
    Fleetwarden's own overlay of its environment (never the process's, never an agent's)."""
    return "FLEETWARDEN_FORGE_TOKEN_" + repo.upper().replace("-", "_")


def summary_lines(forges: Mapping[str, ForgeEntry], webhook_base: str = "") -> list[str]:
    """One line per forge for ``check-config``: its kind and API, the credential's kind
    (never the secret), how events come — the address to point its webhook at, under
    ``webhook_base`` (``http://127.0.0.1:8750``) — and what starts a run."""
    lines = []
    for name, forge in forges.items():
        credential = f"token from ${forge.token_env}" if forge.token_env else "GitHub App"
        events = []
        if forge.webhook_secret_env or forge.signing_secret_env:
            events.append(f"webhooks at {webhook_base}/webhooks/{name}")
        if forge.poll_seconds:
            events.append(f"polled every {forge.poll_seconds} s")
        trigger = [f"label {forge.trigger.label_prefix}AGENT"]
        if forge.trigger.assign and forge.agent:
            trigger.append(f"assigned to {forge.login} ({forge.agent})")
        if forge.trigger.mention and forge.agent:
            trigger.append(f"@{forge.login}")
        lines.append(
            f"{name}: {forge.kind} at {forge.api_url} ({credential}; {', '.join(events)}; "
            f"starts on {', '.join(trigger)})"
        )
    return lines
