"""The bot's cross-signing key file and `fleetwarden matrix trust USER MASTER_KEY`, on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.matrix.cli.device import record_trust
from connectors.matrix.encryption import cross_signing
from connectors.matrix.encryption.crypto import CryptoStoreError, store_dir
from connectors.matrix.encryption.signing import CrossSigningKeys

BOT = "@bot:example.org"


def test_sealed_keys_are_0600_read_back_and_hold_no_seed_in_clear(tmp_path: Path) -> None:
    """Keys saved with a passphrase come back equal; the file is 0600 with no clear seed,
    and its master public key is readable without the passphrase."""
    keys = CrossSigningKeys.generate(BOT)
    cross_signing.save_keys(tmp_path, keys, "hunter2 hunter2")
    path = cross_signing.key_path(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert "seeds" not in json.loads(path.read_text())
    loaded = cross_signing.load_keys(tmp_path, "hunter2 hunter2")
    assert loaded is not None and loaded.public("user_signing") == keys.public("user_signing")
    assert cross_signing.public_master(tmp_path) == keys.public("master")


def test_no_key_file_is_none(tmp_path: Path) -> None:
    """A crypto dir without a key file has no keys (the bot then makes them)."""
    assert cross_signing.load_keys(tmp_path, None) is None


@pytest.mark.parametrize(
    ("content", "passphrase", "why"),
    [
        ("{not json", None, "cannot be read"),
        ("[1, 2]", None, "not a JSON object"),
        ("sealed", None, "none is set"),
        ("sealed", "other", "another passphrase"),
    ],
)
def test_an_unusable_key_file_says_why_and_how_to_fix(
    tmp_path: Path, content: str, passphrase: str | None, why: str
) -> None:
    """A damaged file or another passphrase is a CryptoStoreError naming the fix."""
    if content == "sealed":
        cross_signing.save_keys(tmp_path, CrossSigningKeys.generate(BOT), "s3cret-pass")
    else:
        cross_signing.key_path(tmp_path).write_text(content)
    with pytest.raises(CryptoStoreError) as caught:
        cross_signing.load_keys(tmp_path, passphrase)
    message = str(caught.value)
    assert why in message and "cross-sign --reset" in message
    assert "s3cret-pass" not in message


def test_trust_with_a_master_key_records_the_identity(tmp_path: Path) -> None:
    """`trust USER MASTER_KEY` (spaces allowed) records a verified identity in trust.json."""
    master = CrossSigningKeys.generate("@ann:example.org").public("master")
    grouped = " ".join(master[i : i + 4] for i in range(0, len(master), 4))
    said = record_trust(tmp_path, "@ann:example.org", grouped, None)
    assert "identity is verified" in said
    trust = json.loads((store_dir(tmp_path) / "trust.json").read_text())
    assert trust["identities"] == {"@ann:example.org": {"master": master}}


@pytest.mark.parametrize(
    ("user", "key", "why"),
    [
        ("ann", "x" * 43, "Matrix user id"),
        ("@ann:example.org", "ABCDEFGHIJ", "master key"),
        ("@ann:example.org", "!" * 43, "master key"),
    ],
)
def test_trust_with_a_bad_master_key_says_what_was_expected(
    tmp_path: Path, user: str, key: str, why: str
) -> None:
    """A user id or master key that is not one is refused with what was expected, and
    nothing is written."""
    with pytest.raises(ValueError, match=why):
        record_trust(tmp_path, user, key, None)
    assert not (store_dir(tmp_path) / "trust.json").exists()


def test_two_writers_of_trust_json_keep_each_others_decisions(tmp_path: Path) -> None:
    """The bot and `fleetwarden matrix trust` each hold trust.json in memory: a write by
    one never drops what the other wrote since (the file is read again under a lock)."""
    from connectors.matrix.encryption.trust import TrustFile

    bot = TrustFile(tmp_path / "trust.json")
    shell = TrustFile(tmp_path / "trust.json")
    bot.put("seen", "@ann:hs", "PHONE", "k1")
    shell.put("verified", "@bob:hs", "LAPTOP", "k2")
    bot.put("seen", "@ann:hs", "TABLET", "k3")
    again = TrustFile(tmp_path / "trust.json")
    assert again.get("verified", "@bob:hs", "LAPTOP") == "k2"
    assert again.devices("seen", "@ann:hs") == {"PHONE": "k1", "TABLET": "k3"}
    assert (tmp_path / "trust.json").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trust.json", "trust.json.lock"]


def test_staged_keys_the_homeserver_holds_are_adopted_and_others_dropped(
    tmp_path: Path,
) -> None:
    """New keys wait in a staged file until uploaded: after a crash, the staged keys the
    homeserver already holds become the bot's; staged keys it never took are removed and
    the working keys stay."""
    working = CrossSigningKeys.generate(BOT)
    cross_signing.save_keys(tmp_path, working, None)
    staged = CrossSigningKeys.generate(BOT)
    cross_signing.save_keys(tmp_path, staged, None, name=cross_signing.STAGED_FILE)
    cross_signing.adopt_staged(tmp_path, working.public("master"), None)
    assert not (tmp_path / cross_signing.STAGED_FILE).exists()
    assert cross_signing.public_master(tmp_path) == working.public("master")
    cross_signing.save_keys(tmp_path, staged, None, name=cross_signing.STAGED_FILE)
    cross_signing.adopt_staged(tmp_path, staged.public("master"), None)
    assert not (tmp_path / cross_signing.STAGED_FILE).exists()
    assert cross_signing.public_master(tmp_path) == staged.public("master")
