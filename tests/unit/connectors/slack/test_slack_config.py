"""The ``connectors.slack`` section: ids by shape, the mode's needs, loopback only, and
tokens checked by their prefix without ever showing them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.slack.config import SlackConfig, token_problems

BASE = {
    "bot_token_env": "SLACK_BOT_TOKEN",
    "app_token_env": "SLACK_APP_TOKEN",
    "channel_id": "C0123456789",
}


def test_a_minimal_socket_config() -> None:
    """Socket mode with both tokens' variables and a channel is enough."""
    config = SlackConfig.model_validate(BASE)
    assert (config.mode, config.agent_sessions, config.api_base) == (
        "socket",
        True,
        "https://slack.com/api/",
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"channel_id": "general"}, "Slack channel id"),
        ({"on_call": ["alice"]}, "Slack user id"),
        ({"app_token_env": None}, "socket mode needs `app_token_env`"),
        ({"mode": "http"}, "http mode needs `signing_secret_env`"),
        ({"listen": "3100"}, "is not HOST:PORT"),
        ({"api_base": "slack.com"}, "http:// or https://"),
    ],
)
def test_bad_settings_say_what_to_fix(change: dict[str, object], words: str) -> None:
    """Each bad setting is refused with words naming it and the fix."""
    with pytest.raises(ValidationError, match=words):
        SlackConfig.model_validate({**BASE, **change})


def test_swapped_tokens_are_named_by_variable_never_shown() -> None:
    """A bot token holding an xapp- value (and the other way) is refused by its variable
    and the prefix expected; the value never appears."""
    config = SlackConfig.model_validate(BASE)
    env = {"SLACK_BOT_TOKEN": "xapp-1-SECRETVALUE", "SLACK_APP_TOKEN": "xoxb-SECRETVALUE"}
    problems = token_problems(config, env)
    assert len(problems) == 2
    assert "SLACK_BOT_TOKEN" in problems[0] and "xoxb-" in problems[0] and "swap" in problems[0]
    assert "SLACK_APP_TOKEN" in problems[1] and "xapp-" in problems[1]
    assert not any("SECRETVALUE" in problem for problem in problems)
    assert token_problems(config, {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}) == []


def test_unset_variables_are_named() -> None:
    """A variable that is not set is named with the field it comes from."""
    config = SlackConfig.model_validate(
        {**BASE, "mode": "http", "signing_secret_env": "SLACK_SIGNING_SECRET"}
    )
    problems = token_problems(config, {"SLACK_BOT_TOKEN": "xoxb-1"})
    assert problems == [
        "slack: the environment variable SLACK_SIGNING_SECRET "
        "(connectors.slack.signing_secret_env) is not set: set it to the signing secret"
    ]


def test_a_token_pasted_anywhere_in_the_section_is_never_echoed() -> None:
    """A token in api_base, or inside a list where an id goes, is refused without its value."""
    for change in (
        {"api_base": "xoxb-1-SECRETVALUE"},
        {"channel_id": ["xoxb-1-SECRETVALUE"]},
        {"on_call": ["xapp-1-SECRETVALUE"]},
    ):
        with pytest.raises(ValidationError) as refused:
            SlackConfig.model_validate({**BASE, **change})
        said = " ".join(str(error["msg"]) for error in refused.value.errors())
        assert "SECRETVALUE" not in said and "a Slack token (not shown" in said
