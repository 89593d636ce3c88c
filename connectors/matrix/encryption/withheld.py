"""Room keys a sender's client withheld from the bot on purpose, and what to tell the room.

A client that will not share a Megolm session with the bot's device says so with an
``m.room_key.withheld`` to-device event (older clients: ``org.matrix.room_key.withheld``)
naming the room, the session and a code. The notice may come before or after the message
it is about; :class:`WithheldKeys` remembers the notices (bounded) so either order finds
the other, and says each sender's session (or, for ``m.no_olm``, device) only once.

The lines say in plain words whose message could not be read, why, and what fixes it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

WITHHELD_TYPES = frozenset({"m.room_key.withheld", "org.matrix.room_key.withheld"})
REPLY_CODES = frozenset({"m.unavailable", "m.unauthorised"})
"""Codes a device also sends in reply to the bot's key request: final only from the device
that sent the message (another of the sender's devices may lack a key the first still
sends)."""
MAX_REMEMBERED = 256
"""Notices kept while their message is not seen yet, and sessions already reported."""

_VERIFY = (
    "Verify this bot in Element (its user info → *Verify*), or turn off *Never send "
    "encrypted messages to unverified sessions* / *exclude insecure devices* in Element's "
    "settings"
)
_WHY: dict[str, tuple[str, str | None]] = {  # code → (why, the fix)
    "m.unverified": ("my device is not verified for them", _VERIFY),
    "m.blacklisted": (
        "they blocked my device",
        "Unblock this bot's session in their client (its user info → its sessions)",
    ),
    "m.unauthorised": (
        "their client holds that my device may not have it, e.g. a message from before I "
        "could read the room",
        None,
    ),
    "m.unavailable": ("their client no longer has it", None),
    "m.no_olm": (
        "their client could not open an encrypted channel to my device",
        "This usually mends itself: I upload fresh one-time keys at each sync",
    ),
}


@dataclass(frozen=True, slots=True)
class Withheld:
    """One withheld notice: who withheld which key, and the code saying why."""

    sender: str
    code: str
    room: str | None  # None for m.no_olm, which is about a device, not a session
    session_id: str | None
    sender_key: str | None
    from_device: str | None = None

    def why(self) -> str:
        """The reason in plain words with its code, then the fix where there is one."""
        why, fix = _WHY.get(self.code, ("of a reason I do not know", None))
        said = f"{why} (`{_code(self.code)}`)."
        return said if fix is None else f"{said} {fix}."


def parse(event_type: str, sender: str, content: Any) -> Withheld | None:
    """A withheld notice from a to-device event, or None when it is not one (or malformed)."""
    if event_type not in WITHHELD_TYPES or not isinstance(content, dict):
        return None
    code = content.get("code")
    if not isinstance(code, str) or not code or not sender:
        return None
    room, session = content.get("room_id"), content.get("session_id")
    sender_key = content.get("sender_key")
    if code != "m.no_olm" and not (isinstance(room, str) and isinstance(session, str)):
        return None
    from_device = content.get("from_device")
    return Withheld(
        sender,
        code,
        room if isinstance(room, str) else None,
        session if isinstance(session, str) else None,
        sender_key if isinstance(sender_key, str) else None,
        from_device if isinstance(from_device, str) else None,
    )


def line(withheld: Withheld, stamp: Any) -> str:
    """What to say in the room about a message whose key was withheld."""
    return (
        f"I cannot read a message from {withheld.sender}{_when(stamp)}: their client "
        f"withheld its key from my device because {withheld.why()} Then send it again."
    )


def waited_line(sender: str, stamp: Any, seconds: float) -> str:
    """What to say when a key never came and the sender's client never said why."""
    return (
        f"I could not read a message from {sender}{_when(stamp)}: its key has not reached "
        f"my device within {seconds:g} s, and their client did not say it was withheld. "
        "Send it again. If this keeps happening, their client may be leaving my device "
        f"out: check that this bot's session is not blocked there. {_VERIFY}."
    )


_DEVICE_FIELDS = ("sender_key", "device_id")


class WithheldKeys:
    """Withheld notices waiting for their message, and what has been said (both bounded)."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[tuple[str, str], Withheld] = OrderedDict()
        self._devices: OrderedDict[str, Withheld] = OrderedDict()  # m.no_olm, by device
        self._said: OrderedDict[tuple[str, str], None] = OrderedDict()

    def note(self, withheld: Withheld) -> None:
        """Remember a notice until its message is seen (a reply to a key request never
        replaces the sending device's own notice)."""
        if withheld.room is not None and withheld.session_id is not None:
            key = (withheld.room, withheld.session_id)
            known = self._sessions.get(key)
            if known is None or known.code in REPLY_CODES:
                _put(self._sessions, key, withheld)
        else:
            for device in (withheld.sender_key, withheld.from_device):
                if device is not None:
                    _put(self._devices, device, withheld)

    def find(self, room: str, event: Any) -> Withheld | None:
        """The notice about ``event`` (an undecryptable message in ``room``), if one came."""
        candidates = [self._sessions.get((room, str(getattr(event, "session_id", ""))))]
        candidates += [self._devices.get(str(getattr(event, k, ""))) for k in _DEVICE_FIELDS]
        for found in candidates:
            if found is not None and self.matches(found, room, event):
                return found
        return None

    def matches(self, withheld: Withheld, room: str, event: Any) -> bool:
        """Whether ``withheld`` settles ``event`` in ``room``: the key will not come."""
        if str(getattr(event, "sender", "")) != withheld.sender:
            return False
        from_sender = withheld.from_device is not None and withheld.from_device == getattr(
            event, "device_id", None
        )
        if withheld.code in REPLY_CODES and not from_sender:
            return False
        if withheld.session_id is None:  # m.no_olm: any message from that device
            return from_sender or (
                withheld.sender_key is not None
                and withheld.sender_key == getattr(event, "sender_key", None)
            )
        return withheld.room == room and withheld.session_id == getattr(event, "session_id", None)

    def first_time(self, withheld: Withheld) -> bool:
        """True the first time a sender's session (or device) is reported; False after."""
        key = (withheld.sender, withheld.session_id or f"device:{withheld.sender_key}")
        if key in self._said:
            return False
        _put(self._said, key, None)
        return True


def _put(memory: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > MAX_REMEMBERED:
        memory.popitem(last=False)


def _code(code: str) -> str:
    """The code as shown: a client's own text, kept short and out of markdown's way."""
    return code.replace("`", "'")[:64]


def _when(stamp: Any) -> str:
    if isinstance(stamp, int) and stamp > 0:
        return f" (sent {datetime.fromtimestamp(stamp / 1000, tz=UTC):%Y-%m-%d %H:%M} UTC)"
    return ""
