"""The calls an agent makes through the peer door, as JSON: their shapes, parsed and checked
(:func:`parse_call`), before the postbox weighs them against the rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fleet.hostile_json import JsonRefused, read_object

MAX_WAIT: Final = 600
"""The longest a ``send`` may wait for its receipt, in seconds."""
VERIFY_WAIT: Final = 120
"""How long ``send --verify`` waits when it says no ``wait``."""


class BadCall(ValueError):
    """A body that is not a call; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Peers:
    """List the agent's peers."""

    op: str = "peers"


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``text`` to ``to``; ``wait``: seconds to wait for its receipt (0: none)."""

    to: str
    text: str
    verify: bool
    wait: float
    op: str = "send"


@dataclass(frozen=True, slots=True)
class HandOn:
    """Hand ``to`` a task: ``title``, ``body``."""

    to: str
    title: str
    body: str
    op: str = "task"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The agent's verdict on the review asked of it."""

    approve: bool
    text: str
    op: str = "review"


Call = Peers | Send | HandOn | Verdict

_FIELDS: Final = {
    "peers": set(),
    "send": {"to", "text", "verify", "wait"},
    "task": {"to", "title", "body"},
    "review": {"verdict", "text"},
}


def parse_call(body: bytes) -> Call:
    """The call a request body carries; :class:`BadCall` saying what is wrong."""
    try:
        data = read_object(body)
    except JsonRefused as exc:
        raise BadCall(f"{exc}") from None
    op = data.pop("op", None)
    if not isinstance(op, str) or op not in _FIELDS:
        raise BadCall('"op" must be one of peers, send, task, review')
    unknown = set(data) - _FIELDS[op]
    if unknown:
        raise BadCall(f"unknown fields for {op}: {', '.join(sorted(unknown))}")
    if op == "peers":
        return Peers()
    if op == "send":
        verify = data.get("verify", False)
        if not isinstance(verify, bool):
            raise BadCall('"verify" must be true or false')
        return Send(_to(data), _text(data, "text"), verify, _wait(data.get("wait"), verify))
    if op == "task":
        body_text = data.get("body", "")
        if not isinstance(body_text, str):
            raise BadCall('"body" must be a string')
        return HandOn(_to(data), _text(data, "title"), body_text)
    verdict = data.get("verdict")
    if verdict not in ("approve", "changes"):
        raise BadCall('"verdict" must be "approve" or "changes"')
    return Verdict(verdict == "approve", _text(data, "text"))


def _to(data: dict[str, object]) -> str:
    value = data.get("to")
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise BadCall('"to" must be the name of one of your peers: `fw-msg peers` lists them')
    return value.strip()


def _text(data: dict[str, object], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadCall(f'"{field}" must be a string with some text in it')
    return value


def _wait(value: object, verify: bool) -> float:
    if value is None:
        return float(VERIFY_WAIT) if verify else 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_WAIT:
        raise BadCall(f'"wait" must be a number of seconds from 0 to {MAX_WAIT}')
    return float(value)
