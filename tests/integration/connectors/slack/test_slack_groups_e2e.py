"""Who operates through a Slack user group, end to end: the real ``fleetwarden run`` on the
fake Slack (Socket Mode through the real slack-bolt), someone who operates only through a
group taken out of it — told by Slack, and not told."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests import polling, sandbox_need
from tests.fakes.slack import SlackWorld
from tests.integration.connectors.slack.slack_run import SlackRun, slack_run

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

BOUND = 10.0  # usergroups_max_age's default


def reads(world: SlackWorld) -> int:
    return sum(call.method == "usergroups.users.list" for call in world.calls)


async def told(
    run: SlackRun, group: str, *, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()
) -> None:
    """Change ``group`` as an admin would; wait until Fleetwarden has read it again."""
    before = reads(run.world)
    await run.world.change_usergroup(group, add=add, remove=remove)
    await polling.eventually(
        lambda: reads(run.world) >= before + 2, "Fleetwarden reading the group again", 30.0
    )


async def role_of(run: SlackRun, user: str) -> str:
    said = await run.answer(user, "!whoami")
    return " ".join(m.text for m in said)


async def test_an_operator_taken_out_of_the_group_is_refused_from_the_next_message(
    tmp_path: Path,
) -> None:
    """olga operates only through the ops group: taken out of it (Slack tells), her very
    next spawn is refused as the viewer her other group makes her and no agent starts;
    taken out again without a word from Slack, she is a viewer once the bound has passed."""
    world = SlackWorld()
    olga = world.add_user("olga")
    ops = world.add_usergroup("fleet-ops", [olga])
    operators = f"  - {{id: 'usergroup:{ops}', role: operator}}\n"
    async with slack_run(tmp_path, world=world, operators=operators, names=("c1",)) as run:
        await told(run, run.people.viewers, add=(olga,))
        assert "role *operator*" in await role_of(run, olga)
        await told(run, ops, remove=(olga,))
        refused = await run.answer(olga, "!spawn c1 --runtime stub")
        assert any("viewer" in m.text for m in refused), [m.text for m in refused]
        assert run.thread_of("c1") is None
        assert "role *viewer*" in await role_of(run, olga)

        await told(run, ops, add=(olga,))
        assert "role *operator*" in await role_of(run, olga)
        await world.change_usergroup(ops, remove=[olga], tell=False)

        deadline = time.monotonic() + 3 * BOUND  # each question is answered in a second or more
        while "role *viewer*" not in await role_of(run, olga):
            assert time.monotonic() < deadline, "olga still operates after the bound passed"
        refused = await run.answer(olga, "!spawn c1 --runtime stub")
        assert any("viewer" in m.text for m in refused), [m.text for m in refused]
        assert run.thread_of("c1") is None
