"""Tests for fleet.caps: which concurrency cap a launch would break, and which queued
launch starts first."""

from __future__ import annotations

from datetime import timedelta

from fleet.caps import Caps, Occupant, blocked, first_startable
from tests.unit.chat_fakes import T0


def agent(name: str, *scopes: str, accounts: tuple[str, ...] = ()) -> Occupant:
    return Occupant(name, (f"agent:{name}", *scopes, "global"), frozenset(accounts))


def test_no_caps_never_block() -> None:
    """With no cap configured any number may run."""
    running = [agent(f"a{i}") for i in range(50)]
    assert blocked(agent("new"), running, Caps()) is None
    assert not Caps()


def test_the_global_cap_counts_every_other_running_agent() -> None:
    """At max_running the next launch is blocked, saying how many run; below it, not."""
    caps = Caps(max_running=2)
    assert blocked(agent("c"), [agent("a")], caps) is None
    assert blocked(agent("c"), [agent("a"), agent("b")], caps) == (
        "global max_running 2 reached (2 running)"
    )


def test_the_candidate_itself_never_counts() -> None:
    """An agent already holding a slot (a restart, a drained start) is not counted twice."""
    assert blocked(agent("a"), [agent("a"), agent("b")], Caps(max_running=2)) is None


def test_an_account_cap_counts_only_agents_on_that_account() -> None:
    """account max_running counts the running agents on the account."""
    caps = Caps(accounts={"claude-max": 1})
    on_max = agent("a", accounts=("claude-max",))
    elsewhere = agent("b", accounts=("api",))
    assert blocked(agent("c", accounts=("api",)), [on_max], caps) is None
    assert blocked(agent("c", accounts=("claude-max",)), [elsewhere], caps) is None
    assert blocked(agent("c", accounts=("claude-max",)), [on_max, elsewhere], caps) == (
        "account claude-max: max_running 1 reached (1 running)"
    )


def test_a_pool_blocks_only_when_every_member_is_full() -> None:
    """A launch on a pool may start while one of its accounts has room."""
    caps = Caps(accounts={"max-1": 1, "max-2": 1})
    pool = Occupant("c", ("agent:c", "global"), account_choices=(("max-1", "max-2"),))
    one = [agent("a", accounts=("max-1",))]
    assert blocked(pool, one, caps) is None
    both = [*one, agent("b", accounts=("max-2",))]
    why = blocked(pool, both, caps)
    assert why is not None and why.endswith("account max-1: max_running 1 reached (1 running)")
    assert "(max-1, max-2)" in why


def test_a_budget_scope_cap_counts_the_agents_its_scope_covers() -> None:
    """A group's cap counts agents whose scope chain holds the group (nested groups too)."""
    caps = Caps(scopes={"group:backend": 2})
    inside = [agent("a", "group:api", "group:backend"), agent("b", "group:backend")]
    outside = [agent("x", "group:docs")]
    assert blocked(agent("c", "group:backend"), [inside[0], *outside], caps) is None
    assert blocked(agent("c", "group:backend"), inside, caps) == (
        "budget group:backend: max_running 2 reached (2 running)"
    )
    assert blocked(agent("c", "group:docs"), inside, caps) is None


def test_the_global_cap_is_named_before_narrower_ones() -> None:
    """When several caps are full the reply names the global one first."""
    caps = Caps(max_running=1, scopes={"group:g": 1})
    assert blocked(agent("c", "group:g"), [agent("a", "group:g")], caps) == (
        "global max_running 1 reached (1 running)"
    )


def test_first_startable_is_fifo_among_entries_the_caps_allow() -> None:
    """The oldest entry whose caps allow it starts first; a younger one passes an older one
    whose cap is full; an entry not yet due waits."""
    caps = Caps(scopes={"group:full": 1})
    running = [agent("r", "group:full")]
    queue = [
        ("old-full", agent("old-full", "group:full"), None),
        ("later", agent("later"), T0 + timedelta(minutes=5)),
        ("free", agent("free"), None),
        ("free-2", agent("free-2"), None),
    ]
    picked = first_startable(
        queue,
        T0,
        due=lambda e, now: e[2] is None or e[2] <= now,
        occupant=lambda e: e[1],
        running=running,
        caps=caps,
    )
    assert picked is not None and picked[0] == "free"
    picked = first_startable(
        queue,
        T0 + timedelta(minutes=5),
        due=lambda e, now: e[2] is None or e[2] <= now,
        occupant=lambda e: e[1],
        running=running,
        caps=caps,
    )
    assert picked is not None and picked[0] == "later"
    nothing = first_startable(
        queue[:1], T0, due=lambda e, now: True, occupant=lambda e: e[1], running=running, caps=caps
    )
    assert nothing is None
