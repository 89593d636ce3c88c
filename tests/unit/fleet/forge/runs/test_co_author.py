"""Who gave an agent an issue is its forge run's co-author: the run starts with their login
at the address their forge credits commits to, and starts all the same when the forge
cannot say."""

from __future__ import annotations

from fleet.forge.model import ForgeApiError
from tests.unit.fleet.forge.runs.work_rig import WorkRig


async def test_the_labeller_is_the_runs_co_author_at_their_forge_address(rig: WorkRig) -> None:
    """alice labels #3: the launch names `alice <ID+alice@users.noreply.github.com>`, as
    the forge gave her address, asked once for her login."""
    await rig.started()
    address = f"{sum(map(ord, 'alice'))}+alice@users.noreply.github.com"
    assert rig.launcher.co_authors == [f"alice <{address}>"]
    assert [c for c in rig.api.calls if c[0] == "commit_address"] == [
        ("commit_address", "acme/app", "alice")
    ]


async def test_a_forge_that_cannot_say_starts_the_run_without_a_co_author(rig: WorkRig) -> None:
    """The forge's lookup fails: the run starts, with no co-author."""
    rig.api.failures["commit_address"] = ForgeApiError("GitHub refused GET /users/alice", 403)
    record = await rig.started()
    assert record.agent == "coder" and rig.launcher.co_authors == [None]
