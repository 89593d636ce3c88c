"""What in an MCP server's entry looks like a credential, and so never goes in the config
file: a header by its name (``Authorization``, ``X-Api-Key``, any name with a word of
:data:`SECRET_WORDS`) or its value (``Bearer …``, a token's shape, as the log redactor finds
them), an argument by its option (``--token=…``, ``--auth X``, ``-p X``) or shape, a URL by
its query's keys (``?sig=``, ``?key=``) or a path segment of a token's shape. The schema
(:mod:`fleet.mcp.config.schema`) refuses each, naming where it is and never showing it.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from fleet.redaction.shapes import credential_shaped
from fleet.schema import looks_secret

SECRET_WORDS: Final = frozenset(
    {"auth", "token", "key", "secret", "pat", "api", "apikey", "password", "passwd", "pass"}
    | {"pwd", "credential", "credentials", "session", "cookie", "bearer", "jwt", "sig"}
    | {"signature", "authorization", "private", "dsn"}
)
"""Words of a name (split on ``-``, ``_``, ``.`` and case changes) that say it holds a
credential: a header's, an option's or a URL query's."""
_SECRET_PREFIXES: Final = ("auth", "token", "apikey", "secret", "passw", "credential")
"""Beginnings of a word that say so too (``Authorization``, ``tokens``, ``passwords``)."""
_SCHEMES: Final = ("bearer ", "basic ", "token ", "digest ", "negotiate ")
"""How an HTTP credential's value begins, whatever the header's name."""
_QUERY_KEYS: Final = frozenset({"code", "sig", "signature", "key", "sv", "se", "sp", "st"})
"""Query keys that carry a credential though their name does not read like one (an OAuth
code, an Azure SAS's signature and fields, a bare ``key``)."""
CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
_WHERE_WORDS: Final = frozenset({"file", "path", "dir", "env", "var", "name", "id", "stdin"})
"""Words of an option that names where a secret is, not the secret (``--key-file``)."""
_SHORT_SECRET_OPTIONS: Final = frozenset({"-p", "-P", "-k", "-t"})
"""One-letter options that take a password, key or token in the CLIs MCP servers wrap
(``mysql -p``, ``curl -k`` aside: refused as the safer reading)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def words_of(name: str) -> list[str]:
    """``name``'s words, lowercased: split on ``-``, ``_``, ``.`` and a lowercase letter
    followed by a capital (``X-ApiKey`` → ``x, api, key``)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[\s_\-.]+", spaced.lower()) if w]


def secret_name(name: str) -> bool:
    """Whether a header's, option's or query key's ``name`` reads like it holds a
    credential (a word of :data:`SECRET_WORDS`, or one beginning like one)."""
    words = words_of(name)
    whole = name.lower().replace("-", "").replace("_", "")
    return (
        looks_secret(name)
        or any(w in SECRET_WORDS or w.startswith(_SECRET_PREFIXES) for w in words)
        or whole in SECRET_WORDS
    )


_ENV_WORDS: Final = SECRET_WORDS - {"api", "private", "sig", "key"}
"""A plain variable's words that say it holds a credential (``API_URL`` and ``PRIVATE_REPO``
are ordinary; ``KEY`` alone is caught as ``…_KEY`` by :func:`fleet.schema.looks_secret`)."""


def secret_variable(name: str) -> bool:
    """Whether a stdio server's plain variable ``name`` reads like it holds a credential
    (``GITHUB_PAT``, ``SENTRY_AUTH``, ``SENTRY_DSN``, ``DB_PASS``)."""
    words = words_of(name)
    return looks_secret(name) or any(
        w in _ENV_WORDS or w.startswith(_SECRET_PREFIXES) for w in words
    )


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (CR, LF, NUL, ESC, …)."""
    return _CONTROL.search(text) is not None


def secret_header(name: str, value: str) -> bool:
    """Whether the plain header ``name: value`` looks like it carries a credential: by its
    name, by how its value begins (``Bearer …``) or by its value's shape."""
    return (
        name.lower() in CREDENTIAL_HEADERS
        or secret_name(name)
        or value.lstrip().lower().startswith(_SCHEMES)
        or credential_shaped(value)
        or credential_shaped(f"{name}: {value}")
    )


def secret_option(option: str) -> bool:
    """Whether ``option`` (``--api-key``, ``--auth``, ``-p``) takes a secret as its value:
    it names one, and not where one is (``--key-file``, ``--token-env``)."""
    if not option.startswith("-"):
        return False
    if option in _SHORT_SECRET_OPTIONS:
        return True
    bare = option.lstrip("-")
    return secret_name(bare) and not set(words_of(bare)) & _WHERE_WORDS


def secret_arg(before: str | None, arg: str) -> bool:
    """Whether ``arg`` holds a credential: by its shape, as the value of a secret-named
    option (``--token=…``, or after ``--api-key`` or ``-p``)."""
    option, equals, _ = arg.partition("=")
    if equals and secret_option(option):
        return True
    if before is not None and "=" not in before and secret_option(before):
        return not arg.startswith("-")  # `--auth --verbose`: a flag, then another
    return credential_shaped(arg) or (before is not None and credential_shaped(f"{before} {arg}"))


def url_problem(value: str) -> str | None:
    """Why ``value`` cannot be an MCP server's ``url``, or ``None``."""
    if has_control(value) or " " in value:
        return (
            "url holds a space or a control character (a line break?): write the URL on one "
            "line, with no spaces (the value is not shown)"
        )
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "url is the server's streamable HTTP endpoint, such as https://mcp.example.com/mcp"
    if parts.username or parts.password:
        return (
            "url takes no credential: send it in a header read from a variable "
            "(headers_env: {Authorization: VARIABLE})"
        )
    if parts.fragment:
        return "url takes no fragment (#...)"
    query = [key for key, _ in parse_qsl(parts.query, keep_blank_values=True)]
    secret_query = any(secret_name(key) or key.lower() in _QUERY_KEYS for key in query)
    segments = [segment for segment in parts.path.split("/") if segment]
    if secret_query or any(credential_shaped(s) for s in segments) or credential_shaped(value):
        return (
            "url looks like it holds a credential: send it in a header read from a variable "
            "(headers_env: {Authorization: VARIABLE}), never in the file"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"url's port is not a number from 1 to 65535: {parts.netloc}"
    return None
