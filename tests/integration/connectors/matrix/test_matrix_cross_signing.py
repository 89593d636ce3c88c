"""Cross-signing, as Element judges trust: the real `fleetwarden run` on a real Synapse signs
its own device with its own cross-signing keys, and trusts operators as people — every
device their identity signed — under `trust: verified` and `tofu`."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import nio
import pytest

from connectors.matrix.encryption.cross_signing import BotIdentity
from connectors.matrix.encryption.signing import CrossSigningKeys, UserIdentity, identities
from tests.integration.connectors.matrix.test_matrix_bot import (
    PASSWORD,
    BotProcess,
    serving,
)
from tests.integration.connectors.matrix.test_matrix_e2ee import Encrypted, ask, cli, joined
from tests.integration.connectors.matrix.test_matrix_e2ee import (
    encrypted_world as encrypted_world,  # the fixture
)
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.matrix_e2ee_user import EncryptedUser
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

UPLOAD = "/_matrix/client/v3/keys/device_signing/upload"


async def post(homeserver: str, token: str, path: str, body: dict[str, Any]) -> Any:
    """One authenticated JSON POST, as a client would make it; the parsed answer."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            homeserver + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return await response.json(content_type=None)


async def query(homeserver: str, token: str, user: str) -> dict[str, Any]:
    answer = await post(
        homeserver, token, "/_matrix/client/v3/keys/query", {"device_keys": {user: []}}
    )
    assert isinstance(answer, dict), answer
    return answer


async def publish_identity(homeserver: str, person: EncryptedUser) -> CrossSigningKeys:
    """Give ``person`` new cross-signing keys (answering the password prompt if they had
    some) and sign their device with them, as Element does at first login."""
    keys = CrossSigningKeys.generate(person.user_id)
    token = str(person.client.access_token)
    body = keys.upload_body()
    answer = await post(homeserver, token, UPLOAD, body)
    if isinstance(answer, dict) and "flows" in answer:
        body["auth"] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": person.user_id},
            "password": PASSWORD,
            "session": answer["session"],
        }
        answer = await post(homeserver, token, UPLOAD, body)
    assert answer == {}, answer
    await sign_device(homeserver, person, keys, str(person.client.device_id))
    return keys


async def sign_device(
    homeserver: str, person: EncryptedUser, keys: CrossSigningKeys, device_id: str
) -> None:
    token = str(person.client.access_token)
    device = (await query(homeserver, token, person.user_id))["device_keys"][person.user_id][
        device_id
    ]
    device.pop("unsigned", None)
    answer = await post(
        homeserver,
        token,
        "/_matrix/client/v3/keys/signatures/upload",
        {person.user_id: {device_id: keys.sign_device(device)}},
    )
    assert not answer.get("failures"), answer


async def second_device(
    synapse: SynapseServer, person: EncryptedUser, store: Path
) -> EncryptedUser:
    """``person`` logged in again: a new device with its own keys."""
    answer = await post(
        synapse.base_url,
        "",
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": person.user_id},
            "password": PASSWORD,
        },
    )
    user = EncryptedUser(
        synapse.base_url, person.user_id, answer["device_id"], answer["access_token"], store
    )
    await user.sync_once(0)  # uploads its device keys
    return user


def bots_identity(answer: dict[str, Any], bot: str) -> tuple[UserIdentity, dict[str, Any]]:
    identity = identities(answer)[bot]
    ((device,),) = [list(answer["device_keys"][bot].values())]
    return identity, device


def uploads(synapse: SynapseServer, bot: str) -> int:
    return sum(
        1
        for entry in synapse.access_log()
        if entry.path == UPLOAD and entry.user == bot and entry.status == 200
    )


def key_file(deployment: Encrypted) -> Path:
    return deployment.crypto_dir() / "cross_signing.json"


def start(deployment: Encrypted, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(FLEETWARDEN), "run", "--config", str(deployment.config())],
        cwd=deployment.workdir,
        env=clean_env(FW_BOT_PASSWORD=PASSWORD, **env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
async def running(encrypted_world: Encrypted) -> AsyncIterator[BotProcess]:
    async with serving(encrypted_world) as process:
        yield process


async def test_the_bot_signs_its_own_device_and_keeps_its_keys_over_a_restart(
    synapse: SynapseServer,
    encrypted_world: Encrypted,
    running: BotProcess,
) -> None:
    """The bot's device is signed by its own self-signing key; a restart reuses the keys
    (no second upload); `matrix device` shows the master key and that it is cross-signed."""
    op = encrypted_world.operator
    await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
    token = str(op.client.access_token)
    identity, device = bots_identity(
        await query(encrypted_world.homeserver, token, encrypted_world.bot), encrypted_world.bot
    )
    assert identity.signs_device(device)
    path = key_file(encrypted_world)
    assert path.stat().st_mode & 0o777 == 0o600
    saved = path.read_text()
    assert json.loads(saved)["public"]["master"] == identity.master_key
    assert uploads(synapse, encrypted_world.bot) == 1
    running.terminate()
    again = BotProcess(encrypted_world)
    try:
        reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert reply.event_id in op.decrypted
        after, device = bots_identity(
            await query(encrypted_world.homeserver, token, encrypted_world.bot), encrypted_world.bot
        )
        assert after.master_key == identity.master_key and after.signs_device(device)
        assert path.read_text() == saved
        assert uploads(synapse, encrypted_world.bot) == 1
        shown = await asyncio.to_thread(cli, encrypted_world, "matrix", "device")
        assert shown.returncode == 0, shown.stderr
        grouped = " ".join(identity.master_key[i : i + 4] for i in range(0, 43, 4))
        assert f"master key:  {grouped}" in shown.stdout
        assert "cross-signed: yes" in shown.stdout
    finally:
        again.kill()


async def test_a_lost_key_file_resets_the_identity_and_says_so(
    encrypted_world: Encrypted,
    running: BotProcess,
) -> None:
    """The key file is gone but the homeserver has the old master key: with a password
    login the bot makes new keys (answering the password prompt) and tells the room."""
    op = encrypted_world.operator
    await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
    token = str(op.client.access_token)
    before, _ = bots_identity(
        await query(encrypted_world.homeserver, token, encrypted_world.bot), encrypted_world.bot
    )
    running.terminate()
    key_file(encrypted_world).unlink()
    again = BotProcess(encrypted_world)
    try:
        said = await op.wait_for(
            lambda evs: [
                e for e in evs if e.sender == encrypted_world.bot and "identity changed" in e.body
            ],
            within=60,
        )
        assert said[0].event_id in op.decrypted
        after, device = bots_identity(
            await query(encrypted_world.homeserver, token, encrypted_world.bot), encrypted_world.bot
        )
        assert after.master_key != before.master_key and after.signs_device(device)
        assert (
            json.loads(key_file(encrypted_world).read_text())["public"]["master"]
            == after.master_key
        )
    finally:
        again.kill()


async def test_a_new_device_after_a_lost_store_is_signed_with_the_kept_keys(
    synapse: SynapseServer,
    encrypted_world: Encrypted,
    running: BotProcess,
) -> None:
    """The crypto store is lost but `cross_signing.json` kept: the bot's new device is
    signed by the same identity, with no new upload of keys."""
    op = encrypted_world.operator
    await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
    token = str(op.client.access_token)
    before, old = bots_identity(
        await query(encrypted_world.homeserver, token, encrypted_world.bot), encrypted_world.bot
    )
    running.terminate()
    (store,) = encrypted_world.crypto_dir().glob("*.db")
    store.unlink()
    again = BotProcess(encrypted_world)
    try:
        await op.wait_for(
            lambda evs: [
                e for e in evs if e.sender == encrypted_world.bot and "new device" in e.body
            ],
            within=60,
        )
        answer = await query(encrypted_world.homeserver, token, encrypted_world.bot)
        identity = identities(answer)[encrypted_world.bot]
        devices = answer["device_keys"][encrypted_world.bot]
        new = [d for d in devices.values() if d["device_id"] != old["device_id"]]
        assert identity.master_key == before.master_key
        assert len(new) == 1 and identity.signs_device(new[0])
        assert uploads(synapse, encrypted_world.bot) == 1
        assert not [e for e in op.events if "identity changed" in e.body]
    finally:
        again.kill()


async def test_sealed_keys_need_their_passphrase(
    encrypted_world: Encrypted,
) -> None:
    """With store_passphrase_env the key file holds no seed in clear; a file sealed with
    another passphrase stops the start with what to do, and no secret in the log."""
    encrypted_world.extra.append("store_passphrase_env: FW_STORE_PASS")
    process = start(encrypted_world, FW_STORE_PASS="correct horse")
    try:
        await joined(encrypted_world.operator, encrypted_world.room, encrypted_world.bot)
        await ask(encrypted_world.operator, encrypted_world.room, "!whoami", encrypted_world.bot)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    body = json.loads(key_file(encrypted_world).read_text())
    assert "seeds" not in body and body["sealed"]["kdf"] == "argon2id"
    other = CrossSigningKeys.generate(encrypted_world.bot).sealed("battery staple")
    key_file(encrypted_world).write_text(json.dumps(other))
    failed = start(encrypted_world, FW_STORE_PASS="correct horse")
    _, err = failed.communicate(timeout=60)
    assert failed.returncode != 0
    text = err.decode()
    assert "cross-signing keys" in text and "another passphrase" in text, text
    assert "cross-sign --reset" in text
    assert "correct horse" not in text and PASSWORD not in text


async def test_with_a_token_login_a_foreign_master_key_waits_for_the_cli(
    encrypted_world: Encrypted,
) -> None:
    """An access-token login cannot answer the password prompt: the bot keeps serving,
    says `fleetwarden matrix cross-sign` must be run; the CLI then signs its device, and
    the running bot tells the room its identity changed. A reset the homeserver refuses (a
    wrong password) leaves the working keys as they were."""
    synapse_token = await post(
        encrypted_world.homeserver,
        "",
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": encrypted_world.bot},
            "password": PASSWORD,
        },
    )
    token = synapse_token["access_token"]
    foreign = CrossSigningKeys.generate(encrypted_world.bot)
    assert await post(encrypted_world.homeserver, token, UPLOAD, foreign.upload_body()) == {}
    config = encrypted_world.config()
    config.write_text(
        config.read_text().replace("password_env: FW_BOT_PASSWORD", "access_token_env: FW_TOKEN")
    )
    encrypted_world.config = lambda: config  # type: ignore[method-assign]
    op = encrypted_world.operator
    process = start(encrypted_world, FW_TOKEN=token)
    try:
        said = await op.wait_for(
            lambda evs: [
                e for e in evs if e.sender == encrypted_world.bot and "cross-sign" in e.body
            ],
            within=60,
        )
        assert said[0].event_id in op.decrypted
        reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)  # still serving
        assert reply.event_id in op.decrypted

        def cross_sign(password: str, *reset: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    str(FLEETWARDEN),
                    *("matrix", "cross-sign", "--config", str(config), *reset),
                    *("--password-env", "FW_BOT_PASSWORD"),
                ],
                cwd=encrypted_world.workdir,
                env=clean_env(FW_BOT_PASSWORD=password, FW_TOKEN=token),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
            )

        done = await asyncio.to_thread(cross_sign, PASSWORD)
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        optoken = str(op.client.access_token)
        after, device = bots_identity(
            await query(encrypted_world.homeserver, optoken, encrypted_world.bot),
            encrypted_world.bot,
        )
        assert after.master_key != foreign.public("master") and after.signs_device(device)
        assert after.master_key in done.stdout.replace(" ", "")
        told = await op.wait_for(
            lambda evs: [
                e for e in evs if e.sender == encrypted_world.bot and "identity changed" in e.body
            ],
            within=30,
        )
        assert told[0].event_id in op.decrypted
        kept = key_file(encrypted_world).read_text()
        refused = await asyncio.to_thread(cross_sign, "not the password", "--reset")
        assert refused.returncode != 0
        assert "not the password" not in refused.stdout + refused.stderr
        assert key_file(encrypted_world).read_text() == kept
        assert not (key_file(encrypted_world).parent / "cross_signing.new.json").exists()
        still, _ = bots_identity(
            await query(encrypted_world.homeserver, optoken, encrypted_world.bot),
            encrypted_world.bot,
        )
        assert still.master_key == after.master_key
    finally:
        process.terminate()
        process.communicate(timeout=30)


async def test_a_verified_identity_brings_its_new_signed_devices_and_refuses_unsigned_ones(
    synapse: SynapseServer,
    encrypted_world: Encrypted,
) -> None:
    """`trust: verified` with the operator's identity verified by its master key: a new
    device they signed reads the bot's answers with no shell step; a device they never
    signed is refused and the room is told."""
    op = encrypted_world.operator
    keys = await publish_identity(encrypted_world.homeserver, op)
    bad = await asyncio.to_thread(cli, encrypted_world, "matrix", "trust", op.user_id, "not-a-key")
    assert bad.returncode != 0 and "master key" in bad.stderr
    master = " ".join(keys.public("master")[i : i + 4] for i in range(0, 43, 4))
    done = await asyncio.to_thread(cli, encrypted_world, "matrix", "trust", op.user_id, master)
    assert done.returncode == 0, done.stderr
    encrypted_world.extra.append("trust: verified")
    process = BotProcess(encrypted_world)
    phone = laptop = None
    try:
        await joined(op, encrypted_world.room, encrypted_world.bot)
        reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert reply.event_id in op.decrypted
        phone = await second_device(synapse, op, encrypted_world.workdir / "phone")
        await sign_device(encrypted_world.homeserver, op, keys, str(phone.client.device_id))
        answer = await ask(phone, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert answer.event_id in phone.decrypted and "operator" in answer.body
        laptop = await second_device(synapse, op, encrypted_world.workdir / "laptop")
        said = await op.wait_for(
            lambda evs: [
                e
                for e in evs
                if e.sender == encrypted_world.bot
                and "Not signed" in e.body
                and str(laptop.client.device_id) in e.body
            ],
            within=60,
        )
        notice = said[0].event_id
        assert notice not in op.decrypted  # in clear, so that the refused device reads it
        await laptop.wait_for(
            lambda evs: any(e.event_id == notice and "Not signed" in e.body for e in evs)
        )
        later = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        await laptop.wait_for(lambda evs: any(e.event_id == later.event_id for e in evs))
        assert later.event_id in laptop.unreadable
    finally:
        process.kill()
        for extra in (phone, laptop):
            if extra is not None:
                await extra.close()


async def test_an_identity_the_bots_user_signing_key_signed_is_verified(
    encrypted_world: Encrypted,
) -> None:
    """`trust: verified`: an operator whose master key carries the bot's user-signing
    signature (what `BotIdentity.sign_user` uploads after an emoji verification) is
    trusted with no trust.json entry."""
    op = encrypted_world.operator
    await publish_identity(encrypted_world.homeserver, op)
    encrypted_world.extra.append("trust: verified")
    process = BotProcess(encrypted_world)
    try:
        await joined(
            op, encrypted_world.room, encrypted_world.bot
        )  # its keys are made before it joins
    finally:
        process.kill()
    session = json.loads(
        (encrypted_world.workdir / "state" / "matrix" / "session.json").read_text()
    )
    bot = nio.AsyncClient(encrypted_world.homeserver, encrypted_world.bot)
    bot.restore_login(encrypted_world.bot, session["device_id"], session["access_token"])
    try:
        identity = BotIdentity(bot, encrypted_world.crypto_dir(), None)
        assert identity.keys is not None
        answer = await query(encrypted_world.homeserver, session["access_token"], op.user_id)
        await identity.sign_user(identities(answer)[op.user_id])
        usk = identity.user_signing_public()
    finally:
        await bot.close()
    # Only the signer sees its user-signing signatures (the spec; Synapse keeps to it).
    answer = await query(encrypted_world.homeserver, session["access_token"], op.user_id)
    assert usk is not None and identities(answer)[op.user_id].signed_by(encrypted_world.bot, usk)
    again = BotProcess(encrypted_world)
    try:
        reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert reply.event_id in op.decrypted and "operator" in reply.body
        trust = json.loads((encrypted_world.crypto_dir() / "trust.json").read_text())
        assert op.user_id not in trust.get("identities", {})
    finally:
        again.kill()


async def test_tofu_pins_the_master_key_and_refuses_a_changed_one(
    encrypted_world: Encrypted,
) -> None:
    """`tofu`: the operator's master key is pinned when first seen; after they reset their
    identity their devices are refused and the room is told, until an admin accepts the
    new master key with `fleetwarden matrix trust USER MASTER_KEY`."""
    op, viewer = encrypted_world.operator, encrypted_world.viewer
    await publish_identity(encrypted_world.homeserver, op)
    process = BotProcess(encrypted_world)
    try:
        await joined(op, encrypted_world.room, encrypted_world.bot)
        reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert reply.event_id in op.decrypted
        trust = json.loads((encrypted_world.crypto_dir() / "trust.json").read_text())
        assert op.user_id in trust["pinned"]
        renewed = await publish_identity(encrypted_world.homeserver, op)
        said = await viewer.wait_for(
            lambda evs: [
                e for e in evs if e.sender == encrypted_world.bot and "Identity changed" in e.body
            ],
            within=60,
        )
        assert op.user_id in said[0].body
        sent = await op.say(encrypted_world.room, "!whoami")
        refused = await viewer.wait_for(
            lambda evs: [
                e for e in evs if e.sender == encrypted_world.bot and "Not taken" in e.body
            ],
            within=40,
        )
        assert op.user_id in refused[0].body
        assert not [e for e in viewer.events if e.reply_to == sent]
        done = await asyncio.to_thread(
            cli, encrypted_world, "matrix", "trust", op.user_id, renewed.public("master")
        )
        assert done.returncode == 0, done.stderr
        again = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert again.event_id in op.decrypted
    finally:
        process.kill()


async def test_users_without_cross_signing_keep_per_device_tofu(
    encrypted_world: Encrypted,
    running: BotProcess,
) -> None:
    """An operator whose client publishes no cross-signing keys is trusted per device, as
    before: nothing is pinned for them."""
    reply = await ask(
        encrypted_world.operator, encrypted_world.room, "!whoami", encrypted_world.bot
    )
    assert reply.event_id in encrypted_world.operator.decrypted
    trust = json.loads((encrypted_world.crypto_dir() / "trust.json").read_text())
    assert encrypted_world.operator.user_id not in trust.get("pinned", {})
    assert encrypted_world.operator.user_id in trust["seen"]
