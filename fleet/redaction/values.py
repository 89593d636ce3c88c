"""Where the secrets Fleetwarden knows by value (:mod:`fleet.redaction.known`) are in a
text. :class:`KnownValues` finds them:

* as written, and in every form a JSON text, a URL, a form or markdown would carry them:
  the text is also read as its escapes spell it (:mod:`fleet.redaction.decoded`: JSON's
  ``\\u0074`` and ``\\"``, markdown's ``\\_``, percent-encoded octets in either case, any
  character escaped or not), and the value is looked for there too;
* in a form's encoding, a ``+`` for each space and any octet percent-encoded, read as one
  decoding (``my%20secret+value``: the text read as a form, when it holds a ``+`` and a
  held value a space);
* in hex or base64 (:func:`fleet.redaction.forms.encoded`);
* cut where a line or a message was truncated: a piece of at least :data:`FRAGMENT_MIN`
  characters that begins or ends a line, or follows or precedes an ellipsis or a line
  break shown as ``⏎`` (:mod:`fleet.redaction.guard`), and is the end or the beginning of
  a secret.

A value shorter than :data:`MIN_LENGTH` would match ordinary words: it is found only where
it is known to stand (:class:`fleet.redaction.forms.Places`: an ``Authorization`` header's
value, ``token=…``, the name the config gives it), as written or escaped.

A fleet's secrets are thousands (a token per agent and server), and a ``ps`` reply lists
every agent: so a text is looked into once (:class:`Probe`) however many matchers read it,
and a value of :data:`LONG` characters or more is not searched for one by one but found by
its pieces — the text's :data:`FRAGMENT_MIN`-character piece at every :data:`STRIDE`-th
place, looked up among the values' pieces (any occurrence of such a value holds one of
those places) — so the time grows with the text, not with the text times the secrets. A
form other than as written is found whole only, so only its first :data:`STRIDE` pieces
are kept: an occurrence holds a sampled place within them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from typing import Final

from fleet.redaction.decoded import Decoded, has_escapes
from fleet.redaction.forms import Places, forms
from fleet.redaction.known import Secret, Span

MIN_LENGTH: Final = 6
FRAGMENT_MIN: Final = 8
LONG: Final = 24  # values this long are found by their pieces (see the module)
STRIDE: Final = LONG - FRAGMENT_MIN + 1  # every piece of a text this far apart is looked up
_AT_BITS: Final = 20  # a piece's offset in its value, in the low bits of where it is
_AT_MASK: Final = (1 << _AT_BITS) - 1
# A backslash escaping ASCII punctuation, as markdown and JSON write it (``\_``, ``\"``).
ESCAPE: Final = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
# What may stand between a line's edge and a cut secret: indentation, quotes, an ellipsis,
# a markdown quote's marker.
_EDGE: Final = " \t\r\"'`….,;>|\u00a0"
# Where a text was cut or made one line; the blanks beside are the mark's.
_MARK: Final = re.compile(r"[ \t]*(?:…|\.\.\.|⏎)[ \t]*")


class Probe:
    """One text as the matchers look into it, worked out once for all of them: its pieces
    at every :data:`STRIDE`-th place, and the pieces at its edges (where a cut secret may
    begin or end), each by the places it is at."""

    __slots__ = ("_form", "_view", "encoded", "ends", "sampled", "starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        size = FRAGMENT_MIN
        sampled: dict[str, list[int]] = {}
        for at in range(0, len(text) - size + 1, STRIDE):
            sampled.setdefault(text[at : at + size], []).append(at)
        self.sampled = sampled
        starts: dict[str, list[int]] = {}
        ends: dict[str, list[int]] = {}
        at = 0
        edges: list[tuple[int, int]] = []
        for line in text.split("\n"):
            edges.append((at + len(line) - len(line.lstrip(_EDGE)), at + len(line.rstrip(_EDGE))))
            at += len(line) + 1
        edges += [(mark.end(), mark.start()) for mark in _MARK.finditer(text)]
        for start, end in edges:
            starts.setdefault(text[start : start + size], []).append(start)
            if end >= size:
                ends.setdefault(text[end - size : end], []).append(end)
        self.starts = starts
        self.ends = ends
        self.encoded = has_escapes(text)
        self._view: tuple[Decoded, Probe] | None = None
        self._form: tuple[Decoded, Probe] | None = None

    def decoded(self) -> tuple[Decoded, Probe]:
        """The text as its escapes spell it, and its probe."""
        if self._view is None:
            view = Decoded(self.text)
            self._view = (view, Probe(view.text))
        return self._view

    def form(self) -> tuple[Decoded, Probe]:
        """The text as a form's encoding spells it (``+`` a space too), and its probe."""
        if self._form is None:
            view = Decoded(self.text, form=True)
            self._form = (view, Probe(view.text))
        return self._form


class KnownValues:
    """A matcher for a fixed set of secrets, built once per set and reused."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        needles: dict[str, str] = {}
        # Each piece of each value, by where it is: ``entry << _AT_BITS | offset`` into
        # ``entries`` (value, label) — one int, or a list when pieces repeat, rather than a
        # tuple in a list each: a fleet holds a matcher of thousands of secrets.
        entries: list[tuple[str, str]] = []
        grams: dict[str, int | list[int]] = {}
        short: dict[str, tuple[str, list[str]]] = {}
        for secret in secrets:
            trimmed = secret.value.strip()
            if 0 < len(trimmed) < MIN_LENGTH and "\n" not in trimmed:
                held = short.setdefault(trimmed, (secret.what, []))
                held[1].extend(secret.places)
            for value in _values(secret.value):
                for n, form in enumerate(forms(value)):
                    if form in needles or len(form) < MIN_LENGTH:
                        continue
                    needles[form] = secret.what
                    if len(form) > _AT_MASK:
                        continue  # a value past a megabyte is looked for whole only
                    entry = len(entries) << _AT_BITS
                    entries.append((form, secret.what))
                    # As written, every piece (a cut one is found by any); another form
                    # is found whole only, by one of its first STRIDE pieces.
                    pieces = len(form) - FRAGMENT_MIN + 1
                    for at in range(pieces if n == 0 else min(pieces, STRIDE)):
                        gram = form[at : at + FRAGMENT_MIN]
                        known = grams.get(gram)
                        if known is None:
                            grams[gram] = entry | at
                        elif isinstance(known, int):
                            grams[gram] = [known, entry | at]
                        else:
                            known.append(entry | at)
        self._places = Places({value: (what, names) for value, (what, names) in short.items()})
        self._spaced = any(" " in needle for needle in needles)
        self._any = bool(needles) or bool(self._places)
        # Long needles are found by their pieces (``grams``), the rest one by one.
        self._long = {n: what for n, what in needles.items() if LONG <= len(n) <= _AT_MASK}
        self._short = {n: what for n, what in needles.items() if n not in self._long}
        self._entries = entries
        self._grams = grams

    def _pieces(self, gram: str) -> Iterator[tuple[str, int, str]]:
        """Where ``gram`` is in the values: (value, offset, label) each."""
        held = self._grams[gram]
        for code in (held,) if isinstance(held, int) else held:
            value, what = self._entries[code >> _AT_BITS]
            yield value, code & _AT_MASK, what

    def __bool__(self) -> bool:
        return bool(self._any)

    def spans(self, text: str) -> list[Span]:
        """Every place a known secret is in ``text``, whole, escaped or cut at a line's edge."""
        return self.spans_in(Probe(text)) if self._any else []

    def spans_in(self, probe: Probe) -> list[Span]:
        """:meth:`spans` of the text ``probe`` looked into."""
        if not self._any:
            return []
        found = self._exact(probe)
        if probe.encoded:
            view, seen = probe.decoded()
            found += [Span(*s) for s in view.back([*self._exact(seen), *self._cut(seen)])]
        if self._spaced and "+" in probe.text:
            view, seen = probe.form()
            found += [Span(*s) for s in view.back(self._exact(seen))]
        found += self._cut(probe)
        return found

    def _exact(self, probe: Probe) -> list[Span]:
        text = probe.text
        found: set[Span] = {Span(*span) for span in self._places.spans(text)}
        for needle, what in self._short.items():
            at = text.find(needle)
            while at != -1:
                found.add(Span(at, at + len(needle), what))
                at = text.find(needle, at + 1)
        if self._long:
            for gram in probe.sampled.keys() & self._grams.keys():
                for value, offset, _ in self._pieces(gram):
                    label = self._long.get(value)
                    if label is None:
                        continue
                    for at in probe.sampled[gram]:
                        start = at - offset
                        if start >= 0 and text.startswith(value, start):
                            found.add(Span(start, start + len(value), label))
        return list(found)

    def _cut(self, probe: Probe) -> list[Span]:
        """Pieces of secrets at an edge: the start or end of a line, or beside an ellipsis
        (where a line or a message was truncated) or a line break shown as ``⏎``."""
        if not self._grams:
            return []
        text, size = probe.text, FRAGMENT_MIN
        found: list[Span] = []
        for gram in probe.starts.keys() & self._grams.keys():
            for value, offset, what in self._pieces(gram):
                piece = value[offset:]
                if not offset:
                    continue
                for at in probe.starts[gram]:
                    if text.startswith(piece, at):
                        found.append(Span(at, at + len(piece), what))
        for gram in probe.ends.keys() & self._grams.keys():
            for value, offset, what in self._pieces(gram):
                piece = value[: offset + size]
                if len(piece) >= len(value):
                    continue
                for end in probe.ends[gram]:
                    if text.endswith(piece, 0, end):
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
        if not self:
            return found
        probe = Probe(text)  # once, for every segment
        for _, known in self._segments:
            found += known.spans_in(probe)
        return found


def _values(value: str) -> list[str]:
    """The value to look for, trimmed, and each line of a value of several (a PEM key in a
    variable may be shown a line at a time)."""
    trimmed = value.strip()
    lines = [line.strip() for line in trimmed.splitlines()] if "\n" in trimmed else []
    return [v for v in dict.fromkeys([trimmed, *lines]) if len(v) >= MIN_LENGTH]


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
