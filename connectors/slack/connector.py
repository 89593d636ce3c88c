"""The Slack connector: operators command the fleet from one control channel, where each
agent gets its own thread (and, where the workspace allows, its own agent session).

slack-bolt takes the events (:mod:`.socket`: Socket Mode by default, signed HTTP as an
option) and acknowledges each at once; this module owns the lifecycle and which events
are ours (:mod:`.translate`, :mod:`.blocks` for button clicks, the agent session's Stop
turned into ``stop <agent>`` by the thread's topic in the ledger), the sender's user groups
as Slack says them now (:mod:`.groups`), and hands the rest to the paced posting
(:mod:`.outbound`, :mod:`.pacing`) and the sessions (:mod:`.sessions`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

from slack_sdk.web.async_client import AsyncWebClient

from connectors.base import (
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    RunState,
    SendResult,
    ThreadId,
)
from connectors.defaults import ConnectorDefaults
from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorSetupError
from connectors.health import LinkHealth
from connectors.inbox import Inbox
from connectors.receiving import ReceiveFailures
from connectors.slack.arrivals import Arrivals, ThreadTopics
from connectors.slack.blocks import click
from connectors.slack.config import SlackConfig, token_problems
from connectors.slack.groups import CHANGE_EVENTS, Unjudged, UserGroups, with_groups
from connectors.slack.mrkdwn import PART_LIMIT
from connectors.slack.outbound import Outbound, is_ts, render
from connectors.slack.pacing import Pacer, SlackRefused
from connectors.slack.questions import Questions
from connectors.slack.sessions import Sessions
from connectors.slack.socket import HttpTransport, SocketTransport, bolt_app
from connectors.slack.translate import CONNECTOR, Translator
from connectors.slack.web import Identity, SlackWeb
from fleet.timing.clock import Clock, SystemClock

log = logging.getLogger(__name__)

PING_SECONDS: Final = 10.0
"""How often the Socket Mode connection is pinged; a socket silent for four pings, or
closed, is replaced."""


class _State(enum.Enum):
    NEW = "not started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


class SlackConnector(ConnectorDefaults):
    """A Slack app serving one control channel of one workspace, one thread per agent.

    Slack shows no typing and keeps no read marker for an app (a run's session says
    ``processing`` instead): those members are :class:`ConnectorDefaults`' no-ops."""

    def __init__(
        self,
        config: SlackConfig,
        *,
        threads: ThreadTopics,
        environ: Mapping[str, str],
        is_operator: Callable[[str, tuple[str, ...]], bool] | None = None,
        failures: ReceiveFailures | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``threads``: the ledger's chat store (the topic of a thread whose session a
        person stopped). ``is_operator``: whether the ACL knows a user with these groups
        (the router's ACL decides; this spares a person named by id a reading of the
        groups). ``failures``: where an event that cannot be taken is reported."""
        self._config = config
        self._environ = environ
        self._is_operator = is_operator
        self._failures = failures if failures is not None else ReceiveFailures()
        self._clock = clock if clock is not None else SystemClock()
        self._link = LinkHealth(CONNECTOR, self._clock)
        self._inbox = Inbox()
        self._state = _State.NEW
        self._web: SlackWeb | None = None
        self._pacer: Pacer | None = None
        self._outbound: Outbound | None = None
        self._sessions: Sessions | None = None
        self._translator: Translator | None = None
        self._identity: Identity | None = None
        self._groups: UserGroups | None = None
        self._transport: SocketTransport | HttpTransport | None = None
        self._questions = Questions()
        self._arrivals = Arrivals(config.channel_id, threads, self._inbox, self._questions)
        self._chores: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return CONNECTOR

    @property
    def has_threads(self) -> bool:
        return True

    @property
    def home_room(self) -> RoomId | None:
        return RoomId(self._config.channel_id)

    @property
    def link(self) -> LinkHealth:
        """Up once the socket (or the HTTP listener) serves, down when the socket is lost."""
        return self._link

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Check the tokens, learn who the bot is, then take events."""
        if self._state is not _State.NEW:
            raise RuntimeError("the Slack connector starts once")
        self._state = _State.STARTING
        problems = token_problems(self._config, self._environ)
        if problems:
            self._state = _State.STOPPED
            raise ConnectorSetupError("; ".join(problems))
        env = self._environ
        config = self._config
        client = AsyncWebClient(
            token=env[config.bot_token_env].strip(), base_url=config.api_url(env)
        )
        web = self._web = SlackWeb(client)
        try:
            identity = self._identity = await web.identity()
        except ConnectorAuthError as exc:
            self._state = _State.STOPPED
            raise ConnectorAuthError(
                f"{exc}: copy the Bot User OAuth Token (xoxb-…) into "
                f"{config.bot_token_env} again (OAuth & Permissions)"
            ) from None
        except ConnectorError:
            self._state = _State.STOPPED
            raise
        try:
            await self._check_channel(web)
        except ConnectorError:
            self._state = _State.STOPPED
            raise
        pacer = self._pacer = Pacer(web.call, limit=PART_LIMIT, render=render)
        self._outbound = Outbound(web, pacer, config)
        self._sessions = Sessions(pacer, enabled=config.agent_sessions)
        self._translator = Translator(config.channel_id, identity.user_id)
        self._groups = UserGroups(
            web, max_age=config.usergroups_max_age, clock=self._clock.monotonic
        )
        await self._groups.refresh()
        secret = ""
        if config.mode == "http" and config.signing_secret_env is not None:
            secret = env[config.signing_secret_env].strip()
        app = bolt_app(client, secret, on_event=self._on_event, on_click=self._on_click)
        if config.mode == "socket" and config.app_token_env is not None:
            token = env[config.app_token_env].strip()
            self._transport = SocketTransport(
                app,
                token,
                self._link,
                ping_interval=PING_SECONDS,
                token_name=f"{config.app_token_env} (connectors.slack.app_token_env)",
            )
        else:
            host, port = config.host_port()
            self._transport = HttpTransport(app, host, port)
        try:
            await self._transport.start()
        except BaseException:
            await self.stop()
            raise
        self._state = _State.RUNNING
        self._link.connected()
        log.info("slack: serving channel %s as %s", config.channel_id, identity.user_id)

    async def _check_channel(self, web: SlackWeb) -> None:
        """The control channel exists, and the app is in it (else nothing comes in)."""
        channel = self._config.channel_id
        try:
            answer = await web.call("conversations.info", {"channel": channel})
        except SlackRefused as exc:
            if exc.error == "missing_scope":
                log.warning("slack: cannot check channel %s: %s", channel, exc)
                return
            raise ConnectorSetupError(
                f"slack: the app sees no channel {channel} (connectors.slack.channel_id; "
                f"{exc.error}): copy the id from the channel's details, and invite the app "
                "there (/invite @your-app in the channel)"
            ) from None
        info = answer.get("channel")
        if isinstance(info, Mapping) and info.get("is_member") is False:
            raise ConnectorSetupError(
                f"slack: the app is not in channel {channel} (connectors.slack.channel_id): "
                "invite it there (/invite @your-app in the channel)"
            )

    async def stop(self) -> None:
        """Close the socket (or the listener) and stop posting. Safe to repeat."""
        if self._state is _State.STOPPED:
            return
        self._state = _State.STOPPED
        self._link.closed()
        if self._transport is not None:
            await self._transport.stop()
        if self._groups is not None:
            await self._groups.stop()
        if self._pacer is not None:
            await self._pacer.close()
        for chore in list(self._chores):
            chore.cancel()
        await asyncio.gather(*self._chores, return_exceptions=True)
        self._inbox.close()

    # --- inbound -----------------------------------------------------------------------

    async def _on_event(self, event: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        """One event from bolt (already acknowledged): queue what it means, if anything."""
        translator = self._translator  # set before events can come: none is dropped
        if self._state is _State.STOPPED or translator is None:
            return
        self._link.event()
        if event.get("type") in CHANGE_EVENTS and self._groups is not None:
            self._groups.told(event)  # no person's: nothing to hand over
            return
        event_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
        try:
            inbound = await self._arrivals.translate(translator, event, event_id, self._outbound)
        except Exception as exc:
            self._failures.failed(CONNECTOR, event_id, exc)
            return
        if inbound is not None and (inbound := await self._with_groups(inbound)) is not None:
            self._arrivals.hand_over(inbound)

    async def _with_groups(self, inbound: InboundMessage) -> InboundMessage | None:
        """``inbound`` with its sender's groups to judge it by (:func:`.groups.with_groups`);
        ``None`` when they could not be read, said where it came from if it matters."""
        if self._groups is None:
            return inbound
        judged = await with_groups(inbound, self._groups, self._is_operator)
        if isinstance(judged, Unjudged):
            if judged.why is not None:
                note = OutboundMessage(inbound.room, judged.why, inbound.thread_id)
                self._post_later(note, "slack-groups-unread")
            return None
        return judged

    async def _on_click(self, payload: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        """A click on one of our buttons (already acknowledged): its answer, queued."""
        if self._state is _State.STOPPED:
            return
        self._link.event()
        container = payload.get("container")
        try:
            inbound = click(payload, self._config.channel_id)
        except Exception as exc:
            self._failures.failed(CONNECTOR, None, exc)
            return
        if inbound is not None and (inbound := await self._with_groups(inbound)) is None:
            return
        clicked = container.get("message_ts") if isinstance(container, Mapping) else None
        if inbound is not None and inbound.reacts_to is None and isinstance(clicked, str):
            why = self._questions.refusal(clicked, inbound.sender)
            if why is not None:  # a Yes under an older or another's question
                self._say_later(inbound, why)
                return
        if inbound is not None:
            if inbound.thread_id is None and inbound.reacts_to is not None:
                thread = self._arrivals.thread_of(inbound.reacts_to)
                if thread is not None:
                    inbound = _in_thread(inbound, thread)
            self._arrivals.hand_over(inbound)
            if inbound.reacts_to is None and isinstance(clicked, str):
                self._take_buttons_off(inbound.room, clicked)  # its Yes is given

    def inbound(self) -> AsyncIterator[InboundMessage]:
        return self._inbox.messages()

    # --- outbound ----------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        sent = await self._running().send(message)
        for ts in sent.event_ids:
            self._arrivals.note_place(ts, message.thread_id)
        if sent.event_ids and any(choice.as_reply for choice in message.choices):
            place = (message.room, message.thread_id)
            ts, text = sent.event_ids[0], message.markdown
            older = self._questions.asked(ts, place, message.in_reply_to, text)
            if older is not None:
                self._take_buttons_off(message.room, older)  # replaced by this one
        return sent

    def _take_buttons_off(self, room: RoomId, ts: str) -> None:
        """Show question ``ts`` again without its Yes, once, later (never in the way)."""
        text = self._questions.settled(ts)
        if text is None:
            return

        async def edit() -> None:
            try:
                await self.edit(room, EventId(ts), text)
            except ConnectorError as exc:
                log.warning("slack: could not take a question's button off: %s", exc)

        task = asyncio.get_running_loop().create_task(edit(), name="slack-question-settled")
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def _say_later(self, inbound: InboundMessage, why: str) -> None:
        """Tell the clicker, where they clicked, why their click did nothing."""
        note = OutboundMessage(inbound.room, f"{inbound.sender}: {why}", inbound.thread_id)
        self._post_later(note, "slack-click-refused")

    def _post_later(self, note: OutboundMessage, name: str) -> None:
        """Post why something was not done, later (never in the way of the event)."""

        async def say() -> None:
            try:
                await self.send(note)
            except ConnectorError as exc:
                log.warning("slack: could not say why something was not done: %s", exc)

        task = asyncio.get_running_loop().create_task(say(), name=name)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        await self._running().edit(room, event_id, markdown)

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        thread = await self._running().open_thread(room, first_message, topic)
        self._arrivals.note_place(thread, None)
        return thread

    async def show_run_state(
        self, room: RoomId, thread: ThreadId, state: RunState, title: str
    ) -> None:
        """The run's state as its thread's agent session status; never raises."""
        if self._state is _State.RUNNING and self._sessions is not None:
            await self._sessions.show(room, thread, state, title)

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        """The thread's root message, which opens the thread."""
        return self.message_link(room, EventId(thread))

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        """``https://<team>.slack.com/archives/<channel>/p<ts without its dot>``, naming
        the thread for a reply in one."""
        if self._identity is None or not self._identity.url or not is_ts(event_id):
            return None
        link = f"{self._identity.url}archives/{room}/p{event_id.replace('.', '')}"
        if thread is not None and str(thread) != str(event_id):
            link += f"?thread_ts={thread}&cid={room}"
        return link

    async def health(self) -> ConnectorHealth:
        web = self._web
        if self._state is not _State.RUNNING or web is None:
            return ConnectorHealth(ok=False, detail=f"slack: {self._state.value}")
        try:
            identity = await web.identity()
        except ConnectorError as exc:
            return ConnectorHealth(ok=False, detail=str(exc))
        return ConnectorHealth(ok=True, detail=f"slack: connected as {identity.user_id}")

    def _running(self) -> Outbound:
        if self._state is not _State.RUNNING or self._outbound is None:
            raise ConnectorError(f"the Slack connector is {self._state.value}")
        return self._outbound


def _in_thread(inbound: InboundMessage, thread: str) -> InboundMessage:
    if thread == str(inbound.reacts_to):
        return inbound
    return dataclasses.replace(inbound, thread_id=ThreadId(thread))
