"""The `connectors.matrix` section: what it accepts and how it says what is wrong."""

from __future__ import annotations

import pytest

from tests.unit.bot.config.test_config import only_problem, parse

BASE = (
    "connectors:\n"
    "  matrix:\n"
    "    homeserver: http://127.0.0.1:8008/\n"
    "    user_id: '@fleetwarden:localhost'\n"
)


def test_a_full_matrix_section_loads() -> None:
    """A valid section becomes Config.matrix, the URL without its trailing slash."""
    config = parse(BASE + "    password_env: BOT_PASSWORD\n    rooms: ['#ops:localhost']\n")
    assert config.matrix is not None
    assert config.matrix.homeserver == "http://127.0.0.1:8008"
    assert config.matrix.rooms == ("#ops:localhost",)
    assert config.console is None  # a configured deployment runs only what it lists
    assert config.secret_env_names() == {"BOT_PASSWORD"}


def test_disabled_matrix_does_not_run() -> None:
    """`enabled: false` keeps the section but turns the connector off."""
    config = parse(BASE + "    access_token_env: BOT_TOKEN\n    enabled: false\n")
    assert config.matrix is None


@pytest.mark.parametrize(
    "credentials", ["", "    access_token_env: A\n    password_env: B\n"], ids=["none", "both"]
)
def test_exactly_one_credential_is_required(credentials: str) -> None:
    """Neither or both of access_token_env / password_env is one clear problem."""
    problem = only_problem(BASE + credentials)
    assert problem.key_path == "connectors.matrix"
    assert "set exactly one of access_token_env or password_env" in problem.message


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("    homeserver: matrix.example.org\n", "homeserver", "http:// or https:// URL"),
        ("    user_id: fleetwarden\n", "user_id", "Matrix user id like @bot:example.org"),
        ("    rooms: [ops]\n", "rooms", "room id like !abc:example.org"),
        ("    command_prefix: '! '\n", "command_prefix", "1-8 characters with no spaces"),
        ("    on_call: [ann]\n", "on_call", "Matrix user ids like @alice:example.org"),
        ("    alerts: {'#ops:hs': text}\n", "alerts", "per room id like !abc:example.org"),
        ("    alerts: {'!ops:hs': loud}\n", "alerts", "allowed: mention, text, notice"),
    ],
)
def test_malformed_values_name_the_key_and_the_form(line: str, key: str, expected: str) -> None:
    """Each malformed value is reported at its key with the form it should have."""
    text = BASE.replace(f"    {key}:", "    _old:") if key in BASE else BASE
    text = "\n".join(x for x in text.splitlines() if "_old:" not in x) + "\n"
    problem = only_problem(text + "    access_token_env: BOT_TOKEN\n" + line)
    assert problem.key_path.startswith(f"connectors.matrix.{key}")
    assert expected in problem.message
    assert problem.line is not None and problem.line >= 3


def test_a_literal_token_in_the_file_is_refused() -> None:
    """`access_token:` with the secret itself points to access_token_env instead."""
    problem = only_problem(BASE + "    access_token: fake-matrix-token-value\n")
    assert "access_token_env" in problem.message
    assert "fake-matrix-token-value" not in str(problem)


def test_matrix_operators_may_be_scoped_to_the_connector() -> None:
    """An operator entry may name the matrix connector."""
    config = parse(
        BASE
        + "    access_token_env: BOT_TOKEN\n"
        + "operators:\n  - {id: '@ann:localhost', role: operator, connector: matrix}\n"
    )
    assert config.operators[0].connector == "matrix"


def test_alert_styles_default_to_mention() -> None:
    """A room not listed under `alerts` mentions; a listed one keeps its style."""
    config = parse(BASE + "    password_env: P\n    alerts: {'!quiet:hs': notice}\n")
    assert config.matrix is not None
    assert config.matrix.alert_style("!quiet:hs") == "notice"
    assert config.matrix.alert_style("!other:hs") == "mention"


@pytest.mark.parametrize(
    ("lines", "clear"),
    [
        ("", True),
        ("    encryption: required\n", False),
        ("    key_notices: encrypted\n", False),
        ("    encryption: 'off'\n    key_notices: clear\n", True),
    ],
)
def test_key_notices_default_to_clear_unless_encryption_is_required(
    lines: str, clear: bool
) -> None:
    """Key notices go in clear by default; `encryption: required` or `key_notices:
    encrypted` keeps them encrypted."""
    config = parse(BASE + "    access_token_env: BOT_TOKEN\n" + lines)
    assert config.matrix is not None
    assert config.matrix.notices_in_clear is clear


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("    key_notices: loud\n", "allowed: clear, encrypted"),
        (
            "    encryption: required\n    key_notices: clear\n",
            "key_notices: clear posts in clear, which encryption: required rules out",
        ),
    ],
)
def test_bad_key_notices_are_one_clear_problem(lines: str, expected: str) -> None:
    """An unknown `key_notices`, or `clear` where nothing may be in clear, names the fix."""
    problem = only_problem(BASE + "    access_token_env: BOT_TOKEN\n" + lines)
    assert problem.key_path.startswith("connectors.matrix")
    assert expected in problem.message, problem.message
