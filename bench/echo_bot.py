"""The floor for the Matrix round-trip benchmark: the least a matrix-nio bot can do.

It answers every ``!ps`` (an ``m.text`` from someone else) with a constant ``m.notice``
that is a rich reply to the command — the shape Fleetwarden posts, without parsing,
ACL, ledger or markdown rendering. It syncs with ``sync_forever`` using the same filter
and long-poll timeout as Fleetwarden, and ignores history from before it started.

Run by :mod:`bench.matrix_roundtrip`::

    FW_ECHO_TOKEN=… python -m bench.echo_bot HOMESERVER USER_ID DEVICE_ID ROOM TIMEOUT_S

It prints ``ready`` on stdout once it listens; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import os
import sys

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    MatrixRoom,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)

from bench.harness import run_until_sigterm

TOKEN_ENV = "FW_ECHO_TOKEN"
SYNC_FILTER = {"room": {"timeline": {"limit": 100}}}  # as connectors/matrix/inbound/sync.py
REPLY = "No agents yet. Start one with `spawn NAME --prompt TEXT`."
REPLY_HTML = "<p>No agents yet. Start one with <code>spawn NAME --prompt TEXT</code>.</p>"


async def serve(homeserver: str, user_id: str, device_id: str, room: str, poll_s: float) -> None:
    client = AsyncClient(
        homeserver,
        user_id,
        config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0, request_timeout=poll_s + 30),
    )
    client.restore_login(user_id, device_id, os.environ[TOKEN_ENV])
    try:
        joined = await client.join(room)
        if not isinstance(joined, JoinResponse):
            raise SystemExit(f"echo bot: cannot join {room}: {joined}")
        # A first sync only to take the token: nothing before it is answered.
        primed = await client.sync(timeout=0, sync_filter=SYNC_FILTER)
        if not isinstance(primed, SyncResponse):
            raise SystemExit(f"echo bot: first sync failed: {primed}")

        async def on_message(source_room: MatrixRoom, event: RoomMessageText) -> None:
            if event.sender == user_id or event.body.strip() != "!ps":
                return
            content = {
                "msgtype": "m.notice",
                "body": REPLY,
                "format": "org.matrix.custom.html",
                "formatted_body": REPLY_HTML,
                "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}},
            }
            sent = await client.room_send(source_room.room_id, "m.room.message", content)
            if not isinstance(sent, RoomSendResponse):
                print(f"echo bot: send failed: {sent}", file=sys.stderr, flush=True)

        client.add_event_callback(on_message, RoomMessageText)
        print("ready", flush=True)
        await client.sync_forever(timeout=int(poll_s * 1000), sync_filter=SYNC_FILTER)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("homeserver", "user_id", "device_id", "room"):
        parser.add_argument(name)
    parser.add_argument("timeout", type=float, help="sync long-poll timeout in seconds")
    args = parser.parse_args()

    run_until_sigterm(serve(args.homeserver, args.user_id, args.device_id, args.room, args.timeout))


if __name__ == "__main__":
    main()
