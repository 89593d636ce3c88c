"""Cross-signing keys and signatures, without I/O: the bot's own three keys, signing key
objects with them, and checking the cross-signing chain of other users' devices.

Matrix cross-signing (spec: "Cross-signing"): a user has a **master** key; it signs a
**self-signing** key, which signs each of the user's devices, and a **user-signing** key,
which signs the master keys of the people the user verified. A key's id is
``ed25519:<its public key>``. Signatures are ed25519 over the object's canonical JSON
without ``signatures`` and ``unsigned`` — exactly what the Matrix project's ``signedjson``
(on ``canonicaljson`` and PyNaCl) computes, so nothing here hand-rolls either.

The private keys are 32-byte seeds. :meth:`CrossSigningKeys.sealed` writes them for the
crypto store: in clear base64 (the file is 0600, like nio's store under its default key),
or, with a passphrase, in a PyNaCl ``SecretBox`` under an Argon2id key.
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
import signedjson.key
import signedjson.sign
from signedjson.types import SigningKey

JsonDict = dict[str, Any]
USAGES = ("master", "self_signing", "user_signing")
_SEALED_VERSION = 1


class SigningError(ValueError):
    """Key material that cannot be read: another passphrase, or a damaged file."""


def unpadded(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unpadded_decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def grouped(key: str) -> str:
    """A key in Element's grouping ("abcd efgh …"), as operators compare it."""
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def key_id(public: str) -> str:
    """The id a cross-signing key is named by: ``ed25519:<public key>``."""
    return f"ed25519:{public}"


def _signing_key(seed: bytes) -> SigningKey:
    key = signedjson.key.decode_signing_key_base64("ed25519", "0", unpadded(seed))
    public = signedjson.key.encode_verify_key_base64(signedjson.key.get_verify_key(key))
    key.version = public  # the key id of a cross-signing key is its public key
    return key


def sign(obj: Mapping[str, Any], signer: str, key: SigningKey) -> JsonDict:
    """A copy of ``obj`` with ``signer``'s signature by ``key`` added (others kept)."""
    return dict(signedjson.sign.sign_json(copy.deepcopy(dict(obj)), signer, key))


def signature_of(signed: Mapping[str, Any], signer: str, key: SigningKey) -> str:
    """The signature ``key`` put on ``signed`` (as :func:`sign` returned it)."""
    return str(signed["signatures"][signer][f"ed25519:{key.version}"])


def verified(obj: Mapping[str, Any], signer: str, public: str, *, key_name: str = "") -> bool:
    """Whether ``obj`` carries a valid signature of ``signer`` by the ed25519 key ``public``.
    ``key_name`` is the key's id suffix when it is not the public key (a device id)."""
    name = key_name or public
    try:
        verify_key = signedjson.key.decode_verify_key_bytes(
            f"ed25519:{name}", _unpadded_decode(public)
        )
        signedjson.sign.verify_signed_json(copy.deepcopy(dict(obj)), signer, verify_key)
    except Exception:  # bad base64, wrong length, missing or invalid signature
        return False
    return True


def cross_signing_public(obj: Mapping[str, Any]) -> str | None:
    """The public key of a cross-signing key object (``{"keys": {"ed25519:K": "K"}}``)."""
    keys = obj.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        return None
    ((name, value),) = keys.items()
    if not isinstance(value, str) or name != key_id(value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """A user's published cross-signing keys, as ``/keys/query`` returns them."""

    user_id: str
    master: JsonDict
    self_signing: JsonDict | None = None
    user_signing: JsonDict | None = None

    @property
    def master_key(self) -> str:
        return cross_signing_public(self.master) or ""

    @property
    def self_signing_key(self) -> str | None:
        """The self-signing public key, if the master key signed it."""
        if self.self_signing is None:
            return None
        public = cross_signing_public(self.self_signing)
        if public is None or self.self_signing.get("user_id") != self.user_id:
            return None
        usage = self.self_signing.get("usage")
        if not isinstance(usage, list) or "self_signing" not in usage:
            return None  # the master key signed it, but for another use
        if not verified(self.self_signing, self.user_id, self.master_key):
            return None
        return public

    def signs_device(self, device_keys: Mapping[str, Any]) -> bool:
        """Whether the device's keys object is signed by this identity's self-signing key."""
        public = self.self_signing_key
        if public is None or device_keys.get("user_id") != self.user_id:
            return False
        return verified(device_keys, self.user_id, public)

    def signed_by(self, signer: str, user_signing_public: str) -> bool:
        """Whether ``signer``'s user-signing key signed this identity's master key."""
        return verified(self.master, signer, user_signing_public)


def identities(keys_query: Mapping[str, Any]) -> dict[str, UserIdentity]:
    """Every user's identity in a ``/keys/query`` answer (users without a master key are
    left out; keys not owned by their user are dropped)."""
    found: dict[str, UserIdentity] = {}
    masters = keys_query.get("master_keys")
    if not isinstance(masters, dict):
        return found

    def part(kind: str, user: str) -> JsonDict | None:
        group = keys_query.get(kind)
        value = group.get(user) if isinstance(group, dict) else None
        if isinstance(value, dict) and value.get("user_id") == user:
            return value
        return None

    for user, master in masters.items():
        if (
            not isinstance(master, dict)
            or master.get("user_id") != user
            or cross_signing_public(master) is None
            or not isinstance(master.get("usage"), list)
            or "master" not in master["usage"]
        ):
            continue
        found[str(user)] = UserIdentity(
            str(user),
            master,
            part("self_signing_keys", str(user)),
            part("user_signing_keys", str(user)),
        )
    return found


class CrossSigningKeys:
    """The bot's own master, self-signing and user-signing private keys."""

    def __init__(self, user_id: str, seeds: Mapping[str, bytes]) -> None:
        if set(seeds) != set(USAGES) or any(len(s) != 32 for s in seeds.values()):
            raise SigningError("cross-signing keys need three 32-byte seeds")
        self.user_id = user_id
        self._seeds = dict(seeds)
        self._keys = {usage: _signing_key(seed) for usage, seed in seeds.items()}

    @classmethod
    def generate(cls, user_id: str) -> CrossSigningKeys:
        return cls(user_id, {usage: secrets.token_bytes(32) for usage in USAGES})

    def public(self, usage: str) -> str:
        return str(self._keys[usage].version)

    def signing_key(self, usage: str) -> SigningKey:
        return self._keys[usage]

    def key_object(self, usage: str) -> JsonDict:
        """The public key object to upload; self- and user-signing ones signed by master."""
        public = self.public(usage)
        obj: JsonDict = {
            "user_id": self.user_id,
            "usage": [usage],
            "keys": {key_id(public): public},
        }
        if usage != "master":
            obj = sign(obj, self.user_id, self._keys["master"])
        return obj

    def upload_body(self) -> JsonDict:
        """The body of ``/keys/device_signing/upload`` (without ``auth``)."""
        return {
            "master_key": self.key_object("master"),
            "self_signing_key": self.key_object("self_signing"),
            "user_signing_key": self.key_object("user_signing"),
        }

    def sign_device(self, device_keys: Mapping[str, Any]) -> JsonDict:
        """The bot's device keys object signed by the self-signing key."""
        return sign(device_keys, self.user_id, self._keys["self_signing"])

    def sign_user(self, master: Mapping[str, Any]) -> JsonDict:
        """Another user's master key object signed by the bot's user-signing key."""
        return sign(master, self.user_id, self._keys["user_signing"])

    def sealed(self, passphrase: str | None) -> JsonDict:
        """The keys as JSON for the crypto store, sealed with ``passphrase`` if given."""
        body: JsonDict = {
            "version": _SEALED_VERSION,
            "user_id": self.user_id,
            "public": {usage: self.public(usage) for usage in USAGES},
        }
        plain = b"".join(self._seeds[usage] for usage in USAGES)
        if passphrase is None:
            body["seeds"] = unpadded(plain)
            return body
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_derive(passphrase, salt))
        body["sealed"] = {
            "kdf": "argon2id",
            "salt": unpadded(salt),
            "box": unpadded(box.encrypt(plain)),
        }
        return body

    @classmethod
    def unsealed(cls, body: Mapping[str, Any], passphrase: str | None) -> CrossSigningKeys:
        """Read :meth:`sealed`'s JSON back. Raises :class:`SigningError` naming what is wrong."""
        try:
            if body.get("version") != _SEALED_VERSION:
                raise SigningError(f"unknown version {body.get('version')!r}")
            user_id = str(body["user_id"])
            sealed = body.get("sealed")
            if isinstance(sealed, dict):
                if passphrase is None:
                    raise SigningError("the keys are sealed with a passphrase and none is set")
                box = nacl.secret.SecretBox(_derive(passphrase, _unpadded_decode(sealed["salt"])))
                try:
                    plain = box.decrypt(_unpadded_decode(sealed["box"]))
                except nacl.exceptions.CryptoError as exc:
                    raise SigningError("another passphrase sealed the keys") from exc
            else:
                plain = _unpadded_decode(str(body["seeds"]))
            if len(plain) != 32 * len(USAGES):
                raise SigningError("the seeds have the wrong length")
            seeds = {usage: plain[32 * i : 32 * (i + 1)] for i, usage in enumerate(USAGES)}
            keys = cls(user_id, seeds)
        except SigningError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise SigningError(f"the key file is damaged ({type(exc).__name__})") from exc
        public = body.get("public")
        if isinstance(public, dict) and any(public.get(u) != keys.public(u) for u in USAGES):
            raise SigningError("the public keys do not match the private ones")
        return keys


def _derive(passphrase: str, salt: bytes) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode("utf8"),
            salt,
            opslimit=nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
            memlimit=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
        )
    )
