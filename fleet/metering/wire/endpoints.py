"""Which endpoints the proxy forwards: an agent's request path, normalised, against a table of
each provider API's known endpoints.

A path is read from the raw request target: percent-decoded once, with encoded slashes or
backslashes, dot segments, NUL and other control characters refused outright (each could
step outside the upstream's path prefix or make the provider read a different path than
the proxy did); empty segments (``//``, a trailing ``/``) are dropped. Case is kept: the
table is case-sensitive, so ``/V1/messages`` is no endpoint at all.

The result is one of

* a **metered** endpoint (the model APIs): parsed, checked against the policy, recorded;
* a **known unmetered** one (model lists, token counting, Claude Code's ``HEAD /``
  preflight): passed through, unrecorded;
* a **passthrough** one the operator listed under ``providers.<name>.passthrough``: passed
  through unmetered, never with an account's credential;
* anything else: refused, naming the path and the config key that would allow it.

This table is also what decides which requests may carry an account's credential (only the
known endpoints): one list, so metering and credentials cannot disagree.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote_to_bytes

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.metering.counting.usage import Api

CHATGPT_ROUTE: Final = "chatgpt"
MAX_PATH: Final = 2048  # characters of a tail; longer is refused
_MODEL_ID: Final = r"[A-Za-z0-9._:@-]+"
_UNSAFE_ESCAPES: Final = re.compile(r"%(?:2f|5c|00)", re.IGNORECASE)
_SHOWN: Final = re.compile(r"[^A-Za-z0-9._~:@!$&'()*+,;=/%-]")
_QUOTE_SAFE: Final = "/:@-._~!$&'()*+,;="


class Kind(enum.Enum):
    METERED = "metered"  # a model request
    KNOWN = "known"  # a known endpoint that spends nothing: passes unmetered
    PASSTHROUGH = "passthrough"  # not known, but the operator let it through


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One known endpoint: method, path (a regular expression over the normalised path,
    no leading slash), and the model API it speaks when it is metered."""

    method: str
    path: re.Pattern[str]
    api: Api | None = None

    @property
    def kind(self) -> Kind:
        return Kind.METERED if self.api is not None else Kind.KNOWN


def _e(method: str, path: str, api: Api | None = None) -> Endpoint:
    return Endpoint(method, re.compile(path), api)


ANTHROPIC_ENDPOINTS: Final = (
    _e("POST", "v1/messages", "anthropic"),
    _e("POST", "v1/messages/count_tokens"),
    _e("GET", rf"v1/models(?:/{_MODEL_ID})?"),
    _e("HEAD", ""),  # Claude Code's preflight on its base URL
)
OPENAI_ENDPOINTS: Final = (
    _e("POST", "v1/responses", "responses"),
    _e("POST", "v1/chat/completions", "chat"),
    _e("GET", rf"v1/models(?:/{_MODEL_ID})?"),
)
# Codex on a ChatGPT login: its base URL is ``…/backend-api/codex`` (no ``/v1``).
CHATGPT_ENDPOINTS: Final = (
    _e("POST", "backend-api/codex/responses", "responses"),
    _e("GET", "backend-api/codex/models"),
)


def endpoints_of(route: ProviderRoute) -> Sequence[Endpoint]:
    """The known endpoints of ``route``'s API."""
    if route.name == CHATGPT_ROUTE:
        return CHATGPT_ENDPOINTS
    return ANTHROPIC_ENDPOINTS if route.api is ProviderApi.ANTHROPIC else OPENAI_ENDPOINTS


class BadPath(ValueError):
    """A path the proxy will not forward whatever it names (it could mean another path
    upstream than it seems to here)."""


def normalise(raw_tail: str) -> str:
    """The raw (still percent-encoded) tail of an agent URL as the path the proxy reads
    and forwards: decoded once, empty segments dropped, no leading or trailing slash.
    Raises :class:`BadPath`."""
    if len(raw_tail) > MAX_PATH:
        raise BadPath(f"a path longer than {MAX_PATH} characters")
    if "\\" in raw_tail or _UNSAFE_ESCAPES.search(raw_tail):
        raise BadPath("an encoded slash, backslash or NUL in the path")
    try:
        path = unquote_to_bytes(raw_tail).decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath("a path that is not UTF-8") from None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise BadPath("a control character in the path")
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise BadPath("a . or .. segment in the path")
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the proxy does with one request: ``kind`` (``None``: refused, ``why``
    says why), the normalised ``path``, and the model API when it is metered."""

    path: str
    kind: Kind | None
    api: Api | None = None
    why: str = ""

    @property
    def credentialed(self) -> bool:
        """Whether an account's credential may go with it: known endpoints only."""
        return self.kind in (Kind.METERED, Kind.KNOWN)

    @property
    def url_path(self) -> str:
        """The path as it goes upstream, percent-encoded again."""
        return quote(self.path, safe=_QUOTE_SAFE)


def decide(route: ProviderRoute, method: str, raw_tail: str) -> Decision:
    """How the proxy treats ``method`` on ``raw_tail`` (the agent URL's tail, as sent)."""
    try:
        path = normalise(raw_tail)
    except BadPath as exc:
        return Decision("", None, why=f"{exc}: {shown(raw_tail)}")
    for endpoint in endpoints_of(route):
        if endpoint.method == method and endpoint.path.fullmatch(path):
            return Decision(path, endpoint.kind, endpoint.api)
    if any(matches(pattern, path) for pattern in route.passthrough):
        return Decision(path, Kind.PASSTHROUGH)
    return Decision(
        path,
        None,
        why=(
            f"{method} /{shown(path)} is not an endpoint the proxy knows for provider "
            f"{route.name!r}; to let it through unmetered, add it to "
            f"providers.{route.name}.passthrough in the config"
        ),
    )


def matches(pattern: str, path: str) -> bool:
    """Whether the normalised ``path`` matches a ``passthrough`` entry: a path (leading
    slash optional), where ``*`` stands for any text within one segment and ``**`` for any
    text at all."""
    return _glob(pattern).fullmatch(path) is not None


def _glob(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*)", pattern.strip("/"))
    regex = "".join(
        ".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part) for part in parts
    )
    return re.compile(regex)


def check_passthrough(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a ``passthrough`` entry, or ``None`` when it can."""
    if not pattern.strip("/"):
        return "an empty path would let everything through"
    try:
        normal = normalise(pattern.replace("*", "x"))
    except BadPath as exc:
        return str(exc)
    if normal != pattern.strip("/").replace("*", "x"):
        return "write the path normalised: no empty segments"
    return None


def shown(text: str) -> str:
    """``text`` fit for a message: at most 200 characters, odd characters escaped."""
    cut = text[:200]
    out = _SHOWN.sub(lambda m: f"%{ord(m.group()):02X}" if ord(m.group()) < 256 else "?", cut)
    return out + ("…" if len(text) > 200 else "")
