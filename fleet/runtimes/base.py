"""What every runtime shares: the :class:`Runtime` protocol, the :class:`RuntimeContext` a
plan is made in, the environment every agent starts from, and the registry by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from fleet.accounts.model import CREDENTIAL_VARS, PROVIDER_KEY_VARS, key_vars_of
from fleet.errors import UnknownRuntime
from fleet.model import AgentSpec, LaunchPlan
from fleet.placeholders import placeholder_token
from fleet.transcript.events import StreamParser

# Variables an agent process may see from Fleetwarden's own environment, besides the
# secrets its spec names. Everything else is left behind on purpose.
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
OFFLINE_PROVIDERS_ENV = "FLEETWARDEN_OFFLINE_PROVIDERS"


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    """What a runtime needs to know about the agent's place on this host."""

    home: Path  # the agent's private HOME: its config files live here, never the operator's
    workdir: Path
    environ: Mapping[str, str]  # Fleetwarden's own environment, to pick pass-throughs from
    tty: bool = False  # a real terminal (tmux): start the interactive UI, not a headless run
    # Provider name ("anthropic", "openai") -> base URL the agent must use (the metering
    # proxy's per-agent URL, or a configured upstream). Absent: the CLI's own default.
    provider_urls: Mapping[str, str] = field(default_factory=dict)
    heartbeat_url: str | None = None  # POST here (with the token header) to say "alive"
    heartbeat_token: str | None = None
    # Provider name -> the kind of account the proxy injects for it (``api_key``,
    # ``claude_subscription``, ``chatgpt_subscription``). The agent gets placeholders of
    # that shape; the real credential never reaches it.
    accounts: Mapping[str, str] = field(default_factory=dict)
    started_at: datetime | None = None  # when the launch is planned (the injected clock)
    # The providers answered by the offline stand-in (no model runs there): told to the
    # agent in FLEETWARDEN_OFFLINE_PROVIDERS.
    offline: frozenset[str] = frozenset()


class Runtime(Protocol):
    """How to launch one kind of agent, and how to give it more work."""

    @property
    def name(self) -> str: ...

    def plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        """The argv, environment, directory and config files that start ``spec``: headless
        with ``spec.prompt``, or its interactive UI when ``ctx.tty``."""
        ...

    def follow_up(
        self, spec: AgentSpec, ctx: RuntimeContext, session: str | None, text: str
    ) -> LaunchPlan | None:
        """A headless run that continues ``session`` with ``text`` (e.g. ``claude -p TEXT
        --resume SESSION``), or ``None`` when the text is to be typed into the running
        agent instead (stdin, or the TUI in tmux)."""
        ...

    def session_id(self, output: str) -> str | None:
        """The agent's session id, read from what its last run wrote, if it says."""
        ...

    def parser(self, tty: bool) -> StreamParser:
        """A new reader of one run's output as :mod:`fleet.transcript.events` (plain text
        when ``tty``: a terminal's screen is not the CLI's JSON stream)."""
        ...


def base_env(spec: AgentSpec, ctx: RuntimeContext) -> dict[str, str]:
    """The explicit environment every agent starts from: a private HOME, a few safe
    pass-throughs, the spec's own non-secret values and the secrets it names — except a
    provider key the proxy holds for it (an account), which the agent never gets."""
    env = {key: ctx.environ[key] for key in PASSTHROUGH_ENV if key in ctx.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env["HOME"] = str(ctx.home)
    env["FLEETWARDEN_AGENT"] = spec.name
    env.update(spec.env)
    held = held_by_proxy(spec, ctx)
    for key in spec.secret_env:
        if key in ctx.environ and key not in held:
            env[key] = ctx.environ[key]
    return env


def held_by_proxy(spec: AgentSpec, ctx: RuntimeContext) -> frozenset[str]:
    """The provider keys in ``spec.secret_env`` the agent does not get: all of them, when
    the proxy holds accounts for this run (a key in an agent's hands could be spent around
    the proxy); none without (metering off: the agent must call the provider itself)."""
    if not ctx.accounts:
        return frozenset()
    return frozenset(key_vars_of(spec.runtime, spec.secret_env)) | CREDENTIAL_VARS


def provider_env(ctx: RuntimeContext, agent: str) -> dict[str, str]:
    """The base-URL variables the official SDKs read, for agents that are plain programs:
    ``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL`` (ending in ``/v1``), and
    ``FLEETWARDEN_<PROVIDER>_BASE_URL`` for every provider; the providers the offline
    stand-in answers in ``FLEETWARDEN_OFFLINE_PROVIDERS`` (comma-separated); and, for a
    provider an account covers or the offline stand-in answers, a placeholder key where the
    SDK insists on one (the proxy injects the real one; the stand-in needs none)."""
    env: dict[str, str] = {}
    for variable, provider in PROVIDER_KEY_VARS.items():
        # The offline stand-in takes no key, but a CLI will not start without one.
        if provider in ctx.accounts or provider in ctx.offline:
            env[variable] = placeholder_token(agent)
    for name, url in ctx.provider_urls.items():
        env[f"FLEETWARDEN_{name.upper().replace('-', '_')}_BASE_URL"] = url
    if ctx.offline:
        env[OFFLINE_PROVIDERS_ENV] = ",".join(sorted(ctx.offline))
    if "anthropic" in ctx.provider_urls:
        env["ANTHROPIC_BASE_URL"] = ctx.provider_urls["anthropic"]
    if "openai" in ctx.provider_urls:
        url = ctx.provider_urls["openai"].rstrip("/")
        env["OPENAI_BASE_URL"] = url if url.endswith("/v1") else url + "/v1"
    return env


class RuntimeRegistry:
    """The runtimes this Fleetwarden knows, by name."""

    def __init__(self, runtimes: Mapping[str, Runtime]) -> None:
        self._runtimes = dict(runtimes)

    def get(self, name: str) -> Runtime:
        try:
            return self._runtimes[name]
        except KeyError:
            known = ", ".join(sorted(self._runtimes))
            raise UnknownRuntime(f"unknown runtime {name!r}; known runtimes: {known}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._runtimes))
