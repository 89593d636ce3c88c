"""The one reader of JSON from outside (an agent's call or ask, a webhook, a provider's or
a forge's answer), which a sender may have shaped to hurt.

:func:`read_json` returns the value; :func:`read_object` also refuses a value that is not
an object. Either raises :class:`JsonRefused`, whose message names what is wrong (``what``
is how the caller calls the text, "the body" unless told) and never carries the text
itself but for a repeated key, cut and escaped. Refused:

* **size**: more than ``limit`` bytes, when the caller gives one;
* **encoding**: anything but UTF-8 (a leading byte order mark is passed over), so a
  UTF-16 body or an encoded surrogate is not guessed at;
* **syntax**: not JSON, or more than one value;
* **depth**: nested deeper than the parser goes (:class:`RecursionError`), never a crash;
* **duplicate**: an object with a key twice, anywhere: Python keeps the last, another
  reader of the same bytes may take the first. JSON writers never repeat a key;
* **number**: ``NaN``, ``Infinity``, a number too large to be finite, or an integer with
  more digits than Python reads: no JSON writer sends them and arithmetic on them lies.

Read in two steps. msgspec's reader (in C) takes the text first: it refuses all of the above
but a repeated key (it keeps the last), and reads every value it takes as the standard
library does (the same floats, integers of any length, strings). A repeated key is found by
counting colons: each key has one after it and the rest are inside strings, so the text's
colons (with ``\\u003a``, a colon escaped, counted as one) number exactly the keys and the
strings' colons of what was read, written again — and fewer when a key was given twice, its
first value dropped. Only text that this reader refuses or whose colons do not add up is
read again by the standard library's reader with hooks, which finds the refusal and names
it: the same answer, for a fraction of the cost of what is taken.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, Literal

import msgspec

from fleet.errors import FleetwardenError

Refusal = Literal["size", "encoding", "syntax", "depth", "duplicate", "number", "shape"]
_BOM: Final = b"\xef\xbb\xbf"
_KEY_CHARS: Final = 64


class JsonRefused(FleetwardenError, ValueError):
    """JSON not taken: ``kind`` says which refusal, the message says it in words fit for the
    sender, ``key`` is the key given twice (a ``duplicate``, uncut: escape it to show it)."""

    def __init__(self, kind: Refusal, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.kind: Refusal = kind
        self.key = key


class _Found(Exception):
    """Raised inside the parser by its hooks; turned into :class:`JsonRefused`."""

    def __init__(self, kind: Refusal, detail: str) -> None:
        self.kind: Refusal = kind
        self.detail = detail


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """One JSON object, refused if it has a key twice (as fast as the default: the C
    scanner still parses, and ``dict`` builds the object)."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Found("duplicate", key)
            seen.add(key)
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Found("number", text[:20])
    return value


def _constant(text: str) -> float:
    raise _Found("number", text)


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_unique, parse_float=_finite, parse_constant=_constant
)
_FAST: Final = msgspec.json.Decoder()
_AGAIN: Final = msgspec.json.Encoder()
_UNSURE: Final = object()
# Writing a value again to count its colons holds a second copy of it: a text over this
# size (a model request of megabytes) is read by the hooked reader alone, whose peak is
# what it always was.
FAST_AT_MOST: Final = 1 << 20


def read_json(
    data: bytes | bytearray | str, *, what: str = "the body", limit: int | None = None
) -> Any:
    """The JSON value ``data`` holds; :class:`JsonRefused` (see the module) if it is refused."""
    if limit is not None and len(data) > limit:
        raise JsonRefused("size", f"{what} is over {size_words(limit)}")
    value = _taken(data) if len(data) <= FAST_AT_MOST else _UNSURE
    return _exact(data, what) if value is _UNSURE else value


def _taken(data: bytes | bytearray | str) -> Any:
    """What msgspec's reader takes of ``data`` when no key in it is repeated (see the
    module); :data:`_UNSURE` for anything else, to be read by :func:`_exact`."""
    try:
        if isinstance(data, str):
            raw: bytes | bytearray = data.encode("utf-8")  # a lone surrogate: not here
        else:
            raw = data[3:] if data.startswith(_BOM) else data
        value = _FAST.decode(raw)
        colons = raw.count(b":")
        if b"\\" in raw and b"\\u003" in raw:  # rare: a colon (or its neighbour) escaped
            colons += raw.count(b"\\u003a") + raw.count(b"\\u003A")
        if _AGAIN.encode(value).count(b":") != colons:
            return _UNSURE  # a key given twice, or a backslash before "u003a": look closer
    except (msgspec.DecodeError, UnicodeError, RecursionError, ValueError):
        return _UNSURE
    return value


def _exact(data: bytes | bytearray | str, what: str) -> Any:
    """``data`` read by the standard library with the hooks that find each refusal."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = (data[3:] if data.startswith(_BOM) else data).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("encoding", f"{what} is not UTF-8") from None
    try:
        return _DECODER.decode(text)
    except _Found as found:
        raise _refused(found, what) from None
    except json.JSONDecodeError:
        raise JsonRefused("syntax", f"{what} is not JSON") from None
    except ValueError:  # an integer longer than int() reads (sys.get_int_max_str_digits)
        raise JsonRefused("number", f"{what} has an integer too long to read") from None
    except RecursionError:
        raise JsonRefused("depth", f"{what} is nested too deep to read") from None


def read_object(
    data: bytes | bytearray | str, *, what: str = "the body", limit: int | None = None
) -> dict[str, Any]:
    """The JSON object ``data`` holds; :class:`JsonRefused` if it is refused or is another
    value (``shape``)."""
    value = read_json(data, what=what, limit=limit)
    if not isinstance(value, dict):
        raise JsonRefused("shape", f"{what} is not a JSON object")
    return value


def size_words(limit: int) -> str:
    """``limit`` bytes as said to people: ``5 MiB``, ``64 KiB``, ``1000 bytes``."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def _refused(found: _Found, what: str) -> JsonRefused:
    if found.kind == "duplicate":
        shown = repr(found.detail[:_KEY_CHARS])
        return JsonRefused(
            "duplicate", f"{what} has the key {shown} twice; send each key once", found.detail
        )
    return JsonRefused("number", f"{what} has a number JSON cannot carry: {found.detail}")
