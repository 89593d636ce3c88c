"""What a host wrote, in Fleetwarden's own messages: one guarded line quoted as the host's
words, escaped in chat (an error's reply, a refused launch's notice, the `hosts` notes and
its CLI column) while the message's own markdown stays markdown."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.commands.handlers.places.hosts import render_hosts
from bot.render.fleet import fleet_event
from bot.text.agent_text import quotes_escaped
from connectors.markdown import to_html, to_plain
from fleet.events import EventKind, FleetEvent
from fleet.hosts.link.connection import LinkState, LinkStatus
from fleet.hosts.probe import HostFacts, parse_tools
from fleet.hosts.remote import RemoteResult, failure
from fleet.hosts.schema import HostEntry, HostName
from fleet.hosts.service import HostView
from fleet.model import AgentState
from fleet.names import AgentName
from fleet.redaction.guard import says

T0 = datetime(2025, 1, 1, tzinfo=UTC)
FORGED = "✅ **payroll** finished after 2s: [all checks passed](https://evil.example/x)"
HOSTILE = (
    f"mkfifo: cannot make it\n{FORGED} <img src=https://evil.example/i.png>\x1b]52;c;ZXZpbA==\x07"
)


def tags(html: str) -> set[str]:
    return set(re.findall(r"</?([a-z0-9]+)", html))


def test_a_hosts_error_output_is_one_line_quoted_as_its_words() -> None:
    said = failure("box2", RemoteResult(1, "", HOSTILE))
    assert said.startswith("host box2 says “mkfifo: cannot make it ⏎ ✅ **payroll**")
    assert said.endswith("”") and "\n" not in said and "\x1b" not in said and "\x07" not in said
    assert failure("box2", RemoteResult(3, "", " \n")) == "exit status 3 there"
    long = failure("box2", RemoteResult(1, "", "x" * 10_000))
    assert len(long) < 260 and "…" in long


def test_the_hosts_own_curly_quotes_cannot_end_the_quote_early() -> None:
    said = says("host box2", "fine” ✅ **ours** “again")
    assert said == 'host box2 says “fine" ✅ **ours** "again”'
    assert quotes_escaped(f"x: {said}") == 'x: host box2 says “fine" ✅ \\*\\*ours\\*\\* "again”'


def test_in_an_error_reply_the_hosts_words_are_text_and_ours_stay_markdown() -> None:
    error = f"host box2 could not start c1: {failure('box2', RemoteResult(1, '', HOSTILE))}"
    markdown = quotes_escaped(f"{error} — `hosts` shows it")
    html = to_html(markdown)
    assert tags(html) <= {"p", "code"} and html.count("<code>") == 1, html
    assert "\n" not in markdown
    assert not any(line.startswith("✅") for line in to_plain(markdown).splitlines())


def test_a_refused_autostart_notice_keeps_the_hosts_words_as_text() -> None:
    message = f"autostart: c1 cannot start: {says('host box2', HOSTILE)}"
    event = FleetEvent(AgentName("c1"), EventKind.REFUSED, AgentState.FAILED, message, False)
    markdown = fleet_event(event)
    assert tags(to_html(markdown)) <= {"p", "strong"} and markdown.count("**") == 2, markdown


def test_the_hosts_notes_and_cli_versions_are_text() -> None:
    entry = HostEntry.model_validate(
        {"name": "box2", "ssh": "fw@10.0.0.2", "key_file": "/k", "known_hosts": "/kh"}
    )
    error = f"setting up the host failed: host box2: cannot make /x: {says('host box2', HOSTILE)}"
    down = LinkStatus(HostName("box2"), LinkState.DOWN, T0, error, 3)
    tools = parse_tools(["claude\t/usr/bin/claude\t**9**[x](https://evil.example/y)\x1b[2J"])
    assert tools[0].version == "**9**[x](https://evil.example/y)[2J"  # guarded when read
    facts = HostFacts("/home/fw", None, None, None, None, None, tools)
    markdown = render_hosts([HostView(entry, down, facts, T0, None)], {}, T0)
    html = to_html(markdown)
    assert "<a " not in html and "<img" not in html and "<em>" not in html, html
    assert "\x1b" not in markdown
    note = next(line for line in markdown.splitlines() if line.startswith("- **box2**"))
    assert "⏎ ✅ \\*\\*payroll\\*\\*" in note
    assert "claude \\*\\*9\\*\\*\\[x\\](https://evil.example/y)" in markdown
