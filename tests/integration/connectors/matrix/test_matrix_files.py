"""Files through the Matrix connector on a real Synapse: a long diff arrives as an ``m.file``
with its name, type and size, in the thread it was sent to, and the bytes downloaded back
from the media repository are the file's — in an end-to-end encrypted room the server only
ever holds ciphertext, and the operator's own client decrypts it with the event's keys."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from nio import MemoryDownloadResponse
from nio.crypto import decrypt_attachment

from bot.chat.redacting import RedactingConnector
from connectors.base import Attachment, OutboundMessage, RoomId, ThreadId
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor
from tests.integration.connectors.matrix.test_matrix_connector import (
    World,
    png,
    running,
)
from tests.matrix_e2ee_user import EncryptedUser
from tests.matrix_user import Event

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

TOKEN = "deploy-" + secrets.token_hex(16)
DIFF = (
    "diff --git a/app.js b/app.js\n--- a/app.js\n+++ b/app.js\n@@ -1 +1,3 @@\n"
    "-old\n+new ünïcode\n+</pre><script>alert(1)</script>\n" + "+more\n" * 2000
)


class Holder:
    def known_secrets(self) -> list[Secret]:
        return [Secret(TOKEN, "DEPLOY_TOKEN")]


def diff_file() -> Attachment:
    return Attachment.of_text("diff-coder-1.diff", DIFF, "text/x-diff")


async def test_a_file_arrives_as_m_file_in_its_thread_and_downloads_whole(world: World) -> None:
    """The message's text, then the file: an ``m.file`` named as Fleetwarden named it, of
    its type and size, in the thread; the media repository gives back the same bytes, with
    the secret inside it redacted on the way out."""
    op = world.operator
    async with running(world.connector()) as run:
        chat = RedactingConnector(run.connector, Redactor([Holder()]))
        thread = await op.say(world.room, "root")
        await op.watch()
        leaked = Attachment.of_text("diff-coder-1.diff", DIFF + f"+KEY={TOKEN}\n", "text/x-diff")
        sent = await chat.send(
            OutboundMessage(
                RoomId(world.room), "the diff:", thread_id=ThreadId(thread), files=(leaked,)
            )
        )
        wanted = set(sent.event_ids)
        seen = await op.wait_seen(lambda events: wanted <= {e["event_id"] for e in events})
    by_id = {e["event_id"]: e["content"] for e in seen}
    notice, posted = (by_id[event] for event in sent.event_ids)
    assert notice["msgtype"] == "m.notice" and notice["body"] == "the diff:"
    assert posted["msgtype"] == "m.file"
    assert posted["body"] == posted["filename"] == "diff-coder-1.diff"
    expected = (DIFF + "+KEY=[redacted: DEPLOY_TOKEN]\n").encode()
    assert posted["info"] == {"mimetype": "text/x-diff", "size": len(expected)}
    assert posted["m.relates_to"]["rel_type"] == "m.thread"
    assert posted["m.relates_to"]["event_id"] == thread
    assert posted["url"].startswith("mxc://") and "file" not in posted
    downloaded = await op.client.download(mxc=posted["url"])
    assert isinstance(downloaded, MemoryDownloadResponse), downloaded
    assert downloaded.body == expected
    assert downloaded.content_type.startswith("text/x-diff")


# --- end-to-end encrypted ----------------------------------------------------------------


async def test_in_an_encrypted_room_the_file_is_an_encrypted_attachment(
    encrypted: World, tmp_path: Path
) -> None:
    """In an encrypted room the event is encrypted, its ``file`` holds the URL with the key,
    IV and hash (no plain ``url``), the media repository holds only ciphertext, and the
    operator's client decrypts it to the file's bytes. An image sent with it is uploaded
    the same way (with its length: Synapse refuses an upload without one)."""
    op: EncryptedUser = encrypted.operator  # type: ignore[assignment]
    room = encrypted.room
    async with running(encrypted.connector()) as run:
        await op.wait_for(
            lambda events: any(
                e.room == room
                and e.sender == encrypted.bot.user_id
                and e.content.get("membership") == "join"
                for e in events
            ),
            within=40,
        )
        await op.sync_once(0)  # learns the bot's device keys
        await op.say(room, "hello")
        await run.wait_text("hello", deadline=40)
        picture = tmp_path / "chart.png"
        picture.write_bytes(png(5, 4))
        sent = await run.connector.send(
            OutboundMessage(RoomId(room), "", images=(picture,), files=(diff_file(),))
        )
        image_id, event_id = sent.event_ids

        def arrived(events: list[Event]) -> list[Event]:
            return [e for e in events if e.event_id in sent.event_ids]

        image, event = await op.wait_for(
            lambda events: len(arrived(events)) == 2 and arrived(events)
        )
    assert {image_id, event_id} <= op.decrypted
    assert image.content["msgtype"] == "m.image" and "url" in image.content["file"]
    content: dict[str, Any] = event.content
    assert content["msgtype"] == "m.file" and content["body"] == "diff-coder-1.diff"
    assert content["info"] == {"mimetype": "text/x-diff", "size": len(DIFF.encode())}
    assert "url" not in content
    keys = content["file"]
    assert keys["url"].startswith("mxc://") and {"key", "iv", "hashes", "v"} <= set(keys)
    downloaded = await op.client.download(mxc=keys["url"])
    assert isinstance(downloaded, MemoryDownloadResponse), downloaded
    assert downloaded.body != DIFF.encode() and b"diff --git" not in downloaded.body
    plain = decrypt_attachment(
        downloaded.body, keys["key"]["k"], keys["hashes"]["sha256"], keys["iv"]
    )
    assert plain == DIFF.encode()
