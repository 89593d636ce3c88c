"""``fleetwarden matrix setup`` against a real Synapse: accounts, room, invite, snippet."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    LoginResponse,
    RoomGetStateEventResponse,
    SyncResponse,
)

from connectors.matrix.cli.setup import Credentials, SetupRequest, SetupResult, run_setup
from tests.synapse_server import SERVER_NAME, SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

FLEETWARDEN = Path(sys.executable).with_name("fleetwarden")
SECRET_ENV = "TEST_SYNAPSE_REGISTRATION_SECRET"
CLIENT_CONFIG = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0)
_GENERATED = re.compile(r"export FLEETWARDEN_MATRIX_PASSWORD='([^']+)'")


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def unique(name: str) -> str:
    """A user or alias name no other test on the shared server uses."""
    return f"{name}-{secrets.token_hex(4)}"


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without Fleetwarden's own variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWARDEN_")}
    return env | extra


async def fleetwarden(*args: str, env: dict[str, str], cwd: Path | None = None) -> Ran:
    """Run the real console script to completion."""
    proc = await asyncio.create_subprocess_exec(
        str(FLEETWARDEN),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


async def setup_cli(synapse: SynapseServer, *args: str, cwd: Path | None = None, **env: str) -> Ran:
    """``fleetwarden matrix setup`` on ``synapse`` with the shared secret in ``SECRET_ENV``."""
    environ = environment(**{SECRET_ENV: synapse.shared_secret}, **env)
    return await fleetwarden(
        "matrix", "setup", "--homeserver", synapse.base_url, *args, env=environ, cwd=cwd
    )


async def logged_in(synapse: SynapseServer, user: str, password: str) -> AsyncClient:
    """A nio client logged in with a password; the caller closes it."""
    client = AsyncClient(synapse.base_url, user, config=CLIENT_CONFIG)
    login = await client.login(password)
    assert isinstance(login, LoginResponse), login
    return client


async def admin_get(synapse: SynapseServer, token: str, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(synapse.base_url + path, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        reply: dict[str, Any] = await response.json()
        return reply


async def test_setup_registers_both_creates_the_room_and_prints_the_snippet(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    """One run: bot and operator registered, private encrypted room, invite, YAML snippet;
    the generated password is printed once, works, no other secret is printed, no file
    is written."""
    bot, operator, alias = unique("bot"), unique("alice"), unique("ops")
    ran = await setup_cli(
        synapse,
        *("--registration-secret-env", SECRET_ENV, "--bot-user", bot),
        *("--operator-user", operator, "--operator-password-env", "OP_PW"),
        *("--room-alias", alias, "--room-name", "Fleet ops"),
        cwd=tmp_path,
        OP_PW="operator-password-1",
    )
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []

    snippet = yaml.safe_load(ran.stdout)
    bot_id, operator_id = f"@{bot}:{SERVER_NAME}", f"@{operator}:{SERVER_NAME}"
    assert snippet == {
        "connectors": {
            "matrix": {
                "homeserver": synapse.base_url,
                "user_id": bot_id,
                "password_env": "FLEETWARDEN_MATRIX_PASSWORD",
                "rooms": [f"#{alias}:{SERVER_NAME}"],
            }
        },
        "operators": [{"id": operator_id, "role": "admin", "connector": "matrix"}],
    }
    passwords = _GENERATED.findall(ran.stderr)
    assert len(passwords) == 1 and ran.stderr.count(passwords[0]) == 1
    for secret in (synapse.shared_secret, "operator-password-1"):
        assert secret not in ran.stdout + ran.stderr

    client = await logged_in(synapse, bot, passwords[0])
    try:
        room = await client.room_resolve_alias(f"#{alias}:{SERVER_NAME}")
        room_id = room.room_id
        join_rules = await client.room_get_state_event(room_id, "m.room.join_rules")
        assert join_rules.content["join_rule"] == "invite"
        name = await client.room_get_state_event(room_id, "m.room.name")
        assert name.content["name"] == "Fleet ops"
        encryption = await client.room_get_state_event(room_id, "m.room.encryption")
        assert isinstance(encryption, RoomGetStateEventResponse), encryption
        assert encryption.content["algorithm"] == "m.megolm.v1.aes-sha2"
        member = await client.room_get_state_event(room_id, "m.room.member", operator_id)
        assert member.content["membership"] == "invite"
    finally:
        await client.close()


async def test_operator_sees_the_invite_and_can_join(synapse: SynapseServer) -> None:
    """The registered operator logs in with their password and finds the invite in sync."""
    bot, operator, alias = unique("bot"), unique("alice"), unique("ops")
    ran = await setup_cli(
        synapse,
        *("--registration-secret-env", SECRET_ENV, "--bot-user", bot),
        *("--bot-password-env", "BOT_PW", "--room-alias", alias),
        *("--operator-user", operator, "--operator-password-env", "OP_PW"),
        BOT_PW="bot-password-1",
        OP_PW="operator-password-1",
    )
    assert ran.returncode == 0, ran.stderr
    assert "export " not in ran.stderr  # a given password is never echoed

    client = await logged_in(synapse, operator, "operator-password-1")
    try:
        sync = await client.sync(timeout=0)
        assert isinstance(sync, SyncResponse), sync
        room_id = (await client.room_resolve_alias(f"#{alias}:{SERVER_NAME}")).room_id
        assert room_id in sync.rooms.invite
        assert isinstance(await client.join(room_id), JoinResponse)
    finally:
        await client.close()

    again = await setup_cli(
        synapse,
        *("--registration-secret-env", SECRET_ENV, "--bot-user", bot),
        *("--bot-password-env", "BOT_PW", "--room-alias", alias),
        *("--operator-user", operator, "--operator-password-env", "OP_PW"),
        BOT_PW="bot-password-1",
        OP_PW="operator-password-1",
    )
    assert again.returncode == 0, again.stderr
    assert "already joined" in again.stderr


async def test_running_twice_reuses_the_accounts_and_the_room(synapse: SynapseServer) -> None:
    """The second run finds bot, operator, room and invite, changes nothing, prints the same."""
    bot, operator, alias = unique("bot"), unique("alice"), unique("ops")
    args = (
        *("--registration-secret-env", SECRET_ENV, "--bot-user", bot),
        *("--bot-password-env", "BOT_PW", "--room-alias", alias),
        *("--operator-user", operator, "--operator-password-env", "OP_PW"),
    )
    first = await setup_cli(synapse, *args, BOT_PW="bot-pw", OP_PW="op-pw")
    second = await setup_cli(synapse, *args, BOT_PW="bot-pw", OP_PW="op-pw")
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert second.stdout == first.stdout

    def room_id(ran: Ran) -> str:
        match = re.search(r"= (!\S+): (created|already exists)", ran.stderr)
        assert match is not None, ran.stderr
        return match.group(1)

    assert room_id(second) == room_id(first)
    assert "created" in first.stderr and "already exists" in second.stderr
    assert "already registered, already invited" in second.stderr


async def test_admin_token_registers_and_lifts_the_rate_limit(synapse: SynapseServer) -> None:
    """With an admin token: users made through the v2 API, the rate limit lifted, then kept."""
    admin = await synapse.register_async(unique("admin"), "admin-pw", admin=True)
    bot, operator = unique("bot"), unique("alice")
    request = SetupRequest(
        homeserver=synapse.base_url,
        bot_localpart=bot,
        bot_user_id=None,
        bot_password_env="BOT_PW",
        admin_token_env="ADMIN_TOKEN",
        operator_localpart=operator,
        operator_password_env="OP_PW",
        room_alias=unique("ops"),
    )
    credentials = Credentials(
        bot_password="bot-pw",
        password_generated=False,
        admin_token=admin.access_token,
        operator_password="op-pw",
    )
    first = await run_setup(request, credentials)
    second = await run_setup(request, credentials)

    assert (first.bot, first.operator, first.room, first.invite, first.rate_limit) == (
        "registered",
        "registered",
        "created",
        "invited",
        "lifted",
    )
    assert (second.bot, second.operator, second.room, second.invite, second.rate_limit) == (
        "existing",
        "existing",
        "existing",
        "already invited",
        "already lifted",
    )
    assert second.room_id == first.room_id
    path = f"/_synapse/admin/v1/users/{first.bot_user_id}/override_ratelimit"
    assert await admin_get(synapse, admin.access_token, path) == {
        "messages_per_second": 0,
        "burst_count": 0,
    }
    user = await admin_get(
        synapse, admin.access_token, f"/_synapse/admin/v2/users/{first.bot_user_id}"
    )
    assert user["admin"] is False


async def test_without_admin_credentials_it_only_logs_in_creates_and_invites(
    synapse: SynapseServer,
) -> None:
    """The Conduit path: existing accounts, no admin API; the room and invite still happen."""
    bot = await synapse.register_async(unique("bot"), "bot-pw")
    operator = await synapse.register_async(unique("alice"), "op-pw")
    request = SetupRequest(
        homeserver=synapse.base_url,
        bot_localpart=bot.user_id[1:].split(":")[0],
        bot_user_id=bot.user_id,
        bot_password_env="BOT_PW",
        operator=operator.user_id,
        room_alias=unique("ops"),
    )
    result: SetupResult = await run_setup(
        request, Credentials(bot_password="bot-pw", password_generated=False)
    )
    assert (result.bot, result.operator, result.room, result.invite, result.rate_limit) == (
        "not registered",
        "not registered",
        "created",
        "invited",
        "not changed",
    )
    assert result.generated_password is None
    assert any("--admin-token-env" in note for note in result.notes)


async def test_a_missing_environment_variable_exits_2(synapse: SynapseServer) -> None:
    """An unset variable named by a flag: exit 2, one line naming it, nothing sent."""
    ran = await fleetwarden(
        *("matrix", "setup", "--homeserver", synapse.base_url),
        *("--registration-secret-env", "NO_SUCH_SECRET_VAR", "--bot-user", unique("bot")),
        env=environment(),
    )
    assert ran.returncode == 2
    assert ran.stdout == ""
    assert ran.stderr.strip().splitlines() == [
        "fleetwarden matrix setup: environment variable NO_SUCH_SECRET_VAR is not set "
        "(it should hold Synapse's registration_shared_secret)"
    ]


async def test_refusals_and_bad_usage_are_one_line_without_a_traceback(
    synapse: SynapseServer,
) -> None:
    """A wrong secret exits 1; an existing bot without its password and a missing
    --bot-password-env on the no-admin path exit 2; each says why in one line."""
    bot = unique("bot")
    wrong = await setup_cli(
        synapse,
        *("--registration-secret-env", "WRONG_SECRET", "--bot-user", bot),
        WRONG_SECRET="not-the-secret",
    )
    assert wrong.returncode == 1
    assert re.fullmatch(r"fleetwarden matrix setup: .*HMAC incorrect.*\n", wrong.stderr)

    await synapse.register_async(bot, "bot-pw")
    exists = await setup_cli(synapse, "--registration-secret-env", SECRET_ENV, "--bot-user", bot)
    assert exists.returncode == 2
    assert len(exists.stderr.splitlines()) == 1 and "--bot-password-env" in exists.stderr
    assert "export " not in exists.stderr  # no password is shown for an account not made

    no_admin = await setup_cli(synapse, "--bot-user", bot)
    assert no_admin.returncode == 2
    assert len(no_admin.stderr.splitlines()) == 1 and "--bot-password-env" in no_admin.stderr


async def test_an_invite_the_server_refuses_exits_1(synapse: SynapseServer) -> None:
    """An operator on a server this one may not federate with cannot be invited: exit 1."""
    ran = await setup_cli(
        synapse,
        *("--registration-secret-env", SECRET_ENV, "--bot-user", unique("bot")),
        *("--bot-password-env", "BOT_PW", "--room-alias", unique("ops")),
        *("--operator", "@someone:example.org"),
        BOT_PW="bot-pw",
    )
    assert ran.returncode == 1
    assert re.fullmatch(
        r"fleetwarden matrix setup: cannot invite @someone:example.org .*\n", ran.stderr
    )


async def test_the_snippet_is_a_valid_config(synapse: SynapseServer, tmp_path: Path) -> None:
    """What setup prints, saved as fleetwarden.yaml, passes `fleetwarden check-config`."""
    ran = await setup_cli(
        synapse,
        *("--registration-secret-env", SECRET_ENV, "--bot-user", unique("bot")),
        *("--bot-password-env", "BOT_PW", "--room-alias", unique("ops")),
        *("--operator-user", unique("alice"), "--operator-password-env", "OP_PW"),
        BOT_PW="bot-pw",
        OP_PW="op-pw",
    )
    assert ran.returncode == 0, ran.stderr
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n" + ran.stdout)
    checked = await fleetwarden(
        "check-config", "--config", str(config), env=environment(BOT_PW="bot-pw")
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "operators:  1" in checked.stdout


async def test_a_generated_password_is_shown_even_when_a_later_step_fails(
    synapse: SynapseServer,
) -> None:
    """The bot was registered, then the alias turned out to be another bot's private room:
    exit 1, and the password of the account just made is still shown, once, and works."""
    alias = unique("ops")
    first = await setup_cli(
        synapse,
        *("--registration-secret-env", SECRET_ENV, "--bot-user", unique("bot")),
        *("--bot-password-env", "BOT_PW", "--room-alias", alias),
        BOT_PW="bot-pw",
    )
    assert first.returncode == 0, first.stderr
    late = unique("bot")
    ran = await setup_cli(
        synapse,
        *("--registration-secret-env", SECRET_ENV, "--bot-user", late, "--room-alias", alias),
    )
    assert ran.returncode == 1
    assert ran.stderr.splitlines()[0].startswith("fleetwarden matrix setup: #")
    assert "which the bot cannot join" in ran.stderr
    passwords = _GENERATED.findall(ran.stderr)
    assert len(passwords) == 1 and ran.stderr.count(passwords[0]) == 1
    client = await logged_in(synapse, late, passwords[0])
    await client.close()
