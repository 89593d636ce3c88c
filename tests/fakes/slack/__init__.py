"""A strict loopback fake Slack (Web API, Socket Mode, HTTP events) held to Slack's own
types; its API is described in :mod:`tests.fakes.slack.world`."""

from tests.fakes.slack.server import SlackServer, slack_server
from tests.fakes.slack.world import SlackWorld

__all__ = ["SlackServer", "SlackWorld", "slack_server"]
