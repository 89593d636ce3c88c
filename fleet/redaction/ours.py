"""Credential shapes detect-secrets lacks, written as its plugins (``RegexBasedDetector``), so
the redactor runs them as it runs the library's own.

* Anthropic API keys and Claude OAuth tokens (``sk-ant-api03-…``, ``sk-ant-oat01-…``).
* Fleetwarden's own: an agent's placeholder credential, its metering URL's key
  (``http://127.0.0.1:PORT/a/AGENT/PROVIDER/KEY``), its heartbeat token in the
  ``X-Fleetwarden-Token`` header. The values Fleetwarden holds now are redacted by value
  anyway; the shapes also catch those of an earlier run or another Fleetwarden on the host.
* HTTP credential headers, as ``curl -v`` prints them (``Authorization: Bearer …``,
  ``x-api-key: …``).
* Secret-named environment assignments, as ``env``, ``export`` or a ``.env`` file show them
  (``GITHUB_TOKEN=…``, ``DB_PASSWORD=…``): detect-secrets' keyword plugin knows no
  ``token`` and, on unquoted values, matches prose too (``Secret: the answer``).
* Quoted values of keys ending in ``token`` (``"access_token": "…"``), for the same reason.
* OpenAI project keys (``sk-proj-…``), ``.netrc`` passwords, and the unquoted credentials
  of an AWS credentials file, a Docker ``config.json`` and a YAML/INI/TOML key naming a
  secret: the formats agents meet every day, caught here whatever gitleaks' entropy and
  stopwords make of their value.

Where a pattern has groups, the groups are the secret and the rest is its context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from detect_secrets.plugins.base import RegexBasedDetector

from fleet.connections.token import TOKEN_HEADER
from fleet.names import AGENT_NAME_PATTERN
from fleet.placeholders import PLACEHOLDER_PREFIX

_LOOPBACK: Final = r"(?:127\.0\.0\.1|localhost|\[::1\])"
_SECRET_WORDS: Final = (
    "TOKEN|SECRET|PASSWORD|PASSWD|PASS|PASSPHRASE|APIKEY|KEY|AUTH|CREDENTIALS?|PAT|COOKIE"
)
# A last name part saying the variable holds where or what a secret is, not the secret.
_NOT_SECRET_PARTS: Final = "FILE|PATH|DIR|ENV|URL|ID|SOCK|NAME|TYPE|HOST|PORT|USER|MODE|HELPER"


class AnthropicKeyDetector(RegexBasedDetector):
    """Anthropic API keys, admin keys and Claude OAuth access and refresh tokens."""

    secret_type = "Anthropic Key"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(r"sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_\-]{20,}"),
    )


class PlaceholderDetector(RegexBasedDetector):
    """The placeholder credential an agent holds in place of a provider's
    (:mod:`fleet.placeholders`)."""

    secret_type = "Fleetwarden Placeholder"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(re.escape(PLACEHOLDER_PREFIX) + AGENT_NAME_PATTERN),
    )


class MeteringUrlDetector(RegexBasedDetector):
    """The key in an agent's base URL at a metering proxy (:mod:`fleet.metering.proxy`)."""

    secret_type = "Metering Key"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(
            rf"https?://{_LOOPBACK}(?::\d+)?/a/{AGENT_NAME_PATTERN}/[A-Za-z0-9._-]+/"
            r"([A-Za-z0-9_\-]{16,})"
        ),
    )


class HttpCredentialDetector(RegexBasedDetector):
    """Credentials in HTTP headers, as a verbose client or a request dump shows them."""

    secret_type = "HTTP Credential"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(
            r"\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
            r"(?:bearer|basic|token|bot|digest)\s+([A-Za-z0-9._~+/=\-]{8,})",
            re.IGNORECASE,
        ),
        re.compile(
            r"\b(?:x-api-key|api-key|x-auth-token|private-token|x-goog-api-key|"
            + re.escape(TOKEN_HEADER.lower())
            + r")[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9._~+/=\-]{8,})",
            re.IGNORECASE,
        ),
    )


class SecretEnvDetector(RegexBasedDetector):
    """``NAME=value`` on a line of its own where a part of NAME names a secret
    (``GITHUB_TOKEN``, ``DB_PASSWORD``, ``export API_KEY=…``), but not one naming where it
    is (``SSH_AUTH_SOCK``, ``KEY_FILE``)."""

    secret_type = "Secret Assignment"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(
            r"^[ \t]*(?:export[ \t]+|declare -x[ \t]+)?"
            rf"(?:[A-Z0-9]+_)*(?:{_SECRET_WORDS})"
            rf"(?:_(?!(?:{_NOT_SECRET_PARTS})=)[A-Z0-9]+)*"
            r"=(?:'([^'\n]+)'|\"([^\"\n]+)\"|([^\s'\"][^\n]*?))[ \t\r]*$",
            re.MULTILINE,
        ),
    )


class TokenAssignmentDetector(RegexBasedDetector):
    """A quoted value given to a key ending in ``token`` (JSON, YAML, TOML, code)."""

    secret_type = "Token"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(
            r"token[\"']?\s*[:=]\s*[\"']([^\"'\s]{8,})[\"']",
            re.IGNORECASE,
        ),
    )


class OpenAIProjectKeyDetector(RegexBasedDetector):
    """OpenAI project, service-account and admin keys (``sk-proj-…``), whatever their
    middle: detect-secrets' plugin and gitleaks' rule want the ``T3BlbkFJ`` marker."""

    secret_type = "OpenAI Key"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}"),
    )


class NetrcDetector(RegexBasedDetector):
    """A ``.netrc`` password: on a ``machine``/``default`` line, after a ``login``, or on a
    line of its own (``password VALUE``)."""

    secret_type = "Netrc Password"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(
            r"\b(?:machine[ \t]+\S+|default|login[ \t]+\S+)(?:[ \t]+(?:login|account)[ \t]+\S+)*"
            r"[ \t]+password[ \t]+(\S+)"
        ),
        re.compile(r"^[ \t]*password[ \t]+(\S+)[ \t]*$", re.MULTILINE),
    )


class ConfigCredentialDetector(RegexBasedDetector):
    """Credentials in the files agents read every day, unquoted: an AWS credentials file
    (``aws_secret_access_key = …``), a Docker ``config.json`` (``"auth": "…"``), and a
    YAML, INI or TOML key naming a secret (``api_token: …``) whose value is one word of
    letters and digits — prose (``Secret: the answer``) and names (``token_url: …``,
    ``secret_name: …``) are not."""

    secret_type = "Config Credential"
    denylist: Iterable[re.Pattern[str]] = (
        re.compile(
            r"^[ \t]*aws_(?:secret_access_key|session_token|security_token)[ \t]*[=:][ \t]*"
            r"[\"']?([A-Za-z0-9/+=]{16,})",
            re.MULTILINE | re.IGNORECASE,
        ),
        re.compile(
            r"\"(?:auth|identitytoken|registrytoken)\"[ \t]*:[ \t]*"
            r"\"([A-Za-z0-9+/=._\-]{8,})\"",
            re.IGNORECASE,
        ),
        re.compile(
            r"^[ \t]*(?:-[ \t]+)?"
            rf"(?![\w.-]*[_.-](?:{_NOT_SECRET_PARTS}|LENGTH|SIZE|URI)[ \t]*[:=])"
            r"[\w.-]*(?:token|secret|password|passwd|api_?key|apikey|auth_?key|"
            r"private_?key|access_?key|credentials?)[\w.-]*[ \t]*[:=][ \t]*"
            r"(?=[A-Za-z0-9._~+/=\-]*\d)(?=[A-Za-z0-9._~+/=\-]*[A-Za-z])"
            r"([A-Za-z0-9][A-Za-z0-9._~+/=\-]{7,})[ \t]*(?:#.*)?$",
            re.MULTILINE | re.IGNORECASE,
        ),
    )
