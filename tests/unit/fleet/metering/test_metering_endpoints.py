"""The proxy's endpoint table: paths normalised, then known, let through, or refused."""

from __future__ import annotations

import pytest

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.metering.wire.endpoints import BadPath, Kind, decide, matches, normalise
from fleet.metering.wire.upstream import path_rule

ANTHROPIC = ProviderRoute("anthropic", "https://api.anthropic.com", ProviderApi.ANTHROPIC)
OPENAI = ProviderRoute("openai", "https://api.openai.com", ProviderApi.OPENAI)
CHATGPT = ProviderRoute("chatgpt", "https://chatgpt.com", ProviderApi.OPENAI)


@pytest.mark.parametrize(
    ("route", "method", "tail", "kind", "api"),
    [
        (ANTHROPIC, "POST", "v1/messages", Kind.METERED, "anthropic"),
        (ANTHROPIC, "POST", "v1/messages/", Kind.METERED, "anthropic"),
        (ANTHROPIC, "POST", "v1//messages", Kind.METERED, "anthropic"),
        (ANTHROPIC, "POST", "v1/messages/count_tokens", Kind.KNOWN, None),
        (ANTHROPIC, "GET", "v1/models", Kind.KNOWN, None),
        (ANTHROPIC, "GET", "v1/models/claude-sonnet-4-5", Kind.KNOWN, None),
        (ANTHROPIC, "HEAD", "", Kind.KNOWN, None),
        (OPENAI, "POST", "v1/responses", Kind.METERED, "responses"),
        (OPENAI, "POST", "v1/chat/completions", Kind.METERED, "chat"),
        (OPENAI, "GET", "v1/models", Kind.KNOWN, None),
        (CHATGPT, "POST", "backend-api/codex/responses", Kind.METERED, "responses"),
        (CHATGPT, "GET", "backend-api/codex/models", Kind.KNOWN, None),
    ],
)
def test_known_endpoints(
    route: ProviderRoute, method: str, tail: str, kind: Kind, api: str | None
) -> None:
    """Each provider API's model requests are metered and its model lists pass."""
    decision = decide(route, method, tail)
    assert (decision.kind, decision.api) == (kind, api)
    assert decision.credentialed


@pytest.mark.parametrize(
    ("method", "tail"),
    [
        ("POST", "v1/messages/batches"),
        ("POST", "v1/complete"),
        ("POST", "V1/messages"),
        ("POST", "v1/Messages"),
        ("POST", "v1/messages%20"),
        ("POST", "v1/messages;x=1"),
        ("GET", "v1/messages"),
        ("POST", "v1/responses"),
        ("GET", "v1/files"),
        ("POST", "v1/messages%3Fbeta"),
        ("HEAD", "v1"),
    ],
)
def test_unknown_anthropic_paths_are_refused_naming_path_and_key(method: str, tail: str) -> None:
    """Anything not in the table is refused, with the path and the config key to allow it."""
    decision = decide(ANTHROPIC, method, tail)
    assert decision.kind is None
    assert "providers.anthropic.passthrough" in decision.why
    assert not path_rule(ANTHROPIC, method, tail).credentialed


@pytest.mark.parametrize(
    "tail",
    [
        "v1/..%2f..%2fadmin",
        "v1/%2e%2e/v1/messages",
        "v1/messages/..",
        "v1/./messages",
        "v1%2Fmessages",
        "v1%5cmessages",
        "v1\\messages",
        "v1/messages%00",
        "v1/messages%0a",
        "v1/%ff",
        "x" * 3000,
    ],
)
def test_paths_that_could_escape_are_refused(tail: str) -> None:
    """Encoded slashes and backslashes, dot segments (encoded or not), NUL and control
    characters are refused whatever they would name."""
    with pytest.raises(BadPath):
        normalise(tail)
    decision = decide(ANTHROPIC, "POST", tail)
    assert decision.kind is None and decision.path == ""


def test_normalised_path_is_decoded_once() -> None:
    """A path is percent-decoded once: ``%2541`` stays ``%41``, never ``A``."""
    assert normalise("v1/%6Dessages") == "v1/messages"
    assert normalise("v1/%2541") == "v1/%41"
    assert decide(ANTHROPIC, "POST", "v1/%6Dessages").url_path == "v1/messages"
    assert decide(ANTHROPIC, "POST", "v1/%2541").kind is None


def test_passthrough_lets_listed_paths_through_without_credential() -> None:
    """A path listed in ``passthrough`` passes, unmetered and never credentialed."""
    route = ProviderRoute(
        "anthropic", "https://x", ProviderApi.ANTHROPIC, passthrough=("/v1/files", "/v1/files/*")
    )
    for tail in ("v1/files", "v1/files/abc"):
        decision = decide(route, "GET", tail)
        assert decision.kind is Kind.PASSTHROUGH and not decision.credentialed
    assert decide(route, "GET", "v1/files/abc/content").kind is None
    assert decide(route, "POST", "v1/messages/batches").kind is None


def test_globs() -> None:
    """``*`` stays within a segment, ``**`` crosses them."""
    assert matches("/v1/files/*", "v1/files/a")
    assert not matches("/v1/files/*", "v1/files/a/b")
    assert matches("v1/files/**", "v1/files/a/b")
    assert not matches("v1/files", "v1/files2")
