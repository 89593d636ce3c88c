"""The config file's ``metering``, ``providers`` and ``prices`` sections."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from fleet.accounts.providers import DEFAULT_ROUTES, ProviderApi, ProviderRoute
from fleet.metering.config import MeteringSettings, Price, PriceTable
from fleet.metering.offline.model import DEMO_MODEL, DEMO_PRICE
from fleet.metering.wire.endpoints import check_passthrough
from fleet.schema import Seconds

_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_UPSTREAM = re.compile(r"https?://[^\s/?#@]+(/[^\s?#]*)?")


def _check_upstream(value: str) -> str:
    if not _UPSTREAM.fullmatch(value):
        raise PydanticCustomError(
            "upstream_url",
            "must be an http:// or https:// URL without credentials, query or fragment, "
            'e.g. "https://api.anthropic.com"',
        )
    return value.rstrip("/")


def _check_passthrough(value: str) -> str:
    why = check_passthrough(value)
    if why is not None:
        raise PydanticCustomError(
            "passthrough", "{why}; write a path such as /v1/files/*", {"why": why}
        )
    return value


def _check_per_million(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise PydanticCustomError("price", "must be a number of dollars, 0 or more")
    return value


UpstreamUrl = Annotated[str, AfterValidator(_check_upstream)]
PassthroughPath = Annotated[str, AfterValidator(_check_passthrough)]
DollarsPerMillion = Annotated[float, Field(strict=True), AfterValidator(_check_per_million)]


class MeteringSection(BaseModel):
    """The metering proxy every agent's provider traffic goes through, on 127.0.0.1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description=(
            "Route agents through the proxy and meter every token. Off: agents talk to "
            "`providers` directly and nothing is metered."
        ),
    )
    port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port on 127.0.0.1; 0: the port it had last time, else any free one.",
    )
    connect_timeout_seconds: Seconds = Field(
        default=10.0, description="How long reaching a provider may take before a 502."
    )
    read_timeout_seconds: Seconds = Field(
        default=600.0,
        description="How long a provider may stay silent mid-answer before it counts as cut.",
    )
    drain_timeout_seconds: Seconds = Field(
        default=120.0,
        description=(
            "After an agent hangs up mid-stream, how long the proxy keeps reading the "
            "provider's answer to learn its full usage."
        ),
    )
    max_hold_seconds: Seconds = Field(
        default=900.0,
        description="The longest a budget policy may hold one request before refusing it.",
    )

    idle_timeout_seconds: Seconds = Field(
        default=5.0,
        description=(
            "How long a new connection may take to send its first request before it is "
            "closed; agents' clients send theirs at once."
        ),
    )
    max_connections: int = Field(
        default=1024,
        ge=1,
        description=(
            "Connections the proxy holds at once, all agents together (fewer when the "
            "open-file limit leaves less). At the cap an idle one is closed to make room; "
            "with none idle, new ones get a 503."
        ),
    )
    max_requests_per_agent: int = Field(
        default=64,
        ge=1,
        description="Requests one agent may have in flight at once; past it, a 503 to retry.",
    )

    def settings(self) -> MeteringSettings:
        return MeteringSettings(
            port=self.port,
            connect_timeout=self.connect_timeout_seconds,
            read_timeout=self.read_timeout_seconds,
            drain_timeout=self.drain_timeout_seconds,
            max_hold=self.max_hold_seconds,
            idle_timeout=self.idle_timeout_seconds,
            max_connections=self.max_connections,
            max_requests_per_agent=self.max_requests_per_agent,
        )


class ProviderEntry(BaseModel):
    """A provider agents reach through the proxy. `anthropic` and `openai` are built in;
    add any OpenAI-compatible server under a name of your own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstream: UpstreamUrl = Field(
        description=(
            "The provider's base URL, which its API paths (`/v1/messages`, "
            '`/v1/responses`) are appended to, e.g. "https://api.anthropic.com". '
            "A built-in provider's entry may leave it out to keep the built-in one."
        ),
    )
    api: ProviderApi | None = Field(
        default=None,
        description=(
            "The provider's API family: `anthropic` (Messages) or `openai` (Responses, Chat "
            "Completions). Default: the built-in provider's, else `openai`."
        ),
    )
    passthrough: tuple[PassthroughPath, ...] = Field(
        default=(),
        description=(
            "Paths beyond the provider API's known endpoints that the proxy lets through, "
            "unmetered and without an account's credential (every other unknown path is "
            'refused), e.g. `["/v1/files", "/v1/files/*"]`: `*` is any text within one '
            "segment, `**` any text at all."
        ),
    )


class PriceEntry(BaseModel):
    """What a model's tokens cost, in US dollars per million."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: DollarsPerMillion = Field(description="Per million input tokens (not cached).")
    output: DollarsPerMillion = Field(description="Per million output tokens.")
    cache_read: DollarsPerMillion = Field(default=0.0, description="Per million cache reads.")
    cache_write: DollarsPerMillion = Field(default=0.0, description="Per million cache writes.")

    def price(self) -> Price:
        return Price(self.input, self.output, self.cache_read, self.cache_write)


def _check_provider_names(value: dict[str, ProviderEntry]) -> dict[str, ProviderEntry]:
    for name in value:
        if not _PROVIDER_NAME.fullmatch(name):
            raise PydanticCustomError(
                "provider_name",
                "provider name {name} must be lower case letters, digits, - or _, "
                "starting with a letter",
                {"name": repr(name)},
            )
    return value


def provider_routes(entries: dict[str, ProviderEntry]) -> dict[str, ProviderRoute]:
    """The built-in providers, overridden and extended by the config's ``providers``."""
    routes = dict(DEFAULT_ROUTES)
    for name, entry in entries.items():
        builtin = DEFAULT_ROUTES.get(name)
        api = entry.api or (builtin.api if builtin else ProviderApi.OPENAI)
        routes[name] = ProviderRoute(name, entry.upstream, api, entry.passthrough)
    return routes


def price_table(entries: dict[str, PriceEntry], fallback: PriceEntry | None = None) -> PriceTable:
    """The ``prices`` section, with ``price_default`` for every model it does not list, and
    the offline provider's model at its built-in price unless the section prices it."""
    return PriceTable(
        {DEMO_MODEL: DEMO_PRICE, **{model: entry.price() for model, entry in entries.items()}},
        None if fallback is None else fallback.price(),
    )


def _builtin_upstreams(value: object) -> object:
    """A built-in provider's entry without ``upstream`` keeps the built-in one."""
    if not isinstance(value, dict):
        return value
    return {
        name: (
            {**entry, "upstream": DEFAULT_ROUTES[name].upstream}
            if name in DEFAULT_ROUTES and isinstance(entry, dict) and "upstream" not in entry
            else entry
        )
        for name, entry in value.items()
    }


Providers = Annotated[
    dict[str, ProviderEntry],
    BeforeValidator(_builtin_upstreams),
    AfterValidator(_check_provider_names),
]
Prices = dict[str, PriceEntry]
