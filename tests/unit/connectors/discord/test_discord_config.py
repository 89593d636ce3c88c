"""The `connectors.discord` section and Discord operators: what loads, and what each
mistake is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.acl import Acl, Grant, Role
from bot.config import Config, ConfigError, ConfigProblem, parse_config
from connectors.discord.config import API_BASE_ENV, DiscordConfig
from connectors.discord.gateway import point_at
from connectors.errors import ConnectorSetupError

FILE = "fleetwarden.yaml"
GUILD, CHANNEL, USER, ROLE = (
    "1100000000000000001",
    "1100000000000000002",
    "1100000000000000003",
    "1100000000000000004",
)
DISCORD = (
    "connectors:\n"
    "  discord:\n"
    "    token_env: FW_DISCORD_TOKEN\n"
    f"    guild_id: '{GUILD}'\n"
    f"    channel_id: '{CHANNEL}'\n"
)


def parse(text: str) -> Config:
    return parse_config(text, FILE, base_dir=Path("/srv/fw"))


def problems(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return list(caught.value.problems)


def test_a_minimal_section_runs_discord_with_defaults() -> None:
    config = parse(DISCORD)
    assert config.discord is not None and config.console is None
    assert (config.discord.guild_id, config.discord.channel_id) == (int(GUILD), int(CHANNEL))
    assert config.discord.command_prefix is None
    assert config.discord.thread_auto_archive_minutes == 1440
    assert config.discord.api_base == "https://discord.com/api/v10"
    assert "FW_DISCORD_TOKEN" in config.secret_env_names()


def test_enabled_false_keeps_it_off() -> None:
    assert parse(DISCORD + "    enabled: false\n").discord is None


def test_ids_may_be_numbers_too() -> None:
    config = parse(DISCORD.replace(f"'{GUILD}'", GUILD))
    assert config.discord is not None and config.discord.guild_id == int(GUILD)


@pytest.mark.parametrize(
    ("line", "key", "needle"),
    [
        ("    guild_id: 'my-server'\n", "guild_id", "Copy ID"),
        ("    channel_id: '#fleet'\n", "channel_id", "channel id"),
        ("    thread_auto_archive_minutes: 30\n", "thread_auto_archive_minutes", "1440"),
        ("    command_prefix: 'a b'\n", "command_prefix", "no spaces"),
        ("    api_base: discord.com\n", "api_base", "http://"),
        ("    gateway_url: http://127.0.0.1/\n", "gateway_url", "ws://"),
    ],
)
def test_each_bad_value_is_named(line: str, key: str, needle: str) -> None:
    text = DISCORD.replace(f"    {key}: '{GUILD}'\n", "").replace(f"    {key}: '{CHANNEL}'\n", "")
    (problem,) = problems(text + line)
    assert problem.key_path == f"connectors.discord.{key}"
    assert needle in problem.message


def test_the_token_itself_is_refused_and_never_echoed() -> None:
    (problem,) = problems(DISCORD + "    token: fake-discord-token-xyz\n")
    assert problem.key_path == "connectors.discord.token"
    assert "token_env" in problem.message
    assert "fake-discord-token-xyz" not in str(problem)


def test_operators_by_user_id_and_by_role() -> None:
    config = parse(
        "operators:\n"
        f"  - {{id: '{USER}', role: admin}}\n"
        f"  - {{id: 'role:{ROLE}', role: operator, connector: discord}}\n" + DISCORD
    )
    assert [op.id for op in config.operators] == [USER, f"role:{ROLE}"]


def test_a_role_operator_needs_a_role_id() -> None:
    (problem,) = problems("operators:\n  - {id: 'role:ops', role: viewer}\n" + DISCORD)
    assert problem.key_path == "operators[0].id"
    assert "role id" in problem.message


def test_a_person_wins_over_their_roles_and_the_strongest_role_wins() -> None:
    acl = Acl(
        [
            Grant(USER, Role.VIEWER),
            Grant(f"role:{ROLE}", Role.ADMIN, "discord"),
            Grant("role:7", Role.OPERATOR),
        ]
    )
    assert acl.role_of("discord", USER, [f"role:{ROLE}"]) is Role.VIEWER
    assert acl.role_of("discord", "42", ["role:7", f"role:{ROLE}"]) is Role.ADMIN
    assert acl.role_of("matrix", "42", [f"role:{ROLE}"]) is None  # that grant is Discord's
    assert acl.role_of("discord", "42", ["role:8"]) is None


def test_the_environment_overrides_the_endpoints() -> None:
    config = DiscordConfig(token_env="T", guild_id=GUILD, channel_id=CHANNEL)
    api, gateway = point_at(config, {API_BASE_ENV: "http://127.0.0.1:9/api/v10/"})
    assert (api, gateway) == ("http://127.0.0.1:9/api/v10", "wss://gateway.discord.gg/")
    with pytest.raises(ConnectorSetupError, match=API_BASE_ENV):
        point_at(config, {API_BASE_ENV: "ftp://example"})
    point_at(config, {})  # back to Discord's own
