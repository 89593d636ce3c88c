"""Interactive SAS verification of an operator by the real `fleetwarden run` on a real
Synapse: the operator's client starts it, an admin compares the emojis with
`fleetwarden matrix verify`, and the bot signs the operator's master key."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.matrix.encryption.cross_signing import KEY_FILE as FILE
from connectors.matrix.encryption.signing import CrossSigningKeys, identities, verified
from connectors.matrix.verification.sas import SasVerification, State
from tests.integration.connectors.matrix.test_matrix_bot import (
    PASSWORD,
    BotProcess,
    _stop_stray_agents,
    serving,
)
from tests.integration.connectors.matrix.test_matrix_e2ee import Encrypted, cli, joined
from tests.integration.console_bot import ConsoleBot, clean_env
from tests.matrix_sas_user import SasOperator, keys_of, publish_cross_signing
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]


async def sas_person(synapse: SynapseServer, name: str, store: Path) -> SasOperator:
    made = await synapse.register_async(f"{name}{uuid.uuid4().hex[:8]}", PASSWORD)
    user = SasOperator(synapse.base_url, made.user_id, made.device_id, made.access_token, store)
    await user.sync_once(0)  # uploads its device keys
    await user.cross_sign(PASSWORD)
    return user


@pytest.fixture
async def cross_signed_world(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[Encrypted]:
    """An encrypted room with a cross-signed operator, a stranger and a viewer, and a bot
    account whose cross-signing keys are published and in its crypto store."""
    bot = await synapse.register_async(f"bot{uuid.uuid4().hex[:8]}", PASSWORD)
    bot_keys = CrossSigningKeys.generate(bot.user_id)
    await publish_cross_signing(synapse.base_url, bot.access_token, bot_keys, PASSWORD)
    operator = await sas_person(synapse, "ann", tmp_path / "ann")
    stranger = await sas_person(synapse, "mallory", tmp_path / "mallory")
    viewer = await sas_person(synapse, "vic", tmp_path / "vic")
    room = await operator.create_room(invite=(bot.user_id, stranger.user_id, viewer.user_id))
    await stranger.join(room)
    await viewer.join(room)
    made = Encrypted(synapse.base_url, bot.user_id, room, operator, stranger, viewer, tmp_path)
    made.crypto_dir().mkdir(parents=True, mode=0o700)
    (made.crypto_dir() / FILE).write_text(json.dumps(bot_keys.sealed(None)))
    made.bot_keys = bot_keys  # type: ignore[attr-defined]
    made.bot_token = bot.access_token  # type: ignore[attr-defined]
    yield made
    for user in (operator, stranger, viewer):
        await user.close()
    _stop_stray_agents(tmp_path)


@pytest.fixture
async def sas_bot(cross_signed_world: Encrypted) -> AsyncIterator[BotProcess]:
    async with serving(cross_signed_world) as process:
        yield process


async def listed(world: Encrypted, within: float = 30.0) -> tuple[str, list[str]]:
    """Poll `fleetwarden matrix verify` until it lists emojis: (id, emoji names)."""
    deadline = time.monotonic() + within
    while True:
        shown = cli(world, "matrix", "verify")
        assert shown.returncode == 0, shown.stderr
        found = re.search(r"^(\w{6}) .*\n  emojis: +(.*)$", shown.stdout, re.M)
        if found:
            names = re.findall(r"\S+ (\w[\w ]*?)(?=   |$)", found.group(2))
            return found.group(1), names
        assert time.monotonic() < deadline, shown.stdout
        await world.operator.sync_once(200)


async def master_signed_by_bot(world: Encrypted) -> bool:
    """Whether the operator's master key carries the bot's user-signing signature (only
    the signer sees that signature: the bot's account asks)."""
    token: str = world.bot_token  # type: ignore[attr-defined]
    answer = await keys_of(world.homeserver, token, world.operator.user_id)
    identity = identities(answer).get(world.operator.user_id)
    keys: CrossSigningKeys = world.bot_keys  # type: ignore[attr-defined]
    return identity is not None and verified(
        identity.master, world.bot, keys.public("user_signing")
    )


async def confirm_through_cli(world: Encrypted, machine: SasVerification) -> None:
    op = world.operator
    assert isinstance(op, SasOperator)
    await op.drive(machine, lambda m: m.state is State.COMPARING)
    vid, names = await listed(world)
    assert machine.code is not None
    assert names == [name for _, name in machine.code.emojis]
    answered = cli(world, "matrix", "verify", vid, "yes")
    assert answered.returncode == 0 and "confirmed" in answered.stdout, answered.stderr
    await op.send(machine, machine.confirm())
    await op.drive(machine, lambda m: m.state is State.DONE)


async def test_to_device_sas_confirmed_through_the_cli_signs_the_operators_identity(
    cross_signed_world: Encrypted, sas_bot: BotProcess
) -> None:
    """Verification by to-device events: same emojis on both sides, the admin's yes, the
    operator's master key signed by the bot's user-signing key and recorded as trusted;
    the bot's MAC vouched for its device and its master key."""
    op = cross_signed_world.operator
    assert isinstance(op, SasOperator)
    them = await op.bot_party(cross_signed_world.bot)
    machine = await op.request_to_device(them)
    await confirm_through_cli(cross_signed_world, machine)
    assert machine.verified_keys == dict(them.keys) and len(them.keys) == 2
    deadline = time.monotonic() + 20
    while not await master_signed_by_bot(cross_signed_world):
        assert time.monotonic() < deadline, "the bot never signed the operator's master key"
        await op.sync_once(200)
    trust = json.loads((cross_signed_world.crypto_dir() / "trust.json").read_text())
    assert trust["identities"][op.user_id]["master"] == op.cross.public("master")
    assert cli(cross_signed_world, "matrix", "verify").stdout.startswith(
        "No verification is waiting"
    )


@pytest.mark.parametrize("policy", ["tofu", "verified"])
async def test_in_room_sas_in_a_new_dm_as_element_verifies_a_user(
    cross_signed_world: Encrypted, policy: str, synapse: SynapseServer
) -> None:
    """Element's "Verify user": it makes an encrypted DM with the bot and sends the request
    there before the bot has joined; the related events that follow end the same way, are
    never taken as commands, and under `trust: verified` reach a device not yet trusted."""
    cross_signed_world.extra = [f"trust: {policy}"]
    op = cross_signed_world.operator
    assert isinstance(op, SasOperator)
    process = BotProcess(cross_signed_world)
    try:
        await joined(op, cross_signed_world.room, cross_signed_world.bot)
        them = await op.bot_party(cross_signed_world.bot)
        dm = await op.create_room(invite=(cross_signed_world.bot,))
        machine = await op.request_in_room(dm, them)
        await confirm_through_cli(cross_signed_world, machine)
        deadline = time.monotonic() + 20
        while not await master_signed_by_bot(cross_signed_world):
            assert time.monotonic() < deadline
            await op.sync_once(200)
        said = [
            e.body
            for e in op.events
            if e.sender == cross_signed_world.bot and e.type == "m.room.message"
        ]
        refusals = ("Identity not verified:", "Not verified:", "Not taken:")  # trust notices
        replies = [line for line in said if not line.startswith(refusals)]
        assert not any("verif" in line.lower() for line in replies), said
    finally:
        process.kill()


async def test_a_mismatch_cancels_and_signs_nothing(
    cross_signed_world: Encrypted, sas_bot: BotProcess
) -> None:
    """The admin's no cancels with m.mismatched_sas; nothing is signed or recorded."""
    op = cross_signed_world.operator
    assert isinstance(op, SasOperator)
    machine = await op.request_to_device(await op.bot_party(cross_signed_world.bot))
    await op.drive(machine, lambda m: m.state is State.COMPARING)
    vid, _ = await listed(cross_signed_world)
    assert cli(cross_signed_world, "matrix", "verify", vid, "no").returncode == 0
    await op.drive(machine, lambda m: m.state is State.CANCELLED)
    assert machine.cancel_code == "m.mismatched_sas"
    assert not await master_signed_by_bot(cross_signed_world)
    trust_file = cross_signed_world.crypto_dir() / "trust.json"
    trust = json.loads(trust_file.read_text()) if trust_file.exists() else {}
    assert op.user_id not in trust.get("identities", {})


async def test_a_strangers_request_is_refused(
    cross_signed_world: Encrypted, sas_bot: BotProcess
) -> None:
    """A user without a role gets m.user at once; no emojis are shown to the admin."""
    stranger = cross_signed_world.stranger
    assert isinstance(stranger, SasOperator)
    machine = await stranger.request_to_device(await stranger.bot_party(cross_signed_world.bot))
    await stranger.drive(machine, lambda m: m.state is State.CANCELLED)
    assert machine.cancel_code == "m.user" and machine.code is None
    assert cli(cross_signed_world, "matrix", "verify").stdout.startswith(
        "No verification is waiting"
    )


async def test_a_request_sent_before_the_bot_joined_is_answered(
    cross_signed_world: Encrypted, sas_bot: BotProcess
) -> None:
    """A request already in the room when the bot joins it (history before the join is
    otherwise ignored) is answered."""
    op = cross_signed_world.operator
    assert isinstance(op, SasOperator)
    them = await op.bot_party(cross_signed_world.bot)
    dm = await op.create_room(encrypted=False)
    machine = await op.request_in_room(dm, them)
    await op.invite(dm, cross_signed_world.bot)
    await confirm_through_cli(cross_signed_world, machine)
    assert machine.state is State.DONE


async def test_the_console_shows_the_emojis_and_its_admin_confirms(
    cross_signed_world: Encrypted,
) -> None:
    """With a console beside Matrix, the emojis are posted there and `verify ID yes` typed
    on it completes the verification."""
    op = cross_signed_world.operator
    assert isinstance(op, SasOperator)
    config = cross_signed_world.config()
    config.write_text(config.read_text().replace("connectors:\n", "connectors:\n  console: {}\n"))
    bot = ConsoleBot(
        cross_signed_world.workdir, "--config", str(config), env=clean_env(FW_BOT_PASSWORD=PASSWORD)
    )
    try:
        await joined(op, cross_signed_world.room, cross_signed_world.bot)
        machine = await op.request_to_device(await op.bot_party(cross_signed_world.bot))
        await op.drive(machine, lambda m: m.state is State.COMPARING)
        assert machine.code is not None
        shown = bot.expect(r"Verification (\w{6}): .* asks to verify\. Compare .*: (.*) — then")
        assert shown.group(2) == machine.code.line()
        bot.command(f"verify {shown.group(1)} yes", r"confirmed")
        await op.send(machine, machine.confirm())
        await op.drive(machine, lambda m: m.state is State.DONE)
        bot.expect(rf"{re.escape(op.user_id)} is verified")
    finally:
        bot.kill()
