"""Who is in a Slack user group, as Slack says it now: the real Slack connector (slack-bolt
over Socket Mode) on the strict fake Slack, whose groups change under it — told by Slack's
``subteam_*`` events, or not told at all — its clock driven by the test."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.timing.clock import ManualClock
from tests import polling
from tests.fakes.slack import SlackWorld
from tests.integration.connectors.slack.rig import Rig, slack_rig

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BOUND = 10.0  # usergroups_max_age's default


def calls(world: SlackWorld, method: str) -> int:
    return sum(call.method == method for call in world.calls)


async def read_again(world: SlackWorld, times: int) -> None:
    """Wait until the connector has read a group's members ``times`` times in all."""
    await polling.eventually(
        lambda: calls(world, "usergroups.users.list") >= times or None,
        "the connector reading the changed group again",
        10.0,
    )


async def groups_of_next(rig: Rig, text: str) -> tuple[str, ...]:
    """ann writes ``text``; the groups the connector hands it over with."""
    ts = await rig.world.person_says(rig.ann, rig.channel, text)
    got = await rig.next()
    assert (got.event_id, got.text) == (ts, text)
    return got.groups


async def test_someone_taken_out_of_a_group_is_judged_without_it_once_slack_tells(
    tmp_path: Path,
) -> None:
    """Slack's subteam_members_changed and subteam_updated are taken: the group's members are
    read again (usergroups.users.list) and ann's next message is judged with the group she
    was added to, then, once she is taken out, without it — with no time passing."""
    world = SlackWorld()
    async with slack_rig(tmp_path, world=world, clock=ManualClock(START)) as rig:
        ops = world.add_usergroup("ops", [])
        await world.change_usergroup(ops, add=[rig.ann])
        await read_again(world, 2)  # one reading per event: members changed, group updated
        assert await groups_of_next(rig, "!whoami") == (f"usergroup:{ops}",)
        await world.change_usergroup(ops, remove=[rig.ann])
        await read_again(world, 4)
        assert await groups_of_next(rig, "!spawn c1 --runtime stub") == ()
        assert all(call.error is None for call in world.calls if "usergroups" in call.method)


async def test_with_no_event_a_change_counts_once_the_bound_has_passed(tmp_path: Path) -> None:
    """A change Slack never told is judged on the old reading only while it is under 10 s
    old: once the bound has passed, the groups are read again before the message is."""
    world = SlackWorld()
    clock = ManualClock(START)
    async with slack_rig(tmp_path, world=world, clock=clock) as rig:
        ops = world.add_usergroup("ops", [])
        await world.change_usergroup(ops, add=[rig.ann], tell=False)
        assert await groups_of_next(rig, "!ps") == ()  # the reading at start is young
        clock.advance(BOUND + 0.5)
        assert await groups_of_next(rig, "!whoami") == (f"usergroup:{ops}",)
        await world.change_usergroup(ops, remove=[rig.ann], tell=False)
        clock.advance(BOUND - 1)
        assert await groups_of_next(rig, "!ps") == (f"usergroup:{ops}",)  # within the bound
        clock.advance(1.5)
        assert await groups_of_next(rig, "!spawn c1 --runtime stub") == ()
        assert calls(world, "usergroups.list") == 3  # at start, then once per lapse


async def test_a_disabled_group_gives_nobody_its_role(tmp_path: Path) -> None:
    """A group an admin disabled (subteam_updated with its date_delete set) counts for none
    of its members from the next message on."""
    world = SlackWorld()
    async with slack_rig(tmp_path, world=world, clock=ManualClock(START)) as rig:
        ops = world.add_usergroup("ops", [])
        await world.change_usergroup(ops, add=[rig.ann])
        await read_again(world, 2)
        assert await groups_of_next(rig, "!whoami") == (f"usergroup:{ops}",)
        await world.disable_usergroup(ops)
        assert await groups_of_next(rig, "!spawn c1 --runtime stub") == ()


async def test_groups_that_cannot_be_read_act_on_nothing_and_say_why(tmp_path: Path) -> None:
    """When Slack's groups cannot be read once the bound has passed, a message of someone
    who had a role through a group is not handed over, and the channel is told why; once
    they can be read again, the next message is."""
    world = SlackWorld()
    clock = ManualClock(START)
    async with slack_rig(tmp_path, world=world, clock=clock) as rig:
        ops = world.add_usergroup("ops", [])
        await world.change_usergroup(ops, add=[rig.ann])
        await read_again(world, 2)
        assert await groups_of_next(rig, "!whoami") == (f"usergroup:{ops}",)
        world.failing["usergroups.list"] = "internal_error"
        clock.advance(BOUND + 1)
        await world.person_says(rig.ann, rig.channel, "!spawn c1 --runtime stub")
        notes = await polling.eventually(
            lambda: [
                m for m in world.messages(rig.channel) if m.bot_id and "not acted on" in m.text
            ],
            "the connector saying why the message was not acted on",
            10.0,
        )
        [note] = notes
        assert rig.ann in note.text and "internal_error" in note.text
        assert "usergroups:read" in note.text
        del world.failing["usergroups.list"]
        assert await groups_of_next(rig, "!marker") == (f"usergroup:{ops}",)


async def test_someone_named_by_id_waits_on_no_reading(tmp_path: Path) -> None:
    """A person the config names by member id is judged by that entry, which wins over any
    group: their message is handed over without a reading, even while none can be made."""
    world = SlackWorld()
    clock = ManualClock(START)
    named: set[str] = set()
    async with slack_rig(
        tmp_path, world=world, clock=clock, is_operator=lambda user, _: user in named
    ) as rig:
        named.add(rig.ann)
        world.failing["usergroups.list"] = "internal_error"
        clock.advance(BOUND + 1)
        before = calls(world, "usergroups.list")
        assert await groups_of_next(rig, "!ps") == ()
        assert calls(world, "usergroups.list") == before
