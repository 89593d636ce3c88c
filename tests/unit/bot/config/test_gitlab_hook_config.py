"""What the config says of a GitLab's webhook tokens before a delivery comes: its signing
token's variable named but unset, or holding no ``whsec_`` token, refuses the start on its
line, never showing the value; the forge's tokens are all kept from agents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, ConfigError, parse_config
from bot.config.checks.forges import summary_lines
from tests.fakes.gitlab.hooks import GITLAB_HOOK_TOKEN, GITLAB_SIGNING_TOKEN

FORGE = """
forges:
  gl:
    kind: gitlab
    token_env: GITLAB_TOKEN
    webhook_secret_env: GL_HOOK
    signing_secret_env: GL_SIGNING
    login: fleetwarden-bot
"""
ENVIRON = {"GITLAB_TOKEN": "t", "GL_HOOK": GITLAB_HOOK_TOKEN, "GL_SIGNING": GITLAB_SIGNING_TOKEN}


def parse(text: str, **kwargs: Any) -> Config:
    return parse_config(text, "fleetwarden.yaml", base_dir=Path("/srv/fw"), **kwargs)


def test_a_gitlab_with_both_tokens_set_is_taken() -> None:
    """Both tokens set, the signing one a whsec_ token: the config reads, and check-config
    names the address its hook posts to."""
    config = parse(FORGE, environ=ENVIRON)
    [line] = summary_lines(config.forges, "http://127.0.0.1:8750")
    assert "webhooks at http://127.0.0.1:8750/webhooks/gl" in line


@pytest.mark.parametrize(
    ("value", "said"),
    [(None, "GL_SIGNING is not set"), ("whsec_not*base64", "GL_SIGNING is no signing token")],
)
def test_a_signing_token_unset_or_malformed_refuses_the_start(value: str | None, said: str) -> None:
    """signing_secret_env named but unset, or not a whsec_ token: refused on its key,
    without the value."""
    environ = {k: v for k, v in ENVIRON.items() if k != "GL_SIGNING"}
    if value is not None:
        environ["GL_SIGNING"] = value
    with pytest.raises(ConfigError) as caught:
        parse(FORGE, environ=environ)
    [problem] = caught.value.problems
    assert problem.key_path == "forges.gl.signing_secret_env" and said in problem.message
    assert "not*base64" not in problem.message


def test_a_signing_token_is_kept_from_agents() -> None:
    """The signing token's variable in an agent's secret_env is refused, as the forge's
    other tokens are."""
    with pytest.raises(ConfigError) as caught:
        parse(FORGE + "agents:\n  - name: coder\n    secret_env: [GL_SIGNING]\n", environ=ENVIRON)
    [problem] = caught.value.problems
    assert "GL_SIGNING" in problem.message and "signing token" in problem.message
