"""What each Web API method of the fake Slack does, once the call passed the token, scope,
schema and rate checks (:mod:`web_api`): a function of the world and the typed arguments
that returns Slack's answer. The errors are Slack's own codes for the case."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.slack import judge
from tests.fakes.slack.state import AGENT_STATUSES, Message, Session

if TYPE_CHECKING:
    from tests.fakes.slack.world import SlackWorld

MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
MAX_TITLE = 200

Answer = dict[str, Any]


def _error(code: str, **more: Any) -> Answer:
    return {"ok": False, "error": code, **more}


def _channel_error(world: SlackWorld, channel_id: object, reading: bool = False) -> str | None:
    """``channel_not_found`` for a channel the bot cannot see (unknown, or private and
    not a member), ``not_in_channel`` for a public one it is not in."""
    channel = world.channels.get(str(channel_id))
    if channel is None or (channel.is_private and world.bot_user_id not in channel.members):
        return "channel_not_found"
    if world.bot_user_id not in channel.members and not reading:
        return "not_in_channel"
    return None


def auth_test(world: SlackWorld, args: dict[str, Any]) -> Answer:
    return {
        "ok": True,
        "url": f"https://{world.team_domain}.slack.com/",
        "team": world.team_name,
        "user": "fleetwarden",
        "team_id": world.team_id,
        "user_id": world.bot_user_id,
        "bot_id": world.bot_id,
        "is_enterprise_install": False,
    }


def connections_open(world: SlackWorld, args: dict[str, Any]) -> Answer:
    hub = world.sockets
    if hub is None:
        raise RuntimeError("no Socket Mode hub")
    return {"ok": True, "url": hub.new_url()}  # type: ignore[attr-defined]


def blocks_problem(blocks: object) -> Answer | None:
    """``invalid_blocks`` for blocks that are no KnownBlock, over 50, or with a section's
    text over 3,000 characters; None when they are fine."""
    problems = judge.block_problems(blocks)
    listed = blocks if isinstance(blocks, list) else []
    if len(listed) > MAX_BLOCKS:
        problems.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for index, block in enumerate(listed):
        section = (
            block.get("text")
            if isinstance(block, dict) and block.get("type") == "section"
            else None
        )
        if isinstance(section, dict) and len(str(section.get("text", ""))) > MAX_SECTION_TEXT:
            where = f"[json-pointer:/blocks/{index}/text/text]"
            problems.append(f"must be less than {MAX_SECTION_TEXT + 1} characters {where}")
    if not problems:
        return None
    return _error(
        "invalid_blocks", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
    )


def _message_problem(args: dict[str, Any]) -> Answer | None:
    text = args.get("text")
    blocks = args.get("blocks")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return _error("msg_too_long")
    if blocks is not None:
        problem = blocks_problem(blocks)
        if problem:
            return problem
    if not text and not blocks and not args.get("attachments") and not args.get("markdown_text"):
        return _error("no_text")
    return None


def post_message(world: SlackWorld, args: dict[str, Any]) -> Answer:
    channel = str(args["channel"])
    error = _channel_error(world, channel)
    if error:
        return _error(error)
    problem = _message_problem(args)
    if problem:
        return problem
    thread_ts = args.get("thread_ts") or None
    if thread_ts is not None:
        root = world.find(channel, str(thread_ts))
        if root is None:
            return _error("thread_not_found")  # Slack: a thread_ts that is no message
        thread_ts = root.thread_ts or root.ts
    message = Message(
        world.clock.next_ts(),
        channel,
        world.bot_user_id,
        str(args.get("text") or ""),
        blocks=list(args.get("blocks") or []),
        thread_ts=thread_ts,
        bot_id=world.bot_id,
    )
    world.record(message)
    world.later(world.announce(message))
    return {"ok": True, "channel": channel, "ts": message.ts, "message": _shown(world, message)}


def _shown(world: SlackWorld, message: Message) -> Answer:
    """The message as chat.postMessage / chat.update give it back."""
    shown = message.as_slack(world.team_id)
    shown["app_id"] = world.app_id
    shown.pop("reactions", None)
    return shown


def update(world: SlackWorld, args: dict[str, Any]) -> Answer:
    channel = str(args["channel"])
    error = _channel_error(world, channel)
    if error:
        return _error(error)
    message = world.find(channel, str(args["ts"]))
    if message is None:
        return _error("message_not_found")
    if message.bot_id != world.bot_id:
        return _error("cant_update_message")
    problem = _message_problem(args)
    if problem:
        return problem
    if "text" in args:
        message.text = str(args["text"])
    if "blocks" in args:
        message.blocks = list(args["blocks"] or [])
    message.edited = {"user": world.bot_user_id, "ts": world.clock.next_ts()}
    shown = _shown(world, message)
    for key in ("ts", "thread_ts", "reply_count", "latest_reply"):  # chat.update's has none
        shown.pop(key, None)
    return {
        "ok": True,
        "channel": channel,
        "ts": message.ts,
        "text": message.text,
        "message": shown,
    }


def post_ephemeral(world: SlackWorld, args: dict[str, Any]) -> Answer:
    channel = str(args["channel"])
    error = _channel_error(world, channel)
    if error:
        return _error(error)
    if str(args["user"]) not in world.channels[channel].members:
        return _error("user_not_in_channel")
    problem = _message_problem(args)
    if problem:
        return problem
    world.ephemerals.append((channel, str(args["user"]), str(args.get("text") or "")))
    return {"ok": True, "message_ts": world.clock.next_ts()}


def permalink(world: SlackWorld, args: dict[str, Any]) -> Answer:
    channel = str(args["channel"])
    error = _channel_error(world, channel, reading=True)
    if error:
        return _error(error)
    ts = str(args["message_ts"])
    if world.find(channel, ts) is None:
        return _error("message_not_found")
    link = f"https://{world.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    return {"ok": True, "channel": channel, "permalink": link}


def react(world: SlackWorld, args: dict[str, Any]) -> Answer:
    channel = str(args["channel"])
    error = _channel_error(world, channel)
    if error:
        return _error(error)
    message = world.find(channel, str(args["timestamp"]))
    if message is None:
        return _error("message_not_found")
    people = message.reactions.setdefault(str(args["name"]).strip(":"), [])
    if world.bot_user_id in people:
        return _error("already_reacted")
    people.append(world.bot_user_id)
    return {"ok": True}


def info(world: SlackWorld, args: dict[str, Any]) -> Answer:
    error = _channel_error(world, args["channel"], reading=True)
    if error:
        return _error(error)
    return {"ok": True, "channel": world.channels[str(args["channel"])].as_slack(world.bot_user_id)}


def history(world: SlackWorld, args: dict[str, Any]) -> Answer:
    channel = str(args["channel"])
    error = _channel_error(world, channel)
    if error:
        return _error(error)
    tops = [m for m in world.messages(channel) if m.thread_ts is None or m.thread_ts == m.ts]
    limit = int(args.get("limit") or 100)
    shown = [m.as_slack(world.team_id) for m in reversed(tops)][:limit]
    return {"ok": True, "messages": shown, "has_more": len(tops) > limit, "pin_count": 0}


def replies(world: SlackWorld, args: dict[str, Any]) -> Answer:
    channel = str(args["channel"])
    error = _channel_error(world, channel)
    if error:
        return _error(error)
    root = world.find(channel, str(args["ts"]))
    if root is None:
        return _error("thread_not_found")
    thread = world.messages(channel, thread_ts=root.thread_ts or root.ts)
    limit = int(args.get("limit") or 1000)
    return {
        "ok": True,
        "messages": [m.as_slack(world.team_id) for m in thread][:limit],
        "has_more": False,
    }


def usergroups(world: SlackWorld, args: dict[str, Any]) -> Answer:
    include = bool(args.get("include_users"))
    disabled = bool(args.get("include_disabled"))
    shown = [g for g in world.usergroups.values() if disabled or not g.deleted]
    return {"ok": True, "usergroups": [g.as_slack(include) for g in shown]}


def usergroup_users(world: SlackWorld, args: dict[str, Any]) -> Answer:
    group = world.usergroups.get(str(args["usergroup"]))
    if group is None or (group.deleted and not args.get("include_disabled")):
        return _error("no_such_subteam")
    return {"ok": True, "users": list(group.users)}


def user_info(world: SlackWorld, args: dict[str, Any]) -> Answer:
    user = world.users.get(str(args["user"]))
    if user is None:
        return _error("user_not_found")
    return {"ok": True, "user": user.as_slack()}


def set_status(world: SlackWorld, args: dict[str, Any]) -> Answer:
    if not world.sessions_allowed:
        return _error("not_allowed")  # assumed: a workspace without agent sessions
    channel = str(args["channel_id"])
    error = _channel_error(world, channel)
    if error:
        return _error(error)
    status = str(args["status"])
    if status not in AGENT_STATUSES:
        messages = [f"[ERROR] must be one of {', '.join(AGENT_STATUSES)} [json-pointer:/status]"]
        return _error("invalid_arguments", response_metadata={"messages": messages})
    title = args.get("title")
    if isinstance(title, str) and len(title) > MAX_TITLE:
        messages = [f"[ERROR] must be less than {MAX_TITLE + 1} characters [json-pointer:/title]"]
        return _error("invalid_arguments", response_metadata={"messages": messages})
    thread_ts = str(args.get("thread_ts") or "")
    if world.find(channel, thread_ts) is None:
        return _error("thread_not_found")
    session = world.sessions.get((channel, thread_ts))
    if session is None:
        session = world.sessions[(channel, thread_ts)] = Session(channel, thread_ts, status, title)
    session.status = status
    session.history.append(status)
    return {"ok": True}
