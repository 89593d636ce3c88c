"""What a connector does for the optional members of :class:`connectors.base.Connector`
when its medium has nothing to do for them: no typing notice, no read receipt, no link,
no run state. A connector inherits :class:`ConnectorDefaults` and overrides the ones its
medium has."""

from __future__ import annotations

import contextlib

from connectors.base import EventId, RoomId, RunState, ThreadId


class ConnectorDefaults:
    """The optional members of a connector, each doing nothing."""

    def typing(
        self, room: RoomId, thread: ThreadId | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """No typing notice."""
        return contextlib.nullcontext()

    async def mark_read(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> None:
        """No read receipt."""

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        """No link to a thread."""
        return None

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        """No link to a message."""
        return None

    async def show_run_state(
        self, room: RoomId, thread: ThreadId, state: RunState, title: str
    ) -> None:
        """No run state to show."""
