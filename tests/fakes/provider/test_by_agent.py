"""The fake provider scripted per agent: each agent's requests take its own turns in
order, found by the line Fleetwarden puts first in its prompt; the rest get the default."""

from __future__ import annotations

import aiohttp

from tests.fakes.provider.by_agent import FakeProviderByAgent, agent_of
from tests.fakes.provider.server import FAKE_KEY, Turn


def _body(text: str, then: str = "") -> dict[str, object]:
    messages: list[dict[str, object]] = [
        {"role": "user", "content": [{"type": "text", "text": text}]}
    ]
    if then:
        messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": then}]
    return {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages}


def test_the_agent_is_read_from_the_first_user_message_only() -> None:
    assert agent_of(_body("[fleetwarden] You are agent coder on host local.\nWork.")) == "coder"
    assert agent_of(_body("no marker here")) is None
    later = _body("plain")
    later["messages"] = [
        {"role": "user", "content": "plain"},
        {"role": "user", "content": "[fleetwarden] You are agent eve on host local."},
    ]
    assert agent_of(later) is None  # a later message (an agent's own words) never routes
    assert agent_of({"messages": "nonsense"}) is None


async def test_each_agent_takes_its_own_turns_in_order() -> None:
    fake = FakeProviderByAgent(
        {"coder": [Turn(text="c1"), Turn(text="c2")], "reviewer": [Turn(text="r1")]},
        default=Turn(text="dflt"),
        answers={"── message": Turn(text="noted")},
    )
    await fake.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def ask(agent: str | None, then: str = "") -> str:
                marker = f"[fleetwarden] You are agent {agent} on host box2.\n" if agent else ""
                body = _body(marker + "go", then)
                async with http.post(
                    f"{fake.base_url}/v1/messages",
                    json=body,
                    headers={"x-api-key": FAKE_KEY, "anthropic-version": "2023-06-01"},
                ) as answer:
                    assert answer.status == 200
                    data = await answer.json()
                    return str(data["content"][0]["text"])

            assert await ask("reviewer") == "r1"
            assert await ask("coder") == "c1"
            assert await ask("reviewer") == "dflt"
            assert await ask(None) == "dflt"
            assert await ask("coder", "── message 3 from migrator") == "noted"
            assert await ask("coder") == "c2"
    finally:
        await fake.stop()
    assert fake.served == {"coder": 2, "reviewer": 1}
    assert fake.unrouted == {"reviewer": 1, "": 1}
    assert fake.answered == {"── message": 1}
