"""What an agent's ``Accept`` says it takes (RFC 9110 §12.5.1), read exactly: its media
ranges, each with its weight (``q``, 1 when not given). The most specific range that matches
a type decides (``type/subtype`` before ``type/*`` before ``*/*``), and a weight of 0 refuses
it. A range's other parameters are not matched against; one named twice counts at its
lowest weight (in doubt, not taken). A range that is not well formed (a weight over 1, a
stray character) is passed over, the others still read."""

from __future__ import annotations

import re
from typing import Final

_TOKEN: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_RANGE: Final = re.compile(rf"[ \t]*({_TOKEN})/({_TOKEN})[ \t]*")
_PARAMETER: Final = re.compile(
    rf'[ \t]*;[ \t]*({_TOKEN})=({_TOKEN}|"(?:[^"\\]|\\.)*")[ \t]*', re.DOTALL
)
_WEIGHT: Final = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_NEXT: Final = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*"?)*,?', re.DOTALL)


def ranges(accept: str) -> dict[str, float]:
    """Each media range ``accept`` names (``type/subtype``, in lower case) with its weight."""
    named: dict[str, float] = {}
    at = 0
    while at < len(accept):
        found = _range(accept, at)
        if found is None:  # not well formed: on to the next range
            skipped = _NEXT.match(accept, at)  # up to its comma, one in quotes not counted
            at = len(accept) if skipped is None else max(skipped.end(), at + 1)
            continue
        media, weight, at = found
        named[media] = min(weight, named.get(media, weight))
    return named


def _range(accept: str, at: int) -> tuple[str, float, int] | None:
    """The range at ``at``, its weight and where the next begins; ``None`` if not well
    formed (an empty element of the list too)."""
    matched = _RANGE.match(accept, at)
    if matched is None:
        return None
    media, at, weight = f"{matched[1]}/{matched[2]}".lower(), matched.end(), 1.0
    while (parameter := _PARAMETER.match(accept, at)) is not None:
        at = parameter.end()
        if parameter[1].lower() != "q":
            continue
        if not _WEIGHT.fullmatch(parameter[2]):
            return None
        weight = float(parameter[2])
    if at < len(accept) and accept[at] != ",":
        return None
    return media, weight, at + 1


def takes(accept: str, media: str, *, wildcards: bool = True) -> bool:
    """Whether ``accept`` takes ``media`` (``type/subtype``, in lower case): the weight of
    the most specific range matching it over 0; ``wildcards`` false: only a range naming it
    counts."""
    named = ranges(accept)
    kind = media.partition("/")[0]
    for key in (media, f"{kind}/*", "*/*") if wildcards else (media,):
        if key in named:
            return named[key] > 0
    return False
