"""Credentials found by their shape, whoever's they are: Yelp's detect-secrets plugins, and a
few of our own written as detect-secrets plugins.

Chosen from detect-secrets (1.5): the token formats of the services coding agents touch
(AWS, GitHub, GitLab, Slack, Stripe, OpenAI, Discord, npm, PyPI, SendGrid, Telegram,
Twilio, Mailchimp, Square, Azure storage), JWTs, private keys, credentials in URLs, and
``KeywordDetector`` for quoted values of secret-named keys (``"password": "..."``). Left out:
the two high-entropy plugins, which on ordinary agent output take every quoted git SHA,
digest and lock-file hash for a secret (and hide exactly what an operator reads), the
public-IP plugin (an address is not a secret), Artifactory's (it takes words such as
``APACHEKAFKA`` for a password) and the IBM, Cloudant and SoftLayer keyword plugins.

gitleaks' default rules (:mod:`fleet.redaction.gitleaks`) add some 220 services' formats,
its generic ``key = value`` rule with an entropy floor and its allow-lists among them.

Ours (:mod:`fleet.redaction.ours`) add what both lack: Anthropic keys and
tokens, Fleetwarden's own placeholders and metering URLs, HTTP credential headers,
secret-named environment assignments (``GITHUB_TOKEN=...``, as ``env`` prints them) and
quoted values of keys ending in ``token``.

The plugins are asked through ``analyze_string``, the pure part of their API:
``analyze_line`` may verify a find over the network (Slack's, Stripe's and AWS's plugins
post the secret to their service) when the library's process-wide settings say so. And
what a plugin yields is its value as detect-secrets keeps it, which for some is only a
prefix (the GitHub and GitLab plugins yield ``ghp``, their regex's one group), so where a
secret is comes from each plugin's own ``denylist`` patterns; a pattern's match counts when
the plugin's ``analyze_string`` still yields something for it (the JWT plugin's check that
it decodes). Plugins read a line at a time; their patterns are run on the whole text, and a
match across a line break is dropped.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from detect_secrets.filters import heuristic
from detect_secrets.plugins import keyword
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

from fleet.placeholders import PLACEHOLDER_PREFIX
from fleet.redaction import ours
from fleet.redaction.gitleaks import GitleaksRules
from fleet.redaction.known import Span

REDACTED: Final = "[redacted"  # how every label begins: a value already redacted is left be
_KEY_END: Final = re.compile(r"-----END[^\n]*")
# The rest of a token a pattern stopped short of: the JWT plugin's pattern ends lazily
# (before the signature), Stripe's takes 24 characters of a key that may have 99.
_TOKEN_REST: Final = re.compile(r"[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*")


class Mask(enum.Enum):
    """What of a pattern's match is the secret."""

    MATCH = "match"  # the whole match and the rest of its token: a token (``ghp_...``)
    GROUPS = "groups"  # the pattern's groups: the value after its context (``://user:PW@``)
    BLOCK = "block"  # from the marker's line to the end of the block (a PEM private key)


@dataclass(frozen=True, slots=True)
class Shape:
    """One detect-secrets plugin, and what of its patterns' matches to take out.

    ``hints``: lowercase strings of which a line must hold one for any of the plugin's
    patterns to match on it; the patterns then run on those lines only (most texts have
    none). Without hints, they run on the whole text. ``filtered``: its values follow a
    key, and go through detect-secrets' filters for those (:func:`plausible`)."""

    plugin: RegexBasedDetector
    mask: Mask = Mask.MATCH
    hints: tuple[str, ...] = ()
    filtered: bool = False

    @property
    def what(self) -> str:
        return str(self.plugin.secret_type)


def default_shapes() -> tuple[Shape, ...]:
    """The plugins the redactor runs (the module docstring says why these)."""
    gitlab = ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "gr1348941", "glcbt-", "glimt-")
    return (
        # The AWS key-id pattern has no group (the whole match); its secret-key one has.
        Shape(AWSKeyDetector(), Mask.GROUPS, ("akia", "asia", "abia", "acca", "a3t", "aws")),
        Shape(AzureStorageKeyDetector(), hints=("accountkey=",)),
        Shape(BasicAuthDetector(), Mask.GROUPS, ("://",)),
        Shape(DiscordBotTokenDetector()),
        Shape(GitHubTokenDetector(), hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
        Shape(GitLabTokenDetector(), hints=(*gitlab, "glptt-", "glagent-", "gloas-")),
        Shape(JwtTokenDetector(), hints=("eyj",)),
        Shape(MailchimpDetector(), hints=("-us",)),
        Shape(NpmDetector(), Mask.GROUPS, ("_authtoken",)),
        Shape(OpenAIDetector(), hints=("t3blbkfj",)),
        Shape(PrivateKeyDetector(), Mask.BLOCK),  # a block spans lines: the whole text
        Shape(PypiTokenDetector(), hints=("pypi-",)),
        Shape(SendGridDetector(), hints=("sg.",)),
        Shape(SlackDetector(), hints=("xox", "hooks.slack.com")),
        Shape(SquareOAuthDetector(), hints=("sq0csp-",)),
        Shape(StripeDetector(), hints=("k_live_",)),
        Shape(TelegramBotTokenDetector()),
        Shape(TwilioKeyDetector()),
        Shape(ours.AnthropicKeyDetector(), hints=("sk-ant-",)),
        Shape(ours.PlaceholderDetector(), hints=(PLACEHOLDER_PREFIX,)),
        Shape(ours.MeteringUrlDetector(), Mask.GROUPS, ("/a/",)),
        Shape(
            ours.HttpCredentialDetector(),
            Mask.GROUPS,
            ("authorization", "api-key", "-token"),
            filtered=True,
        ),
        Shape(ours.SecretEnvDetector(), Mask.GROUPS, filtered=True),
        Shape(ours.TokenAssignmentDetector(), Mask.GROUPS, ("token",), filtered=True),
        Shape(ours.OpenAIProjectKeyDetector(), hints=("sk-proj-", "sk-svcacct-", "sk-admin-")),
        Shape(ours.NetrcDetector(), Mask.GROUPS, ("password",)),
        Shape(
            ours.ConfigCredentialDetector(),
            Mask.GROUPS,
            ("aws_", '"auth"', "token", "secret", "pass", "key", "credential"),
            filtered=True,
        ),
    )


# Every word of the keyword plugin's list holds one of these (in lower case).
_KEYWORD_HINTS: Final = ("key", "pass", "pwd", "secret", "contrase")


class Shapes:
    """Finds credentials by shape in a text: the plugins' patterns, detect-secrets'
    keyword plugin on the lines that name a secret, and gitleaks' rules
    (:mod:`fleet.redaction.gitleaks`, loaded once per process)."""

    def __init__(
        self, shapes: tuple[Shape, ...] | None = None, gitleaks: GitleaksRules | None = None
    ) -> None:
        chosen = default_shapes() if shapes is None else shapes
        self._gitleaks = gitleaks if gitleaks is not None else default_gitleaks()
        self._shapes = [(shape, _any_of(shape.hints)) for shape in chosen]
        # Every plugin's hints at once: a text holding none is searched by none of them.
        self._hints = _any_of(tuple(hint for shape in chosen for hint in shape.hints))
        self._keyword = keyword.KeywordDetector()
        self._keyword_hints = _any_of(_KEYWORD_HINTS)
        # The keyword plugin's own word list: a line it can match on names one of them.
        self._keyword_words = re.compile(keyword.DENYLIST_REGEX, re.IGNORECASE)

    def spans(self, text: str) -> list[Span]:
        """Every credential-shaped value in ``text``."""
        lowered = text.lower()
        # Lowering keeps every offset but for a few letters (a dotted capital I): then the
        # hints cannot say where, and every pattern runs on the whole text.
        exact = len(lowered) == len(text)
        hinted = self._hints is not None and self._hints.search(lowered) is not None
        found: list[Span] = []
        for shape, hints in self._shapes:
            if hints is None or not exact:
                found += _plugin_spans(shape, text, 0)
            elif hinted:
                for start, line in _lines_with(hints, text, lowered):
                    found += _plugin_spans(shape, line, start)
        found += self._keyword_spans(text, lowered)
        if exact:
            found += self._gitleaks.spans(text, lowered)
        else:
            found += self._gitleaks.spans(text, "".join(c.lower()[:1] for c in text))
        return found

    def _keyword_spans(self, text: str, lowered: str) -> Iterator[Span]:
        """``KeywordDetector`` as detect-secrets runs it on code (a quoted value after a
        secret-named key), with the library's filters for its false positives."""
        what = str(self._keyword.secret_type)
        lines = (
            _lines_with(self._keyword_hints, text, lowered)
            if self._keyword_hints is not None and len(lowered) == len(text)
            else _all_lines(text)
        )
        for start, line in lines:
            if not any(quote in line for quote in "\"'`") or not self._keyword_words.search(line):
                continue  # every pattern of the quoted kind needs a quote, and a word
            # What KeywordDetector.analyze_string does (one search per pattern, the value
            # in the pattern's group), keeping where the value is.
            for pattern, group in keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP.items():
                match = pattern.search(line)
                if match is None:
                    continue
                value = match.group(group)
                if plausible(value, line) and not heuristic.is_likely_id_string(value, line):
                    yield Span(start + match.start(group), start + match.end(group), what)


@functools.cache
def default_gitleaks() -> GitleaksRules:
    """gitleaks' default rules, compiled once for the process (~0.1 s)."""
    return GitleaksRules()


def _any_of(hints: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(map(re.escape, hints))) if hints else None


def _lines_with(hints: re.Pattern[str], text: str, lowered: str) -> Iterator[tuple[int, str]]:
    """Each line of ``text`` holding a hint (found in ``lowered``), once, with its offset."""
    last = -1
    for hit in hints.finditer(lowered):
        if hit.start() <= last:
            continue
        start = text.rfind("\n", 0, hit.start()) + 1
        end = text.find("\n", hit.end())
        last = len(text) if end == -1 else end
        yield start, text[start:last]


def _all_lines(text: str) -> Iterator[tuple[int, str]]:
    start = 0
    for line in text.split("\n"):
        yield start, line
        start += len(line) + 1


def _plugin_spans(shape: Shape, text: str, offset: int) -> Iterator[Span]:
    """``shape``'s finds in ``text`` (a line, or the whole text), at ``offset`` from the
    start of the whole."""
    plugin = shape.plugin
    for pattern in plugin.denylist:
        for match in pattern.finditer(text):
            found = match.group(0)
            if "\n" in found or not any(True for _ in plugin.analyze_string(found)):
                continue
            if shape.mask is Mask.BLOCK:
                start, end = _block(text, match)
                yield Span(offset + start, offset + end, shape.what)
            elif shape.mask is Mask.GROUPS and pattern.groups:
                line = _line_of(text, match) if shape.filtered else ""
                for group in range(1, pattern.groups + 1):
                    value = match.group(group)
                    if not value or value.startswith(REDACTED):
                        continue
                    if not shape.filtered or plausible(value, line):
                        yield Span(
                            offset + match.start(group), offset + match.end(group), shape.what
                        )
            else:
                rest = _TOKEN_REST.match(text, match.end())
                end = rest.end() if rest else match.end()
                yield Span(offset + match.start(), offset + end, shape.what)


def _line_of(text: str, match: re.Match[str]) -> str:
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start : len(text) if end == -1 else end]


def _block(text: str, marker: re.Match[str]) -> tuple[int, int]:
    """A private key from its ``-----BEGIN`` line to its ``-----END`` line (or the end of
    the text, when it was cut)."""
    start = text.rfind("\n", 0, marker.start()) + 1
    end = _KEY_END.search(text, marker.end())
    return start, len(text) if end is None else end.end()


def plausible(value: str, line: str) -> bool:
    """Whether a value after a secret-named key may be a secret: not a template
    (``{token}``, ``${TOKEN}``), a variable (``$TOKEN``), a call (``secret =
    get_secret()``), a sequence, a UUID, punctuation only, or a label we already put there —
    detect-secrets' own filters."""
    return not (
        value.startswith(REDACTED)
        or heuristic.is_templated_secret(value)
        or heuristic.is_prefixed_with_dollar_sign(value)
        or heuristic.is_indirect_reference(line)
        or heuristic.is_sequential_string(value)
        or heuristic.is_potential_uuid(value)
        or heuristic.is_not_alphanumeric_string(value)
    )


REDACTED_KEY: Final = "<redacted>"
"""How a key shaped like a credential is shown where a location names it."""


@functools.cache
def _shared() -> Shapes:
    return Shapes()


def credential_shaped(text: str) -> bool:
    """Whether ``text`` holds something shaped like a credential (a token's format, a
    ``Bearer …`` header, a password in a URL), as the log redactor finds them."""
    return bool(_shared().spans(text))


def shown_key(key: str) -> str:
    """``key`` as a location or message may show it: :data:`REDACTED_KEY` if it looks like
    a credential (a secret pasted where a name goes)."""
    return REDACTED_KEY if credential_shaped(key) else key
