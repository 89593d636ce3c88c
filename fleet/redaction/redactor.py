"""The one redactor: what goes to a chat service or the log file leaves here without a secret.

It first removes the characters a reader cannot see (:mod:`fleet.redaction.invisible`:
zero-width and bidi-control characters, tag characters, terminal escapes), so a secret with
a zero-width space inside is the secret again, then takes out, in one pass over the text:

* the exact value of every secret its sources hold at that moment
  (:mod:`fleet.redaction.values`: in every form, or cut at a line's edge), and
* every credential-shaped value (:mod:`fleet.redaction.shapes`: Yelp's detect-secrets,
  gitleaks' rules and our own plugins), also where markdown escaped it (``ghp\\_…``, as
  agent text is shown in chat).

Each is replaced by a label saying what it was, ``[redacted: heartbeat token]``, never its
value or its length; overlapping finds become one label. Sources are asked at each
:meth:`Redactor.snapshot`, and the matcher for their values is rebuilt only when those
change. A :class:`Redaction` (a snapshot) is immutable, so a large text can be redacted in a
worker thread while the sources keep changing on the event loop.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence

from fleet.redaction.invisible import visible
from fleet.redaction.known import SecretSource, Span
from fleet.redaction.shapes import REDACTED, Shapes
from fleet.redaction.values import ESCAPE, KnownSet, Unescaped, escaped


def label(what: str) -> str:
    """What a secret is replaced by."""
    return f"{REDACTED}: {what}]" if what else f"{REDACTED}]"


class Redaction:
    """Redacts with the secrets known when it was made."""

    def __init__(self, known: KnownSet, shapes: Shapes) -> None:
        self._known = known
        self._shapes = shapes

    def apply(self, text: str) -> str:
        """``text`` without invisible characters, and with every secret replaced by its
        label."""
        if not text:
            return text
        text = visible(text)
        spans = self._known.spans(text) + self._shapes.spans(text)
        if escaped(text):
            spans += self._escaped_shapes(text)
        return _replaced(text, spans)

    def held(self, text: str) -> str:
        """``text`` with only the secrets known by value replaced, nothing else changed (no
        shapes, no character taken out): a JSON text stays JSON where one sat in a string."""
        return _replaced(text, self._known.spans(text)) if text else text

    def _escaped_shapes(self, text: str) -> list[Span]:
        """Credential shapes on the lines of ``text`` that hold a backslash escape, read
        as markdown shows them (the rest was searched as it is)."""
        starts: list[int] = []  # where each line taken is in ``text``
        for hit in ESCAPE.finditer(text):
            start = text.rfind("\n", 0, hit.start()) + 1
            if not starts or starts[-1] != start:
                starts.append(start)
        lines = [text[start : _line_end(text, start)] for start in starts]
        # Each line's offset in the batch of lines, to map a find back to ``text``.
        offsets = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
        batch = Unescaped("\n".join(lines))
        found: list[Span] = []
        for span in batch.back(self._shapes.spans(batch.text)):
            n = bisect.bisect_right(offsets, span.start) - 1
            shift = starts[n] - offsets[n]
            found.append(Span(span.start + shift, span.end + shift, span.what))
        return found


def _replaced(text: str, spans: Sequence[Span]) -> str:
    if not spans:
        return text
    out: list[str] = []
    at = 0
    for start, end, what in merged(spans):
        out += (text[at:start], label(what))
        at = end
    out.append(text[at:])
    return "".join(out)


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end == -1 else end


class Redactor:
    """The redactor of one running Fleetwarden: its sources, and detect-secrets' plugins
    (loaded once)."""

    def __init__(
        self, sources: Iterable[SecretSource] = (), *, shapes: Shapes | None = None
    ) -> None:
        self._sources: list[SecretSource] = list(sources)
        self._shapes = shapes if shapes is not None else Shapes()
        self._known = KnownSet()

    def add_source(self, source: SecretSource) -> None:
        """Redact what ``source`` holds from now on (a server once it has started)."""
        if source not in self._sources:
            self._sources.append(source)

    def snapshot(self) -> Redaction:
        """A redaction with the secrets the sources hold now."""
        secrets = frozenset(secret for source in self._sources for secret in source.known_secrets())
        known = self._known.updated(secrets)
        self._known = known  # one assignment: a logging thread sees the old or the new
        return Redaction(known, self._shapes)

    def redact(self, text: str) -> str:
        """``text`` with every secret known now, and every credential-shaped value, replaced."""
        return self.snapshot().apply(text)

    def held(self, text: str) -> str:
        """``text`` with every secret known now replaced, nothing else changed
        (:meth:`Redaction.held`)."""
        return self.snapshot().held(text)


def merged(spans: Sequence[Span]) -> list[Span]:
    """``spans`` in order, those that overlap or touch made one; the one label kept when
    they agree, else the longest find's."""
    ordered = sorted(spans, key=lambda s: (s.start, -s.end))
    out: list[Span] = []
    longest: list[int] = []
    for span in ordered:
        if out and span.start <= out[-1].end:
            last = out[-1]
            what = last.what
            if span.end - span.start > longest[-1]:
                what, longest[-1] = span.what, span.end - span.start
            out[-1] = Span(last.start, max(last.end, span.end), what)
        else:
            out.append(span)
            longest.append(span.end - span.start)
    return out
