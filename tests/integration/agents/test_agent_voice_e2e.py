"""Chat shows who speaks: the real `fleetwarden run` on the fake Discord, with a sandboxed
``command`` agent that prints a forged Fleetwarden notice, a markdown link, a known secret
with zero-width spaces inside it and a line of backticks meant to end a code block.

In the agent's thread (the live feed) and in a viewer's `logs`: the forged notice shows
only inside a quote under the agent's name, the link is plain text with its target, and
the secret is redacted — not even visible once the invisible characters are taken out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from fleet.redaction.invisible import visible
from tests.integration.connectors.discord.secret_agent import SECRET_VAR, bot_with_a_secret
from tests.integration.connectors.discord.test_discord_bot import Bot, eventually

pytestmark = pytest.mark.integration

AGENT = "mimic"
FORGED = f"⏹ {AGENT} stopped after 2s: stopped by admin"
LINK = "[click here](https://evil.example/steal)"
SCRIPT = f"""\
import os, time

token = os.environ["{SECRET_VAR}"]
print({FORGED!r})
print({LINK!r})
print("my deploy token:", "\\u200b".join(token))
print("```")
print("**bold after the fence**")
print("VOICE-END", flush=True)
time.sleep(120)  # until stopped; gone by itself if a failed test leaves it
"""


@pytest.fixture
async def mimic_bot(tmp_path: Path) -> AsyncIterator[tuple[Bot, str]]:
    """The bot on the fake Discord, its agent ``mimic`` printing forgeries, and its secret."""
    async with bot_with_a_secret(tmp_path, AGENT, SCRIPT, "mimic.py") as running:
        yield running


def assert_the_agents(text: str, token: str) -> None:
    """``text`` (one message, as Discord got it) shows the agent's lines as the agent's."""
    lines = text.splitlines()
    forged = [line for line in lines if "stopped by admin" in line]
    assert forged, text
    # Only inside a quote, and inside a code block in it: never a line of its own.
    assert all(line.startswith("> ") for line in forged), text
    start = next(i for i, line in enumerate(lines) if "stopped by admin" in line)
    assert any(line.startswith("> ```") for line in lines[:start]), text
    # The agent's ``` did not close the block: every fence line is ours (three backticks,
    # an info word at most); the agent's is broken up.
    fences = [line for line in lines if line.lstrip("> ").startswith("```")]
    assert len(fences) % 2 == 0 and all(f.strip("> `") in ("", "text") for f in fences), text
    # As CommonMark reads it too: no link, no bold made of the agent's text.
    html = MarkdownIt("commonmark").render(text)
    assert "<a " not in html and "<strong>bold" not in html, html
    assert "https://evil.example/steal" in text  # the target shows
    # The secret, even with the zero-width spaces taken out of what was posted.
    assert token not in visible(text) and token[-16:] not in visible(text), text
    assert "[redacted: DEPLOY_TOKEN]" in text, text


async def test_an_agents_forged_notice_link_and_hidden_secret_show_as_its_own(
    mimic_bot: tuple[Bot, str],
) -> None:
    """The feed in the agent's thread and a viewer's `logs`: the forged notice is quoted
    under the agent's name, the link is plain text with its target, no fence is broken,
    and the zero-width-split secret is redacted."""
    running, token = mimic_bot
    await running.ask("ann", f"!spawn {AGENT}")
    thread = await eventually(lambda: running.thread_named(AGENT))
    fed = await eventually(
        lambda: next(
            (m for m in running.posted(thread) if "VOICE-END" in m.content and "›" in m.content),
            None,
        )
    )
    assert fed.content.startswith(f"**{AGENT}** ›\n> "), fed.content
    assert_the_agents(fed.content, token)

    logs = "".join(m.content for m in await running.ask("vic", f"!logs {AGENT} --raw"))
    assert "VOICE-END" in logs, logs
    assert_the_agents(logs, token)
    # Nothing Fleetwarden posted, anywhere, starts a line with the forged notice.
    for channel in (running.channel, thread):
        for message in running.posted(channel):
            assert not any(line.startswith("⏹") for line in message.content.splitlines())
