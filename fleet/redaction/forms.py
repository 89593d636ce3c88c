"""The forms a held value is looked for in, besides those :mod:`fleet.redaction.decoded`
reads back (escapes of any character, percent-encoding of any octet):

* a form's ``+`` for each space (``application/x-www-form-urlencoded``);
* hex of its UTF-8 octets, lower or upper case;
* base64 of them, standard or URL-safe, padded or not, at each of the three places the
  value may start in a longer encoded text (a ``Basic`` header's ``user:value``): for
  each, the run of characters only the value's own bits decide.

And where a value too short to hunt in free text (under
:data:`~fleet.redaction.values.MIN_LENGTH` characters) is still known (:class:`Places`):
the value of an ``Authorization`` header (after its scheme), of a key or header whose name
says it holds a secret (``token=``, ``X-Api-Key:``, ``"password": "…"``), or of the name
the config gives it (the variable it is read from, the header or environment variable a
server is given it in). Between the name and the value may stand any run of up to
:data:`SEPARATION` separator characters — quotes, brackets, ``:``, ``=``, ``=>``, commas,
blanks — so each layout a header is printed in is read: ``X-Api-Key: k3y9``,
``{"X-Api-Key": ["k3y9"]}``, ``[('X-Api-Key', 'k3y9')]``, ``X-Api-Key => k3y9``,
``X-Api-Key k3y9``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Final

_SECRET_WORDS: Final = (
    "authorization",
    "token",
    "password",
    "passwd",
    "secret",
    "key",
    "apikey",
    "auth",
    "credential",
    "credentials",
)
SEPARATION: Final = 12
"""The most separator characters read between a name and its value: a bound, so the
search stays linear in the text."""
_SEPARATORS: Final = r"[\"'`\[\](){}<>:=, \t]" + f"{{1,{SEPARATION}}}"
_SCHEMES: Final = r"(?:bearer|basic|token|bot|digest)[ \t]+"
_AFTER: Final = r"(?=$|[\s\"',;&)\]}>])"
"""What may follow a short value: its end, a blank, a quote or a delimiter — never more
of a longer word."""


def forms(value: str) -> list[str]:
    """``value`` as written, then every other form it is looked for in as it is."""
    found = [value]
    if " " in value:
        found.append(value.replace(" ", "+"))
    found += encoded(value)
    return list(dict.fromkeys(found))


def encoded(value: str) -> list[str]:
    """``value`` in hex (either case), and in base64 (standard and URL-safe) at each of
    its three alignments: the run of base64 characters that only the value's own octets
    decide, so it is found whatever stands before and after it in the encoded text."""
    raw = value.encode()
    found = [raw.hex(), raw.hex().upper()]
    for shift in range(3):
        first = -(-8 * shift // 6)  # the first character made of the value's bits only
        last = 8 * (shift + len(raw)) // 6  # past the last one
        padded = b"\0" * shift + raw
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.append(encode(padded).decode()[first:last])
    return [form for form in dict.fromkeys(found) if len(form) >= len(value) // 2]


class Places:
    """Short values found where they are known to stand: after a name that says a secret
    follows (an ``Authorization`` header and its scheme, ``token=``, ``"password":``…) or
    one of the names the config gives the value, across a bounded run of separators. One
    regular expression for them all, without nested repetition: linear in the text."""

    def __init__(self, values: Mapping[str, tuple[str, Iterable[str]]]) -> None:
        """``values``: each short value, its label and the names it is known by."""
        self._labels = {value: what for value, (what, _) in values.items()}
        names = {name.lower() for _, given in values.values() for name in given if name}
        words = sorted({*_SECRET_WORDS, *names}, key=len, reverse=True)
        shown = sorted(values, key=len, reverse=True)
        self._pattern = (
            re.compile(
                r"(?i:(?<![A-Za-z0-9])(?:"
                + "|".join(re.escape(word) for word in words)
                + ")"
                + _SEPARATORS
                + "(?:"
                + _SCHEMES
                + r")?)("
                + "|".join(re.escape(value) for value in shown)
                + ")"
                + _AFTER
            )
            if values
            else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Where a short value stands in a known place of ``text``, and its label."""
        if self._pattern is None:
            return []
        return [
            (found.start(1), found.end(1), self._labels[found.group(1)])
            for found in self._pattern.finditer(text)
        ]
