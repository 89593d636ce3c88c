"""What the JSON-lines parsers share: reading one line as an event object (or saying why
not), the one argument of a tool call that matters, and the kind of an error from the
CLI's own words."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from fleet.transcript.events import AgentEvent, ErrorKind, Malformed, Text, Unknown

# The argument that says what a tool call is about, in the order they are looked for.
_TARGET_KEYS = (
    "command",
    "cmd",
    "file_path",
    "filePath",
    "path",
    "notebook_path",
    "url",
    "pattern",
    "query",
    "description",
    "prompt",
)
_AUTH = re.compile(
    r"not logged in|/login|\b401\b|\b403\b|unauthori[sz]ed|authentication|invalid[ _-]?api[ _-]?key"
    r"|invalid x-api-key|api[ _-]key|oauth token|credential|permission_error"
    r"|missing environment variable",
    re.I,
)
_RATE = re.compile(
    r"\b429\b|rate[ _-]?limit|quota|usage limit|too many requests|overloaded|\b529\b", re.I
)
_NETWORK = re.compile(
    r"econnrefused|econnreset|enotfound|etimedout|fetch failed|connection (error|refused|reset)"
    r"|network|socket hang up|unable to connect|timed out|stream disconnected",
    re.I,
)


class JsonStream(ABC):
    """A parser of a CLI's JSON-lines stream: each line read as an object and handed to
    :meth:`event`; a line that is no object is kept as text or as malformed, and one the
    subclass cannot make sense of as :class:`Unknown`. Never raises."""

    def feed(self, line: str) -> list[AgentEvent]:
        read = read_line(line)
        if read is None:
            return []
        if isinstance(read, Text):
            return self.text(read)
        if not isinstance(read, Mapping):
            return [read]
        try:
            return self.event(read, line)
        except (AttributeError, TypeError, ValueError, KeyError):
            return [Unknown(str(read.get("type", "?")), line.rstrip())]

    def text(self, text: Text) -> list[AgentEvent]:
        """What a line that is not JSON says (the CLI's stderr): plain text."""
        return [text]

    @abstractmethod
    def event(self, event: Mapping[str, Any], line: str) -> list[AgentEvent]:
        """The events one JSON object carries."""


def read_line(line: str) -> Mapping[str, Any] | AgentEvent | None:
    """``line`` as a JSON object; a :class:`Malformed` one when it looked like one but was
    not; :class:`Text` for any other non-blank line; ``None`` for a blank one."""
    stripped = line.strip()
    if not stripped:
        return None
    if not stripped.startswith("{"):
        return Text(line.rstrip())
    try:
        value = json.loads(stripped)
    except ValueError:
        return Malformed(line.rstrip())
    if not isinstance(value, dict):
        return Malformed(line.rstrip())
    return value


def target(arguments: object) -> str:
    """The one argument of a tool call that says what it is about, as one line."""
    if isinstance(arguments, str):
        raw = arguments
        try:
            arguments = json.loads(raw)
        except ValueError:
            return one_line(raw)
    if not isinstance(arguments, Mapping):
        return ""
    for key in _TARGET_KEYS:
        value = arguments.get(key)
        if isinstance(value, str) and value.strip():
            return one_line(value)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return one_line(" ".join(value))
    return ""


def error_kind(text: str) -> ErrorKind:
    """What kind of trouble a CLI's own message tells of."""
    if _AUTH.search(text):
        return ErrorKind.AUTH
    if _RATE.search(text):
        return ErrorKind.RATE_LIMIT
    if _NETWORK.search(text):
        return ErrorKind.NETWORK
    return ErrorKind.OTHER


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line (runs of whitespace made one space), cut to ``limit``."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def text_of(content: object) -> str:
    """The text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") in ("text", "output_text")
        ]
        return "\n".join(p for p in parts if p)
    return ""


def number(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def money(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
