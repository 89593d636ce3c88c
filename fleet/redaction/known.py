"""Secrets Fleetwarden knows by value, and where they are in a text.

A :class:`SecretSource` is whatever holds secrets and can list them now: the heartbeat
endpoint's tokens, the metering proxy's keys, the accounts' credentials, the environment
variables the config names, a chat login. The redactor asks its sources at each redaction,
so a token issued a moment ago is known. :class:`KnownValues` finds those values in a text:

* as written, and as JSON, a URL or markdown would escape them (``\\"``, ``%40``, ``\\_``);
* cut where a line or a message was truncated: a piece of at least :data:`FRAGMENT_MIN`
  characters that begins or ends a line, or follows or precedes an ellipsis or a line
  break shown as ``⏎`` (:mod:`fleet.redaction.guard`), and is the end or the beginning of
  a secret.

Values shorter than :data:`MIN_LENGTH` are ignored: they would match ordinary words. This
module is a leaf (it imports nothing of Fleetwarden's), so a connector may be a source.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol, runtime_checkable
from urllib.parse import quote, quote_plus

MIN_LENGTH: Final = 6
FRAGMENT_MIN: Final = 8
# A backslash escaping ASCII punctuation, as markdown and JSON write it (``\_``, ``\"``).
ESCAPE: Final = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
# What may stand between a line's edge and a cut secret: indentation, quotes, an ellipsis,
# a markdown quote's marker.
_EDGE: Final = " \t\r\"'`….,;>|\u00a0"
# Where a text was cut or made one line; the blanks beside are the mark's.
_MARK: Final = re.compile(r"[ \t]*(?:…|\.\.\.|⏎)[ \t]*")


@dataclass(frozen=True, slots=True)
class Secret:
    """One secret value, and what it is in words (``heartbeat token``): the label it is
    replaced by. The label never says anything of the value."""

    value: str
    what: str


class Span(NamedTuple):
    """Where a secret is in a text: ``text[start:end]``, and what it is."""

    start: int
    end: int
    what: str


@runtime_checkable
class SecretSource(Protocol):
    """Anything holding secrets that must never be shown."""

    def known_secrets(self) -> Iterable[Secret]:
        """The secrets held now (cheap: asked at every redaction)."""
        ...


class EnvSecrets:
    """The values of the environment variables the config names as secrets, each labelled
    with its variable's name (the environment is read once: it does not change)."""

    def __init__(self, names: Iterable[str], environ: Mapping[str, str]) -> None:
        self._secrets = tuple(
            Secret(environ[name], name) for name in sorted(names) if environ.get(name)
        )

    def known_secrets(self) -> Iterable[Secret]:
        return self._secrets


class KnownValues:
    """A matcher for a fixed set of secrets, built once per set and reused."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        needles: dict[str, str] = {}
        grams: dict[str, list[tuple[str, int, str]]] = {}
        for secret in secrets:
            for value in _values(secret.value):
                for form in _forms(value):
                    needles.setdefault(form, secret.what)
                for at in range(len(value) - FRAGMENT_MIN + 1):
                    grams.setdefault(value[at : at + FRAGMENT_MIN], []).append(
                        (value, at, secret.what)
                    )
        self._needles = needles
        self._grams = grams

    def __bool__(self) -> bool:
        return bool(self._needles)

    def spans(self, text: str) -> list[Span]:
        """Every place a known secret is in ``text``, whole, escaped or cut at a line's edge."""
        if not self._needles:
            return []
        found = list(self._exact(text))
        if ESCAPE.search(text) is not None:
            found += self._unescaped(text)
        found += self._cut(text)
        return found

    def _exact(self, text: str) -> Iterator[Span]:
        for needle, what in self._needles.items():
            at = text.find(needle)
            while at != -1:
                yield Span(at, at + len(needle), what)
                at = text.find(needle, at + 1)

    def _unescaped(self, text: str) -> list[Span]:
        """The secrets in ``text`` once markdown's and JSON's backslashes before punctuation
        are taken out (whole or cut), mapped back to where they are in ``text``."""
        view = Unescaped(text)
        return view.back([*self._exact(view.text), *self._cut(view.text)])

    def _cut(self, text: str) -> list[Span]:
        """Pieces of secrets at an edge: the start or end of a line, or beside an ellipsis
        (where a line or a message was truncated) or a line break shown as ``⏎``."""
        if not self._grams:
            return []
        starts: list[int] = []
        ends: list[int] = []
        at = 0
        for line in text.split("\n"):
            starts.append(at + len(line) - len(line.lstrip(_EDGE)))
            ends.append(at + len(line.rstrip(_EDGE)))
            at += len(line) + 1
        for mark in _MARK.finditer(text):
            starts.append(mark.end())
            ends.append(mark.start())
        return self._cut_at(text, starts, ends)

    def _cut_at(self, text: str, starts: list[int], ends: list[int]) -> list[Span]:
        found: list[Span] = []
        size = FRAGMENT_MIN
        for at in starts:
            for value, offset, what in self._grams.get(text[at : at + size], ()):
                piece = value[offset:]
                if offset and text.startswith(piece, at):
                    found.append(Span(at, at + len(piece), what))
        for end in ends:
            if end < size:
                continue
            for value, offset, what in self._grams.get(text[end - size : end], ()):
                piece = value[: offset + size]
                if len(piece) < len(value) and text.endswith(piece, 0, end):
                    found.append(Span(end - len(piece), end, what))
        return found


class KnownSet:
    """:class:`KnownValues` for a set of secrets that changes a few at a time (a token per
    agent spawned): kept as segments of about doubling size, so a secret added rebuilds
    the small segments only — on average a few secrets' worth, not the whole fleet's — and
    one removed rebuilds only the segment that held it. Immutable, like the segments."""

    def __init__(self, segments: tuple[tuple[frozenset[Secret], KnownValues], ...] = ()) -> None:
        self._segments = segments
        self.secrets: frozenset[Secret] = frozenset().union(*(held for held, _ in segments))

    def __bool__(self) -> bool:
        return any(known for _, known in self._segments)

    def updated(self, secrets: frozenset[Secret]) -> KnownSet:
        """The matcher for ``secrets``, reusing every segment whose secrets all remain."""
        if secrets == self.secrets:
            return self
        kept = [(held, known) for held, known in self._segments if held <= secrets]
        new = secrets.difference(*(held for held, _ in kept))
        segments: list[tuple[frozenset[Secret], KnownValues | None]] = list(kept)
        if new:
            segments.append((new, None))
        # Merge the newest segment down while it is as large as the one before it.
        while len(segments) > 1 and len(segments[-1][0]) >= len(segments[-2][0]):
            last, before = segments.pop(), segments.pop()
            segments.append((before[0] | last[0], None))
        return KnownSet(tuple((held, known or KnownValues(held)) for held, known in segments))

    def spans(self, text: str) -> list[Span]:
        """Every place a known secret is in ``text`` (see :meth:`KnownValues.spans`)."""
        found: list[Span] = []
        for _, known in self._segments:
            found += known.spans(text)
        return found


def _values(value: str) -> list[str]:
    """The value to look for, trimmed, and each line of a value of several (a PEM key in a
    variable may be shown a line at a time)."""
    trimmed = value.strip()
    lines = [line.strip() for line in trimmed.splitlines()] if "\n" in trimmed else []
    return [v for v in dict.fromkeys([trimmed, *lines]) if len(v) >= MIN_LENGTH]


def _forms(value: str) -> set[str]:
    """``value`` as written, and as a JSON string, a URL component or a form would carry it."""
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
    }
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Unescaped:
    """``text`` as markdown or JSON would show it: each backslash before ASCII punctuation
    taken out (``ghp\\_x`` reads ``ghp_x``), and the way back to where a span of it is in
    ``text``."""

    def __init__(self, text: str) -> None:
        dropped = [match.start() for match in ESCAPE.finditer(text)]
        self.text = ESCAPE.sub("", text)
        # A character at ``i`` in the view was at ``i + k`` in the text, ``k`` being the
        # number of backslashes dropped before it (the ``n``-th dropped one sat at view
        # index ``dropped[n] - n``).
        self._marks = [where - n for n, where in enumerate(dropped)]

    def back(self, spans: Iterable[Span]) -> list[Span]:
        """``spans`` of the view, as spans of the text."""

        def at(index: int) -> int:
            return index + bisect.bisect_right(self._marks, index)

        return [Span(at(s.start), at(s.end - 1) + 1, s.what) for s in spans if s.end > s.start]


def escaped(text: str) -> bool:
    """Whether ``text`` holds a backslash escape that :class:`Unescaped` would take out."""
    return ESCAPE.search(text) is not None
