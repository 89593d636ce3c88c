"""A strict fake Slack workspace for tests: its state, and what a person in it does.

    world = SlackWorld()          # a team, a bot user, tokens, a signing secret
    world.bot_token, world.app_token, world.signing_secret, world.bot_user_id, world.team_id
    alice = world.add_user("alice")                      # -> "U…"
    ops = world.add_channel("ops", members=[alice])      # -> "C…" (the bot is a member
                                                         #    unless bot_member=False;
                                                         #    private=True makes a "G…")
    group = world.add_usergroup("oncall", [alice])       # -> "S…"
    await world.change_usergroup(group, remove=[alice])  # subteam_members_changed, then
                                                         #   subteam_updated (tell=False:
                                                         #   lost on the way)
    await world.disable_usergroup(group)                 # subteam_updated, date_delete set
    world.failing["usergroups.list"] = "internal_error"  # a method failing until removed
    async with slack_server(world) as server:           # tests.fakes.slack.server
        server.api_base                                  # "http://127.0.0.1:P/api/"
        ts = await world.person_says(alice, ops, "hi", thread_ts=None, mention=False)
        await world.person_reacts(alice, ops, ts, "white_check_mark")
        await world.person_clicks(alice, ops, ts, label="Approve")
        await world.person_stops_session(alice, ops, thread_ts)
        world.messages(ops)                  # every message of the channel, oldest first
        world.messages(ops, thread_ts=root)  # the thread: its root, then the replies
            # each a state.Message: .ts .text .blocks .thread_ts .user .bot_id .edited
            #                       .reactions {name: [user ids]}
        world.sessions[(ops, root)]          # .status .history .title (agent sessions)
        world.calls                          # every Web API call: state.Call(method, args,
                                             #   token_kind, answer, status), .error
        world.errors_sent                    # the error codes the fake answered, in order
        world.acks, world.dropped            # envelope ids acked / given up after retries
        await world.refresh_sockets()        # `disconnect` refresh_requested on each socket
        await world.drop_sockets()           # close every socket without a word
        world.post_events_to(url)            # HTTP mode: POST signed events to url instead

What a person does reaches the app as Slack sends it: over Socket Mode (the default) as
envelopes — ``events_api`` with the ``event_callback`` (``message`` to the channels the bot
is in, and ``app_mention`` too when the text mentions ``<@bot>``; ``reaction_added``;
``agent_session_stopped``) and ``interactive`` with ``block_actions`` for a click — or,
after :meth:`SlackWorld.post_events_to`, as signed HTTP requests. The bot's own messages
come back as ``message`` events too (with ``bot_id``), as in Slack: an app must ignore them
(``echo_bot_messages=False`` turns that off).

Settings (attributes; tests may shorten them): ``ack_timeout`` 3 s (an envelope not acked
is sent again, ``retry_attempt``+1, ``retry_reason`` "timeout"; given up after
``max_retries`` 3), ``refresh_grace`` 5 s (after ``disconnect`` the fake closes that socket
this much later), ``max_sockets`` 10 (the 11th gets ``disconnect`` ``too_many_websockets``
and is closed, as Slack does), ``limits`` (:class:`limits.Limits`: 1 chat.postMessage per
second per channel, burst 1), ``bot_scopes``/``app_scopes`` (the app manifest's scopes;
a call without its method's scope answers ``missing_scope``), ``sessions_allowed``
(False: agents.sessions.setStatus answers ``not_allowed``, an assumption for a workspace
without agent sessions), ``http_retry_delays`` (HTTP mode: pauses before retries 1-3).

Every request is held to ``<Method>Arguments`` and every answer and event to Slack's types
(:mod:`judge`); a fake answer that breaks them raises :class:`judge.SchemaBreach`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from tests.fakes.slack import payloads
from tests.fakes.slack.limits import Limits
from tests.fakes.slack.state import Call, Channel, Clock, Message, Session, User, Usergroup, make_id

__all__ = ["BOT_SCOPES", "SlackWorld"]

# The scopes of the app manifest in docs/slack.md, as the bot token holds them.
BOT_SCOPES = frozenset(
    {
        "app_mentions:read",
        "channels:history",
        "channels:read",
        "chat:write",
        "chat:write.customize",
        "groups:history",
        "groups:read",
        "reactions:read",
        "reactions:write",
        "usergroups:read",
        "users:read",
    }
)


class Outlet(Protocol):
    """Where the world's events go: the Socket Mode hub, or signed HTTP posts."""

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None: ...


class SlackWorld:
    """One workspace with one app installed; see the module's docstring."""

    def __init__(self, team_name: str = "Fleet Team") -> None:
        self.clock = Clock()
        self.team_id = make_id("T")
        self.team_domain = "fleet-team"
        self.team_name = team_name
        self.app_id = make_id("A")
        self.bot_id = make_id("B")
        self.bot_user_id = make_id("U")
        number = "".join(secrets.choice("0123456789") for _ in range(13))
        self.bot_token = f"xoxb-{number}-{number[::-1]}-{secrets.token_urlsafe(18)}"
        self.app_token = f"xapp-1-{self.app_id}-{number}-{secrets.token_hex(32)}"
        self.signing_secret = secrets.token_hex(16)
        self.verification_token = secrets.token_urlsafe(18)
        self.bot_scopes: set[str] = set(BOT_SCOPES)
        self.app_scopes: set[str] = {"connections:write"}
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, Usergroup] = {}
        self.store: dict[str, list[Message]] = {}
        self.ephemerals: list[tuple[str, str, str]] = []  # (channel, user, text)
        self.sessions: dict[tuple[str, str], Session] = {}
        self.calls: list[Call] = []
        self.errors_sent: list[str] = []
        self.acks: list[str] = []
        self.dropped: list[dict[str, Any]] = []
        # settings
        self.ack_timeout = 3.0
        self.refresh_grace = 5.0
        self.max_sockets = 10
        self.max_retries = 3
        self.limits = Limits()
        self.sessions_allowed = True
        self.echo_bot_messages = True
        self.http_retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0)
        self.failing: dict[str, str] = {}  # Web API method -> the error it answers for now
        # wiring (set by the server)
        self.base_url = "http://127.0.0.1:0"
        self.sockets: Outlet | None = None
        self.http_url: str | None = None
        self.http: Outlet | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.failures: list[BaseException] = []  # raised again when the server stops
        self.users[self.bot_user_id] = User(
            self.bot_user_id, "fleetwarden", self.team_id, is_bot=True
        )

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/"

    # -- the workspace ------------------------------------------------------------------

    def add_user(self, name: str) -> str:
        user = User(make_id("U"), name, self.team_id)
        self.users[user.id] = user
        return user.id

    def add_channel(
        self,
        name: str,
        members: Iterable[str] = (),
        *,
        bot_member: bool = True,
        private: bool = False,
    ) -> str:
        people = set(members) | ({self.bot_user_id} if bot_member else set())
        channel = Channel(make_id("G" if private else "C"), name, people, is_private=private)
        self.channels[channel.id] = channel
        self.store[channel.id] = []
        return channel.id

    def add_usergroup(self, handle: str, users: Iterable[str]) -> str:
        group = Usergroup(make_id("S"), handle, self.team_id, list(users))
        self.usergroups[group.id] = group
        return group.id

    async def change_usergroup(
        self, group: str, *, add: Iterable[str] = (), remove: Iterable[str] = (), tell: bool = True
    ) -> None:
        """An admin adds and takes people in ``group`` (usergroups.users.update); with
        ``tell``, Slack tells the app: ``subteam_members_changed``, then ``subteam_updated``
        (each as Slack sends them; ``tell=False`` is an event lost on the way)."""
        found = self.usergroups[group]
        added = [user for user in add if user not in found.users]
        removed = [user for user in remove if user in found.users]
        previous = found.updated
        found.users = [user for user in found.users if user not in removed] + added
        found.updated = max(previous + 1, int(time.time()))
        if not tell:
            return
        changed: dict[str, Any] = {
            "type": "subteam_members_changed",
            "subteam_id": group,
            "team_id": self.team_id,
            "date_previous_update": previous,
            "date_update": found.updated,
            "event_ts": self.clock.next_ts(),
        }
        if added:
            changed |= {"added_users": added, "added_users_count": len(added)}
        if removed:
            changed |= {"removed_users": removed, "removed_users_count": len(removed)}
        await self.deliver_event(changed)
        await self.usergroup_updated(group)

    async def usergroup_updated(self, group: str) -> None:
        """Slack tells the app that ``group`` changed (``subteam_updated``)."""
        subteam = self.usergroups[group].as_subteam(self.bot_user_id)
        event = {"type": "subteam_updated", "subteam": subteam, "event_ts": self.clock.next_ts()}
        await self.deliver_event(event)

    async def disable_usergroup(self, group: str) -> None:
        """An admin disables ``group`` (usergroups.disable): it is listed no more, and
        Slack tells the app by ``subteam_updated`` with its ``date_delete`` set."""
        found = self.usergroups[group]
        found.deleted = found.updated = found.updated + 1
        await self.usergroup_updated(group)

    def messages(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        """The channel's messages, oldest first; with ``thread_ts`` that thread's only."""
        every = self.store[channel]
        if thread_ts is None:
            return list(every)
        return [m for m in every if m.ts == thread_ts or m.thread_ts == thread_ts]

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.store.get(channel, []) if m.ts == ts), None)

    def record(self, message: Message) -> None:
        """Store ``message``; a reply is counted on its thread's root."""
        self.store[message.channel].append(message)
        if message.thread_ts and message.thread_ts != message.ts:
            root = self.find(message.channel, message.thread_ts)
            if root is not None:
                root.replies.append(message.ts)

    def later(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background; the server cancels what is left when it stops."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failures.append(task.exception())  # type: ignore[arg-type]

    # -- what a person does -------------------------------------------------------------

    async def person_says(
        self,
        user: str,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        mention: bool = False,
    ) -> str:
        """``user`` posts ``text`` (after ``<@bot>`` when ``mention``) in ``channel``,
        in the thread ``thread_ts`` if given; the app hears it. Returns the message's ts."""
        self._member(user, channel)
        if thread_ts is not None and self.find(channel, thread_ts) is None:
            raise ValueError(f"no message {thread_ts} in {channel} to reply in")
        if mention:
            text = f"<@{self.bot_user_id}> {text}"
        ts = self.clock.next_ts()
        message = Message(ts, channel, user, text, thread_ts=thread_ts)
        self.record(message)
        await self.announce(message)
        return ts

    async def announce(self, message: Message) -> None:
        """Tell the app about a new message: ``message`` if the bot is in the channel,
        ``app_mention`` too if it mentions the bot."""
        channel = self.channels[message.channel]
        if self.bot_user_id not in channel.members:
            return
        if message.bot_id and not self.echo_bot_messages:
            return
        event: dict[str, Any] = {
            "type": "message",
            "channel": message.channel,
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "event_ts": message.ts,
            "team": self.team_id,
            "channel_type": "group" if channel.is_private else "channel",
        }
        if message.bot_id:
            event["bot_id"] = message.bot_id
        else:
            event["client_msg_id"] = make_id("m").lower()
        if message.blocks:
            event["blocks"] = message.blocks
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
            root = self.find(message.channel, message.thread_ts)
            if root is not None:
                event["parent_user_id"] = root.user
        await self.deliver_event(event)
        if f"<@{self.bot_user_id}>" in message.text and not message.bot_id:
            mention = {
                k: v for k, v in event.items() if k not in ("channel_type", "parent_user_id")
            }
            mention["type"] = "app_mention"
            await self.deliver_event(mention)

    async def person_reacts(self, user: str, channel: str, ts: str, reaction: str) -> None:
        """``user`` adds ``reaction`` (a name, no colons) to the message ``ts``."""
        self._member(user, channel)
        message = self._message(channel, ts)
        people = message.reactions.setdefault(reaction, [])
        if user in people:
            raise ValueError(f"{user} already reacted {reaction} to {ts}")
        people.append(user)
        event = {
            "type": "reaction_added",
            "user": user,
            "reaction": reaction,
            "item_user": message.user,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": self.clock.next_ts(),
        }
        await self.deliver_event(event)

    async def person_clicks(self, user: str, channel: str, ts: str, label: str) -> None:
        """``user`` clicks the button labelled ``label`` on the message ``ts``."""
        self._member(user, channel)
        message = self._message(channel, ts)
        for block in message.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("type") == "button" and element["text"].get("text") == label:
                    payload = payloads.block_actions(
                        self, user, message, element, block["block_id"]
                    )
                    await self._outlet().deliver("interactive", payload)
                    return
        labels = [
            e["text"].get("text")
            for b in message.blocks
            if b.get("type") == "actions"
            for e in b.get("elements", [])
            if e.get("type") == "button"
        ]
        raise ValueError(f"message {ts} has no button {label!r} (its buttons: {labels})")

    async def person_stops_session(self, user: str, channel: str, thread_ts: str) -> None:
        """``user`` clicks Slack's Stop on the agent session of the thread ``thread_ts``."""
        self._member(user, channel)
        if (channel, thread_ts) not in self.sessions:
            raise ValueError(f"no agent session in {channel} thread {thread_ts}")
        event = {
            "type": "agent_session_stopped",
            "channel": channel,
            "user": user,
            "thread_ts": thread_ts,
            "streaming_message_ts": [],
            "event_ts": self.clock.next_ts(),
        }
        await self.deliver_event(event)

    # -- delivery -----------------------------------------------------------------------

    def post_events_to(self, url: str) -> None:
        """From now on, POST events and interactions, signed, to ``url`` (HTTP mode)."""
        if not url.startswith(("http://127.", "http://localhost")):
            raise ValueError(f"the fake Slack posts only to loopback, not {url}")
        self.http_url = url

    async def deliver_event(self, event: dict[str, Any]) -> None:
        await self._outlet().deliver("events_api", payloads.event_callback(self, event))

    async def refresh_sockets(self) -> None:
        """Send ``disconnect`` ``refresh_requested`` on every open socket."""
        hub = self.sockets
        if hub is None:
            raise RuntimeError("the fake Slack is not serving")
        await hub.refresh()  # type: ignore[attr-defined]

    async def drop_sockets(self) -> None:
        """Close every socket at once, without a word."""
        hub = self.sockets
        if hub is None:
            raise RuntimeError("the fake Slack is not serving")
        await hub.drop()  # type: ignore[attr-defined]

    def _outlet(self) -> Outlet:
        outlet = self.http if self.http_url else self.sockets
        if outlet is None:
            raise RuntimeError(
                "the fake Slack is not serving: use `async with slack_server(world)`"
            )
        return outlet

    def _member(self, user: str, channel: str) -> None:
        if user not in self.users:
            raise ValueError(f"no user {user}")
        if channel not in self.channels:
            raise ValueError(f"no channel {channel}")
        self.channels[channel].members.add(user)

    def _message(self, channel: str, ts: str) -> Message:
        message = self.find(channel, ts)
        if message is None:
            raise ValueError(f"no message {ts} in {channel}")
        return message
