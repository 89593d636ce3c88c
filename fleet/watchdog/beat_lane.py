"""The heartbeat endpoint's lane past aiohttp (:mod:`fleet.connections.tracked`): a
``POST /heartbeat/<agent>`` that comes whole in one chunk, plainly written, with the
agent's token and a good body, is recorded and answered 204 here — once ``on_beat`` has
returned, as on aiohttp's path. Anything else, or anything this reader is not sure of
(another path, a request in pieces, a header it does not expect, a wrong token, a bad
body, a token awaiting confirmation), is left to aiohttp, whose answer and log line are
then the same as without the lane.

A thousand agents beating every few seconds is a few hundred requests a second; through
aiohttp each cost its parser, a request and a response object, the middlewares and the
router (~0.25 ms of the orchestrator's CPU), here a split and a dictionary look-up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Final

from fleet.connections.loopback import AgentSecrets, Starting
from fleet.connections.tracked import Taken
from fleet.names import is_agent_name

log = logging.getLogger(__name__)

PREFIX: Final = b"POST /heartbeat/"
VERSION: Final = b" HTTP/1.1"
NO_CONTENT: Final = b"HTTP/1.1 204 No Content\r\n\r\n"
FAILED: Final = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
# One header line as RFC 9110 writes it, visible ASCII only: a name, a colon, a value.
_FIELD: Final = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e]*?)[ \t]*")
# Headers that change how the request is read or the connection kept: aiohttp's to handle.
_NOT_HERE: Final = frozenset({b"transfer-encoding", b"connection", b"expect", b"upgrade"})
_TOKEN: Final = b"x-fleetwarden-token"

Beat = tuple[str, str, bytes]  # (the agent named in the path, the token given, the body)


def read_beat(data: bytes, *, max_body: int, max_line: int, max_headers: int) -> Beat | None:
    """``data`` as one whole heartbeat request, plainly written; ``None`` for anything
    else (aiohttp's to read)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(PREFIX):
        return None
    lines = head.split(b"\r\n")
    first = lines[0]
    if not first.endswith(VERSION) or len(lines) - 1 > max_headers or len(first) > max_line:
        return None
    name = first[len(PREFIX) : -len(VERSION)]
    if not name.isascii():
        return None
    token: bytes | None = None
    length: int | None = None
    for line in lines[1:]:
        field = _FIELD.fullmatch(line)
        if field is None or len(line) > max_line:
            return None
        key, value = field.group(1).lower(), field.group(2)
        if key in _NOT_HERE:
            return None
        if key == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 5:
                return None
            length = int(value)
        elif key == _TOKEN:
            if token is not None:
                return None
            token = value
    if token is None or len(body) != (length or 0) or len(body) > max_body:
        return None
    return name.decode("ascii"), token.decode("ascii"), body


class BeatLane:
    """Takes the beats it can read (:func:`read_beat`) whose token is right and whose
    body says a state; ``record`` records one — raising when it could not."""

    def __init__(
        self,
        secrets: AgentSecrets,
        parse: Callable[[bytes], str | None],
        record: Callable[[str, str], Awaitable[None]],
        *,
        max_body: int,
        max_line: int,
        max_headers: int,
    ) -> None:
        self._secrets = secrets
        self._parse = parse
        self._record = record
        self._max = {"max_body": max_body, "max_line": max_line, "max_headers": max_headers}

    def take(self, data: bytes) -> Taken | None:
        beat = read_beat(data, **self._max)
        if beat is None or not is_agent_name(beat[0]):
            return None
        raw_name, token, body = beat
        try:
            agent = self._secrets.matches(raw_name, token)
        except Starting:
            return None  # aiohttp answers 503 and says why
        kind = None if agent is None else self._parse(body)
        if agent is None or kind is None:
            return None  # aiohttp refuses it, with the log line
        record = self._record

        async def answer() -> bytes:
            try:
                await record(agent, kind)
            except Exception:
                log.exception("the heartbeat of %s could not be recorded", agent)
                return FAILED
            return NO_CONTENT

        return Taken(agent, answer)
