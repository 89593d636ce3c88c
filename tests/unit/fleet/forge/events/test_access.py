"""Tests for who may start, steer and stop forge runs: asked of the forge at each event —
write or admin access to the repository, or membership of the configured org or team —
and refused, saying what is needed, when the forge says no or cannot be asked."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.forge.events.access import Access
from fleet.forge.model import ForgeApiError
from tests.unit.fleet.forge.runs.work_rig import FORGE, SLUG, FakeForgeApi, forge_entry


def _access(api: FakeForgeApi, **allow: Any) -> Access:
    entry = forge_entry(allow=allow) if allow else forge_entry()
    return Access({FORGE: entry}, {FORGE: api})


@pytest.mark.parametrize("permission", ["admin", "write"])
async def test_writers_and_admins_may(permission: Any) -> None:
    """Write or admin access to the repository lets one act."""
    api = FakeForgeApi()
    api.allow("alice", permission)
    assert await _access(api).refusal(FORGE, SLUG, "alice") is None
    assert api.named("permission") == [("permission", str(SLUG), "alice")]


@pytest.mark.parametrize("permission", ["read", "none"])
async def test_readers_and_strangers_may_not(permission: Any) -> None:
    """Read access or none: refused, saying write access is what it takes."""
    api = FakeForgeApi()
    api.allow("mallory", permission)
    why = await _access(api).refusal(FORGE, SLUG, "mallory")
    assert why == "may not start or steer runs here (needs write access to acme/app)"


async def test_org_members_may_when_the_org_is_named() -> None:
    """With `allow.org`, a member without write access may; a non-member may not."""
    api = FakeForgeApi()
    api.org_members.add(("acme", "carol"))
    access = _access(api, org="acme")
    assert await access.refusal(FORGE, SLUG, "carol") is None
    why = await access.refusal(FORGE, SLUG, "dave")
    assert why == (
        "may not start or steer runs here (needs write access to acme/app or membership of acme)"
    )


async def test_team_members_may_and_the_org_alone_is_not_enough() -> None:
    """With a team named, only its members (not the org's others) may."""
    api = FakeForgeApi()
    api.org_members.update({("acme", "carol"), ("acme", "erin")})
    api.team_members.add(("acme", "bots-ops", "erin"))
    access = _access(api, write_access=False, org="acme", team="bots-ops")
    assert await access.refusal(FORGE, SLUG, "erin") is None
    why = await access.refusal(FORGE, SLUG, "carol")
    assert why == "may not start or steer runs here (needs membership of acme/bots-ops)"
    assert api.named("permission") == [] and api.named("in_org") == []


async def test_a_forge_that_cannot_be_asked_refuses() -> None:
    """The forge failing to answer lets nobody in on a guess, and names only the status."""
    api = FakeForgeApi()
    api.allow("alice")
    api.failures["permission"] = ForgeApiError("GitHub refused GET …: 503 unavailable", 503)
    why = await _access(api).refusal(FORGE, SLUG, "alice")
    assert why == "could not be checked (503): refused"
    api.failures["permission"] = ForgeApiError("no answer")
    assert await _access(api).refusal(FORGE, SLUG, "alice") == (
        "could not be checked (no answer): refused"
    )
