"""A person in Matrix as Element Web makes them: matrix-js-sdk 37.5 with its Rust crypto, in a
Node process of its own (``tests/matrix_js/operator.mjs``), driven over JSON lines.

Where Element's own judgement matters — the shield on a message, "exclude insecure devices",
cross-signing and emoji verification — tests use this instead of the matrix-nio operator.
Each :class:`JsOperator` is one new device, logged in with a password and, as Element does at
a user's first login, cross-signed by its owner. The Node process always ends with the
operator (``stop()``, the context manager, or the death of the process that started it).

matrix-js-sdk is installed by ``tests/matrix_js.sh`` into ``.cache/matrix-js``;
``FLEETWARDEN_MATRIX_JS_MODULES`` may name another ``node_modules`` directory.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tests.matrix_js_wire import REPO_ROOT, Json, JsOperatorError, NodeWire, modules_dir

if TYPE_CHECKING:
    from tests.synapse_server import SynapseServer

__all__ = ["REPO_ROOT", "JsOperator", "JsOperatorError", "JsOperators", "modules_dir"]


class JsOperator:
    """One matrix-js-sdk device of ``user_id``. Start it with :meth:`start`, which may be
    awaited (then ``await stop()`` in a ``finally``) or used as ``async with``."""

    def __init__(self, wire: NodeWire) -> None:
        self._wire = wire
        self.user_id = ""
        self.device_id = ""
        self.cross_signing = "none"  # what the login did: "new", "existing", "reset", "none"
        # login_ms, crypto_init_ms, first_sync_ms, bootstrap_ms, total_ms (Node's clock, from
        # the login request) and start_ms (from spawning Node to logged in).
        self.timings: dict[str, int] = {}

    @property
    def events(self) -> list[Json]:
        """What the process pushed, oldest first: {"event": "timeline", room_id, event_id,
        sender, type}, "verification_request" and "verification_changed" (as
        :meth:`wait_verification_request` answers), "user_trust_changed" {user_id}, "ready"."""
        return self._wire.events

    @property
    def log_path(self) -> Path:
        return self._wire.log_path

    @property
    def pid(self) -> int:
        return self._wire.pid

    def log(self) -> str:
        """What the Node process wrote to its log so far (for failure messages)."""
        return self._wire.log()

    async def wait_event(self, name: str, *, timeout: float = 30, **fields: Any) -> Json:
        """The first event the process pushed named ``name`` with all of ``fields``."""
        return await self._wire.wait_event(name, within=timeout, **fields)

    # ---- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        homeserver: str,
        user_id: str,
        password: str,
        *,
        workdir: Path,
        cross_sign: bool = True,
        reset_cross_signing: bool = False,
        device_name: str = "Element operator",
        timeout: float = 90,
    ) -> _Starting:
        """Log in ``user_id`` as a new device, with Rust crypto (no IndexedDB), and start
        syncing. Unless ``cross_sign`` is False, set up cross-signing as Element does at a
        user's first login (``bootstrapCrossSigning``, answering the password prompt); a user
        who already has a cross-signing identity keeps it, and this device stays unsigned
        until another of theirs verifies it (:meth:`request_own_verification`) or signs it
        (:meth:`cross_sign_device`). ``reset_cross_signing`` replaces the identity, as
        Element's "Reset cryptographic identity". :attr:`cross_signing` says which happened:
        "new", "existing", "reset" or "none"."""
        workdir.mkdir(parents=True, exist_ok=True)
        return _Starting(
            cls._launch(
                homeserver,
                user_id,
                password,
                workdir,
                {
                    "device_name": device_name,
                    "cross_sign": cross_sign,
                    "reset_cross_signing": reset_cross_signing,
                },
                timeout,
            )
        )

    @classmethod
    async def _launch(
        cls,
        homeserver: str,
        user_id: str,
        password: str,
        workdir: Path,
        options: Json,
        timeout: float,
    ) -> JsOperator:
        began = time.monotonic()
        operator = cls(await NodeWire.spawn(workdir))
        try:
            session = await operator._call(
                "login",
                timeout=timeout,
                homeserver=homeserver,
                user_id=user_id,
                password=password,
                **options,
            )
        except BaseException:
            await operator.stop()
            raise
        operator.user_id = session["user_id"]
        operator.device_id = session["device_id"]
        operator.cross_signing = session["cross_signing"]
        operator.timings = {
            **session["timings"],
            "start_ms": round((time.monotonic() - began) * 1000),  # spawn to logged in
        }
        return operator

    async def stop(self) -> None:
        """End the Node process (politely, then SIGKILL to its group). Safe to repeat."""
        await self._wire.stop()

    async def __aenter__(self) -> JsOperator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- identity -----------------------------------------------------------------------------

    async def master_key(self, user: str | None = None) -> str | None:
        """The master cross-signing key the homeserver publishes for ``user`` (this operator's
        user by default), unpadded base64; None when there is none."""
        key: str | None = await self._call("master_key", user_id=user)
        return key

    async def own_device_keys(self) -> Json:
        """This device's ``{ed25519, curve25519}``."""
        keys: Json = await self._call("own_device_keys")
        return keys

    # ---- rooms and messages -------------------------------------------------------------------

    async def create_room(
        self, *, encrypted: bool = True, invite: list[str] | tuple[str, ...] = ()
    ) -> str:
        """A private room (encrypted unless asked not to), joined, with ``invite`` invited."""
        room: str = await self._call("create_room", encrypted=encrypted, invite=list(invite))
        return room

    async def join(self, room_id: str) -> None:
        await self._call("join", room_id=room_id)

    async def invite(self, room_id: str, user: str) -> None:
        await self._call("invite", room_id=room_id, user_id=user)

    async def wait_member(
        self, room_id: str, user: str, *, membership: str = "join", timeout: float = 30
    ) -> None:
        """Until this device's view of ``room_id`` has ``user`` with ``membership``."""
        await self._call(
            "wait_member", timeout=timeout, room_id=room_id, user_id=user, membership=membership
        )

    async def send(self, room_id: str, text: str, *, thread_root: str | None = None) -> str:
        """Send ``text`` (encrypted in an encrypted room), in ``thread_root``'s thread if given,
        as Element does; returns the event id."""
        event_id: str = await self._call(
            "send", room_id=room_id, text=text, thread_root=thread_root
        )
        return event_id

    async def wait_message(
        self,
        room_id: str,
        *,
        sender: str | None = None,
        contains: str | None = None,
        reply_to: str | None = None,
        thread_root: str | None = None,
        exclude: list[str] | tuple[str, ...] = (),
        include_undecryptable: bool = False,
        settle: float = 3,
        timeout: float = 30,
    ) -> Json:
        """The first message in ``room_id`` (oldest first) that matches, once readable:
        ``{event_id, room_id, sender, sender_device, type, body, content, encrypted, decrypted,
        decryption_error, shield_colour, shield_reason, thread_root, reply_to,
        clear_relation}`` (``clear_relation``: the ``m.relates_to`` sent outside the
        ciphertext, which Element files threads by). ``reply_to`` and ``thread_root`` filter
        by the relation, read in clear when the message cannot be decrypted.

        ``shield_colour`` is Element's: "NONE", "GREY", "RED" with ``shield_reason`` the
        js-sdk's EventShieldReason name (e.g. "UNSIGNED_DEVICE"); a message sent in clear in
        an encrypted room is ("RED", "SENT_IN_CLEAR"), Element's "Not encrypted"; in a room
        without encryption both are None.
        With ``include_undecryptable`` a message that cannot be decrypted matches too
        (``body`` None, ``decryption_error`` the js-sdk's DecryptionFailureCode, e.g.
        "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE"); a plain missing key counts only after it
        stayed missing ``settle`` seconds. ``contains`` never matches an undecryptable one."""
        found: Json = await self._call(
            "wait_message",
            timeout=timeout,
            room_id=room_id,
            sender=sender,
            contains=contains,
            reply_to=reply_to,
            thread_root=thread_root,
            exclude=list(exclude),
            include_undecryptable=include_undecryptable,
            settle=settle,
        )
        return found

    async def messages(self, room_id: str) -> list[Json]:
        """Every message this device has seen in ``room_id``, as :meth:`wait_message` shows
        them, oldest first (including those it could not decrypt)."""
        found: list[Json] = await self._call("messages", room_id=room_id)
        return found

    # ---- trust --------------------------------------------------------------------------------

    async def set_isolation(self, only_signed: bool) -> None:
        """Element's "exclude insecure devices" (``OnlySignedDevicesIsolationMode``) when True,
        else ``AllDevicesIsolationMode`` (the default)."""
        await self._call("set_isolation", only_signed=only_signed)

    async def set_blacklist_unverified(self, on: bool) -> None:
        """Element's "Never send encrypted messages to unverified sessions"."""
        await self._call("set_blacklist_unverified", on=on)

    async def device_status(self, user: str, device: str) -> Json | None:
        """``{signed_by_owner, cross_signing_verified, locally_verified, verified}`` of a device
        (keys freshly downloaded), None when the device is unknown."""
        status: Json | None = await self._call("device_status", user_id=user, device_id=device)
        return status

    async def user_status(self, user: str) -> Json:
        """``{has_cross_signing_keys, cross_signing_verified, verified,
        was_cross_signing_verified, needs_user_approval}`` of a user."""
        status: Json = await self._call("user_status", user_id=user)
        return status

    async def wait_device_status(
        self, user: str, device: str, *, timeout: float = 30, **expected: bool
    ) -> Json:
        """Until :meth:`device_status` has every ``expected`` field (e.g.
        ``signed_by_owner=True``) — another device's signature reaches this one through a
        sync; returns the status."""
        status: Json = await self._call(
            "wait_device_status", timeout=timeout, user_id=user, device_id=device, expected=expected
        )
        return status

    async def wait_user_status(self, user: str, *, timeout: float = 30, **expected: bool) -> Json:
        """Until :meth:`user_status` has every ``expected`` field (e.g.
        ``cross_signing_verified=True``); returns the status."""
        status: Json = await self._call(
            "wait_user_status", timeout=timeout, user_id=user, expected=expected
        )
        return status

    async def user_devices(self, user: str) -> list[Json]:
        """``[{device_id, display_name, ed25519, curve25519, verified}]`` of a user's devices;
        ``verified`` is the js-sdk's DeviceVerification (0 blocked, 1 unverified, 2 verified)."""
        devices: list[Json] = await self._call("user_devices", user_id=user)
        return devices

    async def set_device_verified(self, user: str, device: str, verified: bool = True) -> None:
        """Mark a device verified on this device only (``setDeviceVerified``), as comparing
        its session key by hand once did; it does not sign it."""
        await self._call("set_device_verified", user_id=user, device_id=device, verified=verified)

    async def pin_identity(self, user: str) -> None:
        """Accept ``user``'s new cross-signing identity (``pinCurrentUserIdentity``), as
        Element's "OK" on "their identity was reset"."""
        await self._call("pin_identity", user_id=user)

    async def cross_sign_device(self, device_id: str) -> None:
        """Sign another of this user's own devices with the self-signing key, as an existing
        Element session does once it has verified a new one."""
        await self._call("cross_sign_device", device_id=device_id)

    # ---- verification -------------------------------------------------------------------------

    async def request_device_verification(
        self, user: str, device: str, *, timeout: float = 30
    ) -> str:
        """Ask ``user``'s ``device`` to verify (to-device), as Element's "Verify session";
        returns the verification id other calls take. The device must be known: one of this
        user's own, or of a user this device shares a room with."""
        vid: str = await self._call(
            "request_device_verification", timeout=timeout, user_id=user, device_id=device
        )
        return vid

    async def request_user_verification(self, user: str, room_id: str) -> str:
        """Ask ``user`` to verify in ``room_id`` (``requestVerificationDM``), as Element's
        "Verify" in a user's profile; returns the verification id."""
        vid: str = await self._call("request_user_verification", user_id=user, room_id=room_id)
        return vid

    async def request_own_verification(self) -> str:
        """Ask this user's other devices to verify this one, as a new Element session's
        "Verify with another device"; returns the verification id."""
        vid: str = await self._call("request_own_verification")
        return vid

    async def wait_verification_request(
        self, *, sender: str | None = None, timeout: float = 30
    ) -> Json:
        """The first verification request another device made to this one (from ``sender``
        if given): ``{vid, other_user, other_device, room_id, phase, …}``."""
        found: Json = await self._call("wait_verification_request", timeout=timeout, sender=sender)
        return found

    async def accept_verification(self, vid: str) -> None:
        """Accept an incoming request, as Element's toast "Verify" button."""
        await self._call("accept_verification", vid=vid)

    async def wait_sas(
        self, vid: str, *, start: bool | None = None, timeout: float = 30
    ) -> list[tuple[str, str]]:
        """Once the other side is ready, start emoji (SAS) verification — by default only when
        this side made the request, as Element does — and return the seven ``(emoji, name)``."""
        emojis: list[list[str]] = await self._call(
            "wait_sas", timeout=timeout, vid=vid, start=start
        )
        return [(emoji, name) for emoji, name in emojis]

    async def sas_confirm(self, vid: str) -> None:
        """ "They match"."""
        await self._call("sas_confirm", vid=vid)

    async def sas_mismatch(self, vid: str) -> None:
        """ "They don't match"."""
        await self._call("sas_mismatch", vid=vid)

    async def cancel_verification(self, vid: str) -> None:
        await self._call("cancel_verification", vid=vid)

    async def wait_verification(self, vid: str, *, timeout: float = 60) -> Json:
        """Until the verification is done or cancelled: ``{phase: "done"|"cancelled",
        cancellation_code, cancelled_by, other_user, other_device, …}``."""
        state: Json = await self._call("wait_verification", timeout=timeout, vid=vid)
        return state

    # ---- the wire -----------------------------------------------------------------------------

    async def _call(self, op: str, *, timeout: float = 60, **args: Any) -> Any:
        """One request; the Node side keeps ``timeout`` itself where it waits (and answers
        with a clearer error first), the answer is awaited 10 s longer."""
        if op in _TIMED:
            args["timeout"] = timeout
        return await self._wire.call(op, args, wait=timeout + 10)


# Operations whose Node side takes a ``timeout`` argument of its own.
_TIMED = {
    "request_device_verification",
    "wait_device_status",
    "wait_user_status",
    "wait_message",
    "wait_member",
    "wait_verification_request",
    "wait_sas",
    "wait_verification",
}


class _Starting:
    """What :meth:`JsOperator.start` returns: await it for the operator, or use it in
    ``async with`` to have it stopped at the block's end, whatever happens in it."""

    def __init__(self, launch: Any) -> None:
        self._launch = launch
        self._operator: JsOperator | None = None

    def __await__(self) -> Generator[Any, None, JsOperator]:
        return self._launch.__await__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> JsOperator:
        self._operator = await self._launch
        return self._operator

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._operator is not None:
            await self._operator.stop()


class JsOperators:
    """Fresh js-sdk operators on one Synapse for one test, all stopped on leaving the block::

    async with JsOperators(synapse, tmp_path) as js:
        ann = await js.new("ann")                        # a new user, first login
        phone = await js.new(user_id=ann.user_id)        # another device of ann's
    """

    def __init__(
        self, synapse: SynapseServer, workdir: Path, password: str = "js operator password"
    ) -> None:
        self.synapse = synapse
        self.workdir = workdir
        self.password = password
        self.started: list[JsOperator] = []

    async def new(
        self,
        name: str = "op",
        *,
        user_id: str | None = None,
        cross_sign: bool = True,
        reset_cross_signing: bool = False,
    ) -> JsOperator:
        """Register ``name`` + a random suffix (unless ``user_id`` names an existing user of
        this password) and log in a new js-sdk device of it."""
        if user_id is None:
            made = await self.synapse.register_async(f"{name}{uuid.uuid4().hex[:8]}", self.password)
            user_id = made.user_id
        operator = await JsOperator.start(
            self.synapse.base_url,
            user_id,
            self.password,
            workdir=self.workdir / f"js-{len(self.started)}",
            cross_sign=cross_sign,
            reset_cross_signing=reset_cross_signing,
        )
        self.started.append(operator)
        return operator

    async def stop_all(self) -> None:
        for operator in self.started:
            await operator.stop()

    async def __aenter__(self) -> JsOperators:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_all()
