"""What the SSH host suites share: a ``hosts:`` entry for a real OpenSSH server on loopback
(tests/sshd_server.py), and the real ``fleetwarden run`` started once its hosts are up."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.integration.console_bot import ConsoleBot

WAIT = 30.0


def entry(name: str, target: str, key: Path, known: Path, state_dir: str) -> str:
    """One ``hosts:`` line for the server at ``target``, its key on record in ``known``."""
    return (
        f"  - {{name: {name}, ssh: '{target}', key_file: '{key}', known_hosts: '{known}',"
        f" max_agents: 4, state_dir: {state_dir}}}\n"
    )


def started(root: Path, config: Path, *hosts: str, env: dict[str, str] | None = None) -> ConsoleBot:
    """`fleetwarden run` with ``config``, once `hosts` shows each of ``hosts`` up and probed."""
    bot = ConsoleBot(root, "--config", str(config), env=env)
    try:
        until_up(bot, *hosts)
    except BaseException:
        bot.kill()
        raise
    return bot


def until_up(bot: ConsoleBot, *hosts: str) -> None:
    deadline = time.monotonic() + WAIT
    reply = ""
    while not all(re.search(rf"^{h} +up .* \d+\.\d\d", reply, re.M) for h in hosts):
        if time.monotonic() > deadline or bot.proc.poll() is not None:
            raise AssertionError(f"{hosts} never came up:\n{reply}\n{bot.stderr}")
        time.sleep(0.2)
        bot.command("hosts", r"^local +up.*$", timeout=WAIT)
        reply = bot.output_since_command


def until(bot: ConsoleBot, command: str, pattern: str, within: float = WAIT) -> str:
    """Ask ``command`` until its answer matches ``pattern`` (for ``within`` s); the answer."""
    deadline = time.monotonic() + within
    while True:
        bot.command(command, r"(?s).+\n\n", timeout=WAIT)
        reply = bot.output_since_command
        if re.search(pattern, reply, re.M):
            return reply
        if time.monotonic() > deadline:
            raise AssertionError(f"{command!r} never matched {pattern!r}:\n{reply}")
        time.sleep(0.3)
