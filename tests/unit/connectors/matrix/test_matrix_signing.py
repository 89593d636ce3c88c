"""Cross-signing keys and signatures (connectors.matrix.encryption.signing)."""

from __future__ import annotations

import pytest

from connectors.matrix.encryption import signing
from connectors.matrix.encryption.signing import CrossSigningKeys, SigningError, UserIdentity

ALICE = "@alice:example.org"


def _device(user: str, device: str) -> dict[str, object]:
    return {
        "user_id": user,
        "device_id": device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"curve25519:{device}": "c" * 43, f"ed25519:{device}": "e" * 43},
        "signatures": {user: {f"ed25519:{device}": "s" * 86}},
    }


def _identity(keys: CrossSigningKeys) -> UserIdentity:
    body = keys.upload_body()
    return UserIdentity(keys.user_id, body["master_key"], body["self_signing_key"])


def test_a_device_signed_by_the_self_signing_key_is_cross_signed() -> None:
    """The chain master → self-signing → device checks out, and breaks when any link does."""
    keys = CrossSigningKeys.generate(ALICE)
    identity = _identity(keys)
    device = keys.sign_device(_device(ALICE, "PHONE"))
    assert identity.signs_device(device)
    assert not identity.signs_device(_device(ALICE, "PHONE"))
    tampered = {**device, "keys": {"ed25519:PHONE": "x" * 43}}
    assert not identity.signs_device(tampered)
    other = _identity(CrossSigningKeys.generate(ALICE))
    assert not other.signs_device(device)


def test_a_self_signing_key_the_master_did_not_sign_signs_nothing() -> None:
    """A self-signing key object not signed by the master key is not taken."""
    keys = CrossSigningKeys.generate(ALICE)
    body = keys.upload_body()
    unsigned = {k: v for k, v in body["self_signing_key"].items() if k != "signatures"}
    identity = UserIdentity(ALICE, body["master_key"], unsigned)
    assert identity.self_signing_key is None
    assert not identity.signs_device(keys.sign_device(_device(ALICE, "PHONE")))


def test_user_signing_signs_another_users_master_key() -> None:
    """The bot's user-signing key signs a verified person's master key, checkably."""
    bot = CrossSigningKeys.generate("@bot:example.org")
    alice = _identity(CrossSigningKeys.generate(ALICE))
    signed = UserIdentity(ALICE, bot.sign_user(alice.master))
    assert signed.signed_by("@bot:example.org", bot.public("user_signing"))
    assert not alice.signed_by("@bot:example.org", bot.public("user_signing"))
    assert signed.master_key == alice.master_key


def test_identities_are_read_from_a_keys_query_answer() -> None:
    """Master and self-signing keys come out per user; a key claimed for another user is not."""
    keys = CrossSigningKeys.generate(ALICE)
    body = keys.upload_body()
    answer = {
        "device_keys": {},
        "master_keys": {ALICE: body["master_key"], "@eve:example.org": body["master_key"]},
        "self_signing_keys": {ALICE: body["self_signing_key"]},
    }
    found = signing.identities(answer)
    assert set(found) == {ALICE}
    assert found[ALICE].master_key == keys.public("master")
    assert found[ALICE].self_signing_key == keys.public("self_signing")


@pytest.mark.parametrize("passphrase", [None, "correct horse"])
def test_sealed_keys_read_back_the_same(passphrase: str | None) -> None:
    """The private keys survive sealing, with or without a passphrase."""
    keys = CrossSigningKeys.generate(ALICE)
    again = CrossSigningKeys.unsealed(keys.sealed(passphrase), passphrase)
    for usage in signing.USAGES:
        assert again.public(usage) == keys.public(usage)


def test_sealed_keys_refuse_another_passphrase_or_none() -> None:
    """Another passphrase, or none, is a clear error and no keys."""
    sealed = CrossSigningKeys.generate(ALICE).sealed("right")
    with pytest.raises(SigningError, match="another passphrase"):
        CrossSigningKeys.unsealed(sealed, "wrong")
    with pytest.raises(SigningError, match="none is set"):
        CrossSigningKeys.unsealed(sealed, None)
    assert "right" not in str(sealed)


def test_damaged_key_files_are_named_damaged() -> None:
    """A file with missing or mismatched parts raises SigningError, not a KeyError."""
    with pytest.raises(SigningError, match="damaged"):
        CrossSigningKeys.unsealed({"version": 1, "user_id": ALICE}, None)
    body = CrossSigningKeys.generate(ALICE).sealed(None)
    body["public"]["master"] = "A" * 43
    with pytest.raises(SigningError, match="do not match"):
        CrossSigningKeys.unsealed(body, None)
