"""Attributes the author plants hide nothing from its reviewer, through the real
``fleetwarden run`` and its console, real git behind ``git http-backend`` and the real
sandbox: ``coder`` (a ``command`` agent) commits ``secret.txt -diff export-ignore`` and
``*.py diff=hide`` in its ``.gitattributes`` with the files they would hide. ``reviewer``
approves only when its prompt quotes both changes and its own git in its checkout — the
author's driver defined there as a textconv that prints nothing — shows both, and
``git archive`` there holds ``secret.txt``; else it asks for changes naming what it
could not see."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.integration.review.review_rig import HEAD, PAIR, reviewed_by_reviewer

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_reviewAttributesUpstreamTokenNoAgent"
CODER = (
    'printf "secret.txt -diff export-ignore\\n*.py diff=hide\\n" > .gitattributes; '
    'echo "token checks off" > secret.txt; echo "CHECK = False" > app.py'
)
# What the reviewer checks, each a line of its verdict when it fails.
REVIEWER = (
    'p="$FLEETWARDEN_PROMPT"; d=$(git -c diff.hide.textconv=true diff HEAD~1 2>&1); '
    'a=$(git archive HEAD | tar t 2>&1); m=""; '
    'echo "$p" | grep -q "+token checks off" || m="$m prompt-secret"; '
    'echo "$p" | grep -q "+CHECK = False" || m="$m prompt-py"; '
    'echo "$d" | grep -q "^+token checks off" || m="$m checkout-secret"; '
    'echo "$d" | grep -q "^+CHECK = False" || m="$m checkout-py"; '
    'echo "$a" | grep -qx "secret.txt" || m="$m archive-secret"; '
    'if [ -z "$m" ]; then fw-msg review approve "every change was shown"; '
    'else fw-msg review changes "hidden from me:$m"; fi'
)
CONFIG = HEAD + reviewed_by_reviewer(1) + PAIR


def test_attributes_the_author_plants_hide_no_change_from_its_reviewer(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """A planted ``-diff``, textconv driver and ``export-ignore`` leave the change in the
    reviewer's prompt, in its own git's diff in its checkout, and in its archive."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(url=upstream.url("app"), coder=CODER, reviewer=REVIEWER))
    with ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN)) as bot:
        bot.command("task new --agent coder Turn the checks off", r"Task #1")
        bot.command("task start 1", r"coder")
        seen: list[str] = []

        def answered() -> bool:
            bot.command("msgs", r"between agents \(|No agent has sent")
            seen.append(bot.output_since_command)
            return re.search(r"reviewer → coder", seen[-1]) is not None

        assert wait_until(answered, 120, interval=0.5), seen[-1:]
        assert "every change was shown" in seen[-1], seen[-1]
        assert "hidden from me" not in seen[-1]
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0
