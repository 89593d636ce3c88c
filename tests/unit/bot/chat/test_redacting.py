"""The redacting connector: everything a connector posts passes the redactor, and the app's
secret holders become its sources."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from bot.chat.redacting import IN_THREAD_FROM, RedactingConnector, guard
from connectors.base import (
    MAX_FILE_BYTES,
    Attachment,
    Choice,
    Connector,
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    RunState,
    SendResult,
    ThreadId,
)
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor
from tests.unit.chat_fakes import T0, FakeConnector

TOKEN = "hb" + "Q3v9xZr1_kLm-0aTy8WcPd7uNe2sHjF4"
ROOM = RoomId("!room:example.org")


class Holder:
    def __init__(self, *values: str) -> None:
        self.values = list(values)

    def known_secrets(self) -> list[Secret]:
        return [Secret(value, "heartbeat token") for value in self.values]


class ThreadedConnector(FakeConnector):
    """A fake with threads, holding a login of its own, recording every call."""

    def __init__(self) -> None:
        super().__init__("matrix")
        self.threads: list[tuple[RoomId, str, str]] = []
        self.calls: list[str] = []
        self.login = "login-" + "Zt5Rq-Lp2Vx_9NcBw3Yh8DsKa7Ue1Gj0"

    @property
    def home_room(self) -> RoomId | None:
        return ROOM

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")

    async def inbound(self) -> AsyncIterator[InboundMessage]:
        yield InboundMessage("matrix", "@a:x", f"hi {TOKEN}", ROOM, T0)  # type: ignore[arg-type]

    async def health(self) -> ConnectorHealth:
        return ConnectorHealth(ok=True, detail="fine")

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        self.threads.append((room, topic, first_message))
        return ThreadId("$thread")

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        return f"https://chat.example/{room}/{thread}"

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        return f"https://chat.example/{room}/{event_id}"

    def known_secrets(self) -> list[Secret]:
        return [Secret(self.login, "Matrix access token")]


def wrapped() -> tuple[RedactingConnector, ThreadedConnector]:
    inner = ThreadedConnector()
    return RedactingConnector(inner, Redactor([Holder(TOKEN)])), inner


async def test_a_runs_state_is_told_with_its_title_redacted() -> None:
    """A run state passes through to the connector, its title without the secret; the
    choices of a message pass unchanged."""
    connector, inner = wrapped()
    await connector.show_run_state(ROOM, ThreadId("$t"), RunState.WAITING, f"fix {TOKEN}")
    assert inner.run_states == [(ROOM, "$t", RunState.WAITING, "fix [redacted: heartbeat token]")]
    choices = (Choice("Approve", "✅", style="primary"),)
    await connector.send(OutboundMessage(room=ROOM, markdown="ok?", choices=choices))
    assert inner.sent[-1].choices == choices


async def test_a_sent_message_is_redacted_and_otherwise_unchanged() -> None:
    """The markdown loses its secret; room, thread, reply, images and tone are kept."""
    connector, inner = wrapped()
    message = OutboundMessage(
        room=ROOM,
        markdown=f"Agent **c1** wrote:\n\n```\nTOKEN={TOKEN}\n```",
        thread_id=ThreadId("$t"),
        in_reply_to=EventId("$e"),
        images=(Path("/tmp/chart.png"),),
        tone="info",
    )
    result = await connector.send(message)
    assert result == SendResult(event_ids=(EventId("$sent-1"),))
    redacted = "Agent **c1** wrote:\n\n```\nTOKEN=[redacted: heartbeat token]\n```"
    assert inner.sent == [replace(message, markdown=redacted)]


async def test_a_thread_root_is_redacted_and_its_topic_kept() -> None:
    """open_thread's first message is redacted; the topic (an agent name) is the ledger's
    key and passes unchanged."""
    connector, inner = wrapped()
    assert await connector.open_thread(ROOM, "c1", f"started, key {TOKEN}") == "$thread"
    assert inner.threads == [(ROOM, "c1", "started, key [redacted: heartbeat token]")]


async def test_a_long_text_is_redacted_too() -> None:
    """Past the size redacted on the event loop, a worker thread does it, as thoroughly."""
    connector, inner = wrapped()
    text = ("x" * 100 + "\n") * (IN_THREAD_FROM // 100) + TOKEN
    await connector.send(OutboundMessage(room=ROOM, markdown=text))
    assert TOKEN not in inner.sent[0].markdown
    assert inner.sent[0].markdown.endswith("[redacted: heartbeat token]")


async def test_a_files_text_and_name_are_redacted() -> None:
    """A secret inside an attached file, or in its name, never leaves: the bytes are read
    as text, redacted and written again; the rest of the file and the message are kept."""
    connector, inner = wrapped()
    diff = f"diff --git a/.env b/.env\n+TOKEN={TOKEN}\n+ok ünïcode\n" + "+x\n" * 3000
    files = (
        Attachment.of_text("diff-c1.diff", diff, "text/x-diff"),
        Attachment.of_text(f"{TOKEN}.txt", "plain"),
    )
    message = OutboundMessage(room=ROOM, markdown=f"see {TOKEN}", files=files)
    await connector.send(message)
    (sent,) = inner.sent
    assert sent.markdown == "see [redacted: heartbeat token]"
    first, second = sent.files
    assert (first.name, first.mime) == ("diff-c1.diff", "text/x-diff")
    assert first.data.decode() == diff.replace(TOKEN, "[redacted: heartbeat token]")
    assert TOKEN.encode() not in first.data and TOKEN not in second.name
    assert (second.name, second.data) == ("redacted-heartbeat-token-.txt", b"plain")
    assert message.files[0].data == diff.encode()  # the caller's own message is unchanged


async def test_a_file_redaction_made_too_long_is_cut_again() -> None:
    """A file at the size limit whose secrets redaction made longer is cut to the limit,
    with a note, never refused."""
    inner = ThreadedConnector()
    short = "pw-" + "Xq7vK2"  # shorter than what replaces it
    connector = RedactingConnector(inner, Redactor([Holder(short)]))
    filler = "+" + "word " * 199 + "\n"
    head = f"+{short}\n" * 100  # each made longer by redaction, past a filler line's slack
    text = head + filler * ((MAX_FILE_BYTES - len(head)) // len(filler))
    assert MAX_FILE_BYTES - len(filler) < len(text) <= MAX_FILE_BYTES
    await connector.send(
        OutboundMessage(room=ROOM, markdown="", files=(Attachment.of_text("a.diff", text),))
    )
    (file,) = inner.sent[0].files
    assert len(file.data) <= MAX_FILE_BYTES and short.encode() not in file.data
    assert file.data.endswith(b" bytes not included]\n")


async def test_everything_else_passes_through() -> None:
    """Name, home room, start, stop, health, the inbound stream and thread links are the
    inner one's."""
    connector, inner = wrapped()
    assert (connector.name, connector.home_room) == ("matrix", ROOM)
    assert connector.has_threads is inner.has_threads
    await connector.start()
    await connector.stop()
    assert inner.calls == ["start", "stop"]
    assert await connector.health() == ConnectorHealth(ok=True, detail="fine")
    assert [m.text async for m in connector.inbound()] == [f"hi {TOKEN}"]  # operators' words
    link = connector.thread_link(ROOM, ThreadId("$t"))
    assert link == inner.thread_link(ROOM, ThreadId("$t")) == f"https://chat.example/{ROOM}/$t"


def test_every_method_of_the_connector_interface_is_wrapped() -> None:
    """A method added to Connector must be added here too (and redacted if it carries
    text): the wrapper defines each one itself."""
    wanted = {name for name, _ in inspect.getmembers(Connector) if not name.startswith("_")}
    assert wanted <= set(vars(RedactingConnector))


def test_guard_wraps_each_connector_and_takes_every_secret_holder() -> None:
    """Sources that hold secrets, and connectors that do, become the redactor's sources;
    what holds none (a server not started: None) is skipped."""
    redactor = Redactor()
    inner, plain = ThreadedConnector(), FakeConnector("console")
    holder = Holder(TOKEN)
    guarded = guard([inner, plain], redactor, [holder, None, object()])
    assert [g.inner for g in guarded] == [inner, plain]
    out = redactor.redact(f"{TOKEN} {inner.login}")
    assert out == "[redacted: heartbeat token] [redacted: Matrix access token]"


async def test_a_connector_the_app_starts_is_redacted(tmp_path: Path) -> None:
    """Through the app: a connector handed to App comes back wrapped, its secrets known."""
    from bot.app.lifecycle import App
    from bot.config import Config
    from fleet.timing.clock import SystemClock

    config = Config.default(tmp_path)
    inner = ThreadedConnector()
    app = App(config, clock=SystemClock(), environ={}, connectors=[inner])
    await app.start()
    try:
        started = app._serving.named("matrix")  # what every path uses
        assert isinstance(started, RedactingConnector) and started.inner is inner
        await started.send(OutboundMessage(room=ROOM, markdown=f"login {inner.login}"))
        assert inner.sent[-1].markdown == "login [redacted: Matrix access token]"
    finally:
        await app.stop()
