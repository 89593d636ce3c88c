"""The strict fake provider with a script of turns for each agent: several agents at once
(a coder, its reviewer, a peer it hands work to) each get their own turns, in order,
whatever order their requests come in.

An agent is known by the line Fleetwarden puts first in every run's prompt of an agent
that works with peers, ``[fleetwarden] You are agent NAME on host HOST.``, found in the
request's first user message (a resumed session sends its history, so every later turn
of the conversation carries it too). A request naming no agent, or an agent whose script
is spent, is answered with ``default``; ``unrouted`` counts those, by agent (``""``: none).
A request whose last user message holds one of ``answers``' keys (a message another agent
sent, say, which may come at any time) is answered with that turn, taking none of the
script; ``answered`` counts them by key.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from tests.fakes.provider.server import Accepted, FakeProvider, Turn
from tests.fakes.provider.sse import Api, Json

MARKER = re.compile(r"\[fleetwarden\] You are agent ([a-z][a-z0-9-]{0,31}) on host ")


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(part.get("text", "")) for part in content if isinstance(part, dict)]
    return []


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the request's last user message (its parts joined)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return "\n".join(_texts(message.get("content")))
    return ""


def agent_of(body: Mapping[str, Any]) -> str | None:
    """The agent a request is made for: the marker in its first user message, if any."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            for text in _texts(message.get("content")):
                found = MARKER.search(text)
                if found is not None:
                    return found.group(1)
            return None
    return None


class FakeProviderByAgent(FakeProvider):
    """A :class:`FakeProvider` whose turns are scripted per agent (see the module)."""

    def __init__(
        self,
        scripts: Mapping[str, Sequence[Turn]],
        *,
        default: Turn | None = None,
        accept: Accepted | None = None,
        answers: Mapping[str, Turn] | None = None,
    ) -> None:
        super().__init__(default=default, accept=accept)
        self.answers = dict(answers or {})
        self.answered: Counter[str] = Counter()
        self.scripts: dict[str, deque[Turn]] = {name: deque(t) for name, t in scripts.items()}
        self.served: Counter[str] = Counter()  # turns served from each agent's script
        self.unrouted: Counter[str] = Counter()
        self._for: str | None = None
        self._said = ""

    def add_for(self, agent: str, *turns: Turn) -> None:
        """Queue more turns for ``agent``."""
        self.scripts.setdefault(agent, deque()).extend(turns)

    def _next_turn(self) -> Turn:
        agent, self._for = self._for, None
        said, self._said = self._said, ""
        for key, turn in self.answers.items():
            if key in said:
                self.answered[key] += 1
                return turn
        script = self.scripts.get(agent or "")
        if script:
            self.served[agent or ""] += 1
            return script.popleft()
        self.unrouted[agent or ""] += 1
        return self.default

    async def _answer(self, request: web.Request, api: Api, body: Json) -> web.StreamResponse:
        # The base class takes its turn first thing, before it awaits anything.
        self._for = agent_of(body)
        self._said = last_user_text(body)
        return await super()._answer(request, api, body)
