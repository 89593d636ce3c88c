"""What the door sends an agent, scrubbed of every secret Fleetwarden holds: the server's own
credentials in every form the door knows a server echoes them in
(:class:`~fleet.mcp.upstream.credentials.Scrub`), then every value the app's redactor holds
(provider keys, git and forge tokens, every MCP server's credentials, every agent's
tokens). A server reaches what an agent cannot (a filesystem server reads a file another
process left, a server echoes its environment): none of it reaches the agent through the
door.

Only known values are taken out of what is relayed, not the redactor's credential shapes:
a shape is a guess, and a guess taken out of a file an agent reads through a server (a test
fixture, a lock file's hash) would hide what it works on, or cut a JSON value short and have
the message refused whole. The audit and the log, which a person reads, take the whole
redactor (shapes too)."""

from __future__ import annotations

from collections.abc import Callable

from fleet.mcp.upstream.credentials import Scrub, scrubbed_json


class Outgoing:
    """The scrub of one session's messages to its agent: ``own``, the server's credentials;
    ``held``, the app's known secrets (``None``: only the server's own)."""

    def __init__(self, own: Scrub, held: Callable[[str], str] | None = None) -> None:
        self._own = own
        self._held = held

    def __call__(self, text: str) -> str:
        """``text`` with every held secret replaced by its label."""
        text = self._own(text)
        return text if self._held is None else self._held(text)

    def json(self, raw: bytes) -> bytes | None:
        """``raw`` (a JSON message) scrubbed; ``None`` when what is left is no longer JSON
        (a value stood across its structure: the message is not relayed)."""
        return scrubbed_json(self, raw)
