"""The `connectors.slack` section, Slack operators and the Slack app's tokens: what loads,
and what each mistake is told, at its line, never showing a token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.acl import Acl, Grant, Role
from bot.config import Config, ConfigError, ConfigProblem, parse_config
from bot.config.checks.slack import kind_of
from connectors.slack.manifest import APP_SCOPE, BOT_EVENTS, bot_scopes

ROOT = Path(__file__).resolve().parents[4]
FILE = "fleetwarden.yaml"
CHANNEL, USER, GROUP = "C0123456789", "U0123ABCD", "S0123ABCD"
SLACK = (
    "connectors:\n"
    "  slack:\n"
    "    bot_token_env: FW_SLACK_BOT\n"
    "    app_token_env: FW_SLACK_APP\n"
    f"    channel_id: {CHANNEL}\n"
)
# Shaped like Slack's tokens (put together here, so no token-shaped string is in the
# source for a scanner to mistake for a leak); every test below checks no message carries them.
BOT_TOKEN = "-".join(("xoxb", "1111111111", "2222222222222", "BotTokenSecretPart0001"))
APP_TOKEN = "-".join(("xapp", "1", "A0123ABCDEF", "3333333333333", "AppTokenSecretPart0002"))
USER_TOKEN = "-".join(("xoxp", "1111111111", "4444444444", "UserTokenSecretPart0003"))
TOKENS = (BOT_TOKEN, APP_TOKEN, USER_TOKEN)
SECRET_PARTS = ("SecretPart", "1111111111", "3333333333333")


def parse(text: str, environ: dict[str, str] | None = None) -> Config:
    return parse_config(text, FILE, base_dir=Path("/srv/fw"), environ=environ)


def problems(text: str, environ: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, environ)
    found = list(caught.value.problems)
    said = str(caught.value) + "".join(repr(p) for p in found)
    assert not any(part in said for part in SECRET_PARTS), said
    return found


def test_a_minimal_section_runs_slack_in_socket_mode() -> None:
    """Socket mode, the top-level prefix, agent sessions on, Slack's own API, both token
    variables known to the redactor."""
    config = parse(SLACK)
    assert config.slack is not None and config.console is None
    assert (config.slack.mode, config.slack.channel_id) == ("socket", CHANNEL)
    assert config.slack.command_prefix is None and config.slack.agent_sessions
    assert config.slack.api_base == "https://slack.com/api/"
    assert config.slack.listen == "127.0.0.1:3100"
    assert {"FW_SLACK_BOT", "FW_SLACK_APP"} <= config.secret_env_names()


def test_enabled_false_keeps_it_off() -> None:
    """`enabled: false` keeps the section but runs no Slack connector."""
    assert parse(SLACK + "    enabled: false\n").slack is None


def test_http_mode_takes_a_signing_secret_and_a_listen_address() -> None:
    """http mode: the signing secret's variable and where the proxy forwards Slack's POSTs;
    no app-level token needed."""
    text = SLACK.replace("    app_token_env: FW_SLACK_APP\n", "") + (
        "    mode: http\n    signing_secret_env: FW_SLACK_SIGNING\n    listen: 127.0.0.1:3200\n"
    )
    config = parse(text)
    assert config.slack is not None and config.slack.listen == "127.0.0.1:3200"
    assert "FW_SLACK_SIGNING" in config.secret_env_names()


@pytest.mark.parametrize(
    ("drop", "mode", "needle"),
    [
        ("    app_token_env: FW_SLACK_APP\n", "", "socket mode needs `app_token_env`"),
        ("", "    mode: http\n", "http mode needs `signing_secret_env`"),
    ],
)
def test_each_mode_names_the_variable_it_lacks(drop: str, mode: str, needle: str) -> None:
    """Socket mode without app_token_env, http mode without signing_secret_env: said at the
    section's line with the key to add."""
    (problem,) = problems(SLACK.replace(drop, "") + mode if drop else SLACK + mode)
    assert (problem.line, problem.key_path) == (2, "connectors.slack")
    assert needle in problem.message


@pytest.mark.parametrize(
    ("line", "key", "needle"),
    [
        ("    channel_id: '#fleet'\n", "channel_id", "Slack channel id (like C0123456789"),
        ("    on_call: [alice]\n", "on_call", "Copy member ID"),
        ("    on_call: U0123ABCD\n", "on_call", "a list of Slack user ids"),
        ("    mode: websocket\n", "mode", "socket"),
        ("    listen: ':3100'\n", "listen", "HOST:PORT"),
        ("    listen: example.org:3100\n", "listen", "example.org"),
        ("    api_base: slack.com\n", "api_base", "http://"),
        ("    command_prefix: 'a b'\n", "command_prefix", "no spaces"),
        ("    agent_sessions: 'yes'\n", "agent_sessions", "true or false"),
    ],
)
def test_each_bad_value_is_named_at_its_line(line: str, key: str, needle: str) -> None:
    """Each bad value is one problem at its own line and key, saying what to write."""
    text = SLACK.replace(f"    channel_id: {CHANNEL}\n", "") if key == "channel_id" else SLACK
    (problem,) = problems(text + line)
    assert problem.key_path == f"connectors.slack.{key}"
    assert problem.line == text.count("\n") + 1
    assert needle in problem.message


@pytest.mark.parametrize(
    ("line", "key", "needle"),
    [
        (f"    bot_token: {BOT_TOKEN}\n", "bot_token", "bot_token_env"),
        (f"    signing_secret: {USER_TOKEN}\n", "signing_secret", "signing_secret_env"),
        (f"    channel_id: {BOT_TOKEN}\n", "channel_id", "a Slack token (not shown"),
        (f"    on_call: [{USER_TOKEN}]\n", "on_call", "a Slack token (not shown"),
    ],
)
def test_a_token_written_in_the_file_is_refused_and_never_echoed(
    line: str, key: str, needle: str
) -> None:
    """A token pasted as a key of its own or as a value: refused at its line, pointing at
    the *_env key, the token nowhere in what is said."""
    text = SLACK.replace(f"    channel_id: {CHANNEL}\n", "") if key == "channel_id" else SLACK
    (problem,) = problems(text + line)
    assert problem.key_path == f"connectors.slack.{key}"
    assert needle in problem.message


def test_a_token_as_the_variables_name_is_refused_unshown() -> None:
    """`bot_token_env: xoxb-…` (the token where its variable's name goes) is refused."""
    (problem,) = problems(SLACK.replace("FW_SLACK_BOT", BOT_TOKEN))
    assert problem.key_path == "connectors.slack.bot_token_env"
    assert "NAME of an environment variable" in problem.message


def test_operators_by_user_id_and_by_user_group() -> None:
    """A Slack user id and `usergroup:S…` both load as operator ids."""
    config = parse(
        "operators:\n"
        f"  - {{id: {USER}, role: admin}}\n"
        f"  - {{id: 'usergroup:{GROUP}', role: operator, connector: slack}}\n" + SLACK
    )
    assert [(op.id, op.connector) for op in config.operators] == [
        (USER, None),
        (f"usergroup:{GROUP}", "slack"),
    ]


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("usergroup:ops", "usergroup:S0123ABCD"),
        ("usergroup:U0123ABCD", "user group's id"),
        (BOT_TOKEN, "this is a Slack token, not a person's id"),
    ],
)
def test_a_bad_operator_id_is_said_at_its_line(entry: str, needle: str) -> None:
    """A user group written without its S… id, or a token pasted as an id: refused at the
    operator's line."""
    (problem,) = problems(f"operators:\n  - {{id: '{entry}', role: viewer}}\n" + SLACK)
    assert (problem.line, problem.key_path) == (2, "operators[0].id")
    assert needle in problem.message


def test_the_acl_matches_a_senders_user_groups_on_slack_only() -> None:
    """Someone in an operator user group gets its role on Slack; their own entry wins; the
    strongest group wins; a Slack-only grant means nothing on Discord."""
    acl = Acl(
        [
            Grant(USER, Role.VIEWER),
            Grant(f"usergroup:{GROUP}", Role.OPERATOR, "slack"),
            Grant("usergroup:S0999ADMIN", Role.ADMIN),
        ]
    )
    assert acl.role_of("slack", "U0999OTHER", [f"usergroup:{GROUP}"]) is Role.OPERATOR
    assert acl.role_of("slack", USER, [f"usergroup:{GROUP}"]) is Role.VIEWER
    both = [f"usergroup:{GROUP}", "usergroup:S0999ADMIN"]
    assert acl.role_of("slack", "U0999OTHER", both) is Role.ADMIN
    assert acl.role_of("discord", "U0999OTHER", [f"usergroup:{GROUP}"]) is None
    assert acl.role_of("slack", "U0999OTHER", ["usergroup:S0999NOONE"]) is None


def test_tokens_of_the_right_kinds_load() -> None:
    """A bot token in the bot's variable and an app-level token in the app's: loads."""
    config = parse(SLACK, {"FW_SLACK_BOT": f" {BOT_TOKEN}\n", "FW_SLACK_APP": APP_TOKEN})
    assert config.slack is not None


@pytest.mark.parametrize(
    ("environ", "key", "needles"),
    [
        (
            {"FW_SLACK_BOT": APP_TOKEN, "FW_SLACK_APP": APP_TOKEN},
            "bot_token_env",
            ["FW_SLACK_BOT holds an app-level token (xapp-…)", "starts xoxb-"],
        ),
        (
            {"FW_SLACK_BOT": BOT_TOKEN, "FW_SLACK_APP": BOT_TOKEN},
            "app_token_env",
            ["FW_SLACK_APP holds a bot token (xoxb-…)", "starts xapp-", "connections:write"],
        ),
        (
            {"FW_SLACK_BOT": USER_TOKEN, "FW_SLACK_APP": APP_TOKEN},
            "bot_token_env",
            ["FW_SLACK_BOT holds a user token (xoxp-…)", "Bot User OAuth Token"],
        ),
        (
            {"FW_SLACK_BOT": "hunter2-SecretPart", "FW_SLACK_APP": APP_TOKEN},
            "bot_token_env",
            ["FW_SLACK_BOT holds something that is no Slack token"],
        ),
        (
            {"FW_SLACK_APP": APP_TOKEN},
            "bot_token_env",
            ["environment variable FW_SLACK_BOT is not set", "xoxb-"],
        ),
        (
            {"FW_SLACK_BOT": BOT_TOKEN, "FW_SLACK_APP": "  "},
            "app_token_env",
            ["environment variable FW_SLACK_APP is empty", "xapp-"],
        ),
    ],
)
def test_a_token_of_the_wrong_kind_is_refused_naming_the_variable_not_the_value(
    environ: dict[str, str], key: str, needles: list[str]
) -> None:
    """At start: a token swapped for the other, a user token, a non-token, unset or empty:
    one problem at the key naming the variable, its kind and the start it needs."""
    (problem,) = problems(SLACK, environ)
    assert problem.key_path == f"connectors.slack.{key}"
    line = {"bot_token_env": 3, "app_token_env": 4}[key]
    assert problem.line == line
    for needle in needles:
        assert needle in problem.message


def test_http_mode_needs_the_signing_secret_set_not_the_app_token() -> None:
    """http mode checks the signing secret's variable and never asks for an app token."""
    text = SLACK.replace("    app_token_env: FW_SLACK_APP\n", "") + (
        "    mode: http\n    signing_secret_env: FW_SLACK_SIGNING\n"
    )
    (problem,) = problems(text, {"FW_SLACK_BOT": BOT_TOKEN})
    assert problem.key_path == "connectors.slack.signing_secret_env"
    assert "FW_SLACK_SIGNING is not set" in problem.message
    assert parse(text, {"FW_SLACK_BOT": BOT_TOKEN, "FW_SLACK_SIGNING": "abc"}).slack is not None


def test_the_kind_of_a_token_is_said_from_its_start_alone() -> None:
    """Each kind is told by its prefix, in words holding none of the token."""
    for token in TOKENS:
        words = kind_of(token)
        assert not any(part in words for part in SECRET_PARTS)
    assert kind_of("xoxe.xoxb-1-abc").startswith("a rotating token")


def test_the_guides_manifest_grants_what_the_check_asks_for() -> None:
    """docs/slack.md's manifest lists exactly the bot scopes and events the app needs,
    with Socket Mode and interactivity on: what `check-config --online` holds tokens to."""
    guide = (ROOT / "docs" / "slack.md").read_text(encoding="utf8")
    [manifest] = [
        yaml.safe_load(block)
        for block in re.findall(r"^```yaml\n(.*?)^```", guide, re.MULTILINE | re.DOTALL)
        if "oauth_config:" in block
    ]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == bot_scopes(agent_sessions=True)
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == BOT_EVENTS
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["token_rotation_enabled"] is False
    assert APP_SCOPE in guide
