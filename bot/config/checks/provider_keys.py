"""A provider key given to an agent under a variable name of the config's choosing
(``secret_env: [MY_ANTHROPIC_KEY]``) while the agent's network reaches a provider's own
host: the agent could call the provider with it directly, around the metering proxy —
unmetered, unbudgeted, unaudited.

Only ``ANTHROPIC_API_KEY`` and the runtime's own key variables become accounts the proxy
holds (:func:`fleet.accounts.model.key_vars_of`); any other variable is passed through as
it is. So a variable is taken for a provider key when its name says a provider
(``ANTHROPIC``, ``CLAUDE``, ``OPENAI``, ``CHATGPT``, or the name of one of the config's
``providers``), or — where the environment is known (at start, ``check-config``, a reload)
— when its value has a provider key's shape (gitleaks' rules for Anthropic and OpenAI
keys, :mod:`fleet.redaction.gitleaks`). An agent reaches a provider's host with
``sandbox: none``, ``egress: open``, or that host (a built-in provider's upstream, or one
of the config's ``providers``) in its ``egress_allow``.

Under ``enforce: strict`` each such pair is refused on the ``secret_env`` line with the fix
(:func:`strict_key_problems`, by name, wherever the config is read;
:func:`strict_shape_problems`, by value, where the environment is given); under ``warn``
``check-config`` warns (:func:`key_warnings`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.config.checks.problems import ConfigProblem
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile
from fleet.accounts.model import CREDENTIAL_VARS, key_vars_of
from fleet.accounts.providers import DEFAULT_ROUTES
from fleet.destinations import is_local
from fleet.metering.schema import provider_routes
from fleet.redaction.shapes import default_gitleaks

STRICT = "strict"
_NAMED = ("ANTHROPIC", "CLAUDE", "OPENAI", "CHATGPT")
_SHAPES = {
    "anthropic-api-key": "anthropic",
    "anthropic-admin-api-key": "anthropic",
    "openai-api-key": "openai",
}
"""gitleaks' rules whose secret is a provider's key, and the provider."""


@dataclass(frozen=True, slots=True)
class KeyReach:
    """Agent ``index``'s ``secret_env[item]``, ``variable``, taken for a provider key
    (``why``), and how the agent reaches a provider's host (``how``, ``fix``)."""

    index: int
    item: int
    agent: str
    variable: str
    why: str
    how: str
    fix: str

    def message(self, strict: bool) -> str:
        said = f"agent {self.agent!r} is given {self.variable}, which {self.why}, and {self.how}"
        spend = "it could spend it around the metering proxy, unmetered and unbudgeted"
        cure = (
            "make the key an account the proxy holds (accounts: {NAME: {kind: api_key, "
            f"provider: …, key_env: {self.variable}}}}} and `account: NAME`) and remove it "
            f"from secret_env, or {self.fix}"
        )
        if strict:
            return f"{said}: {spend}, which `enforce: strict` refuses; {cure}"
        return f"{said}: {spend}; {cure}"


def provider_hosts(document: ConfigFile) -> set[str]:
    """The providers' own hosts: the built-in upstreams and the config's ``providers``,
    but none on this machine (a local gateway is the operator's own)."""
    routes = (*DEFAULT_ROUTES.values(), *provider_routes(document.providers).values())
    urls = [route.upstream for route in routes]
    hosts = {(urlsplit(url).hostname or "").lower().rstrip(".") for url in urls}
    return {host for host in hosts if host and host != "localhost" and not is_local(host)}


def reaching(document: ConfigFile, environ: Mapping[str, str] | None) -> Iterator[KeyReach]:
    """Each agent's ``secret_env`` entry taken for a provider key while its network reaches
    a provider's host; by the variable's name, and with ``environ`` by its value's shape
    too."""
    hosts = provider_hosts(document)
    names = {*_NAMED, *(name.upper() for name in document.providers)}
    for index, agent in enumerate(document.agents):
        spec = agent.to_spec(document.defaults)
        how = _reach(spec.sandbox, spec.egress, spec.egress_allow, hosts)
        if how is None:
            continue
        held = set(key_vars_of(spec.runtime, spec.secret_env)) | CREDENTIAL_VARS
        for item, variable in enumerate(agent.secret_env):
            if variable in held:
                continue  # made an account the proxy holds, or refused elsewhere
            why = _why(variable, names, None if environ is None else environ.get(variable))
            if why is not None:
                yield KeyReach(index, item, agent.name, variable, why, *how)


def _reach(
    sandbox: str, egress: str, allow: tuple[str, ...], hosts: set[str]
) -> tuple[str, str] | None:
    """How an agent's network reaches a provider's host (and how to close it), or ``None``."""
    if sandbox == "none":
        return "runs with sandbox: none (any host)", "give it `sandbox: bwrap`"
    if egress == "open":
        return "has egress: open (any host)", "give it `egress: locked`"
    found = sorted(host for host in allow if host in hosts)
    if found:
        named = ", ".join(found)
        return f"has {named} in its egress_allow", f"take {named} out of its egress_allow"
    return None


def _why(variable: str, names: set[str], value: str | None) -> str | None:
    upper = variable.upper()
    said = next((name for name in sorted(names) if name in upper), None)
    if said is not None:
        return f"its name says is a {said.lower()} key"
    if value:
        text = value.strip()
        for span in default_gitleaks().spans(text, text.lower()):
            provider = _SHAPES.get(span.what)
            if provider is not None:
                return f"holds a value shaped like {provider}'s API keys"
    return None


def strict_key_problems(document: ConfigFile, roster: RosterSource) -> Iterator[ConfigProblem]:
    """Under ``enforce: strict``: each provider key by its variable's name."""
    if document.enforce != STRICT:
        return
    for found in reaching(document, None):
        yield _problem(roster, found)


def strict_shape_problems(
    document: ConfigFile, roster: RosterSource, environ: Mapping[str, str]
) -> Iterator[ConfigProblem]:
    """Under ``enforce: strict``: each provider key known only by its value's shape."""
    if document.enforce != STRICT:
        return
    named = {(f.index, f.item) for f in reaching(document, None)}
    for found in reaching(document, environ):
        if (found.index, found.item) not in named:
            yield _problem(roster, found)


def key_warnings(document: ConfigFile, environ: Mapping[str, str]) -> list[str]:
    """Under ``enforce: warn``: each one, for ``check-config``."""
    if document.enforce == STRICT:
        return []  # refused instead
    return [found.message(strict=False) for found in reaching(document, environ)]


def _problem(roster: RosterSource, found: KeyReach) -> ConfigProblem:
    line, path, _ = roster.locate(("agents", found.index, "secret_env", found.item))
    return ConfigProblem(roster.file_name, line, path, found.message(strict=True))
