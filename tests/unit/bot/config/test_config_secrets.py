"""A configuration's secrets: named by the variables that hold them, never written in the
file and never echoed back in a problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.config import (
    Config,
    ConfigFile,
    ConfigProblem,
)
from connectors.console.config import ConsoleConfig
from fleet.agents.roster import AgentEntry
from tests.unit.bot.config.test_config import FILE, only_problem, parse, problems_of

# --- Secrets -----------------------------------------------------------------------------------


MATRIX = (
    "connectors:\n  matrix:\n    homeserver: http://127.0.0.1:8008\n    user_id: '@bot:localhost'\n"
)


def test_secret_key_suggests_its_env_form() -> None:
    """`access_token:` where `access_token_env` exists says how to pass the secret instead."""
    problem = only_problem(MATRIX + "    access_token: fake-matrix-token-abc\n")
    assert problem == ConfigProblem(
        FILE,
        5,
        "connectors.matrix.access_token",
        "secrets never go in the config file: set an environment variable and name it with "
        "access_token_env",
    )
    assert "fake-matrix-token-abc" not in problem.message


def test_a_misspelt_env_key_is_answered_with_the_key_meant() -> None:
    """`signing_secret_envv:` is a typo of a key, not a secret: it is answered with the key
    meant, its value never shown."""
    forge = (
        "forges:\n  lab:\n    kind: gitlab\n    token_env: T\n    login: bot\n"
        "    signing_secret_envv: SIGNING\n"
    )
    problem = only_problem(forge)
    assert "did you mean 'signing_secret_env'?" in problem.message, problem.message
    assert "SIGNING" not in problem.message


def test_a_providers_key_env_points_to_an_account() -> None:
    """`key_env:` under a provider names a variable, not a secret — and a provider holds no
    credential: the answer says where an API key's variable goes."""
    problem = only_problem(
        "providers:\n  anthropic:\n    upstream: http://127.0.0.1:9\n    key_env: ANTHROPIC_KEY\n"
    )
    assert problem.key_path == "providers.anthropic.key_env"
    assert problem.message.startswith(
        "unknown key 'key_env': a provider holds no credential of its own — name the variable "
        "holding an API key in an account (`accounts: NAME: {kind: api_key, provider: "
        "anthropic, key_env: VAR}`"
    )
    assert "secrets never go" not in problem.message


def test_env_key_value_must_be_a_variable_name_and_is_never_echoed() -> None:
    """A `*_env` value that is not a variable name (maybe the secret itself) is not shown."""
    problem = only_problem(MATRIX + "    access_token_env: fake-matrix-s3cr3t\n")
    assert problem.key_path == "connectors.matrix.access_token_env"
    assert problem.message.startswith("must be the NAME of an environment variable")
    assert "fake-matrix-s3cr3t" not in str(problem)


def test_secret_env_names_collects_every_env_key_and_secret_env() -> None:
    """secret_env_names() has every `*_env` value anywhere and every agent's secret_env."""
    config = parse(
        MATRIX + "    access_token_env: MATRIX_BOT_TOKEN\n"
        "agents:\n  - name: a\n    secret_env: [ANTHROPIC_API_KEY]\n"
        "  - name: b\n    secret_env: [OPENAI_API_KEY, ANTHROPIC_API_KEY]\n"
        "    env: {HTTP_PROXY: 'http://proxy:3128'}\n"
    )
    assert config.secret_env_names() == {"MATRIX_BOT_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"}


def test_secret_env_names_is_empty_for_defaults() -> None:
    """The embedded defaults name no secrets."""
    assert Config.default(Path("/srv")).secret_env_names() == frozenset()


@pytest.mark.parametrize("key", ["token", "api_key", "password"])
def test_secret_looking_agent_key_points_to_secret_env(key: str) -> None:
    """A secret-looking key in an agent entry says to list a variable in secret_env."""
    problem = only_problem(f"agents:\n  - name: a\n    {key}: hunter2\n")
    assert problem.message == (
        "secrets never go in the config file: set an environment variable and list its name "
        "in secret_env"
    )


def test_secret_looking_env_entry_is_refused() -> None:
    """`env: {GITHUB_TOKEN: ...}` is refused: such values belong in secret_env."""
    problem = only_problem("agents:\n  - name: a\n    env:\n      GITHUB_TOKEN: ghp_x\n")
    assert (problem.line, problem.key_path) == (4, "agents[0].env.GITHUB_TOKEN")
    assert "looks like a secret" in problem.message
    assert "secret_env" in problem.message


def test_bad_env_key_and_bad_secret_env_name_are_reported() -> None:
    """env keys and secret_env entries must look like environment variable names."""
    problems = problems_of(
        "agents:\n  - name: a\n    env: {'my-var': x}\n    secret_env: [lower_case]\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (3, "agents[0].env.my-var"),
        (4, "agents[0].secret_env[0]"),
    ]


def test_secret_env_given_as_a_string_does_not_echo_it() -> None:
    """A type error under a `*_env` key hides the value, which may be a pasted secret."""
    problem = only_problem("agents:\n  - name: a\n    secret_env: fake-pasted-key-123\n")
    assert problem.message == "expected a list, found a string"


def test_same_variable_in_env_and_secret_env_is_refused() -> None:
    """A variable cannot be both a plain value and a passed-through secret."""
    problem = only_problem("agents:\n  - name: a\n    env: {MODE: x}\n    secret_env: [MODE]\n")
    assert (problem.line, problem.key_path) == (2, "agents[0]")
    assert problem.message == "MODE is in both env and secret_env: keep it in one of them"


def test_every_env_field_in_the_schema_checks_variable_names() -> None:
    """Each `*_env` field reachable from the top-level schema is typed EnvVarName."""
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            if name.endswith("_env"):
                assert "_check_env_name" in repr((info.annotation, info.metadata)), name
            for candidate in _models_in(info.annotation):
                walk(candidate)

    walk(ConfigFile)
    assert AgentEntry in seen and ConsoleConfig in seen


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]
