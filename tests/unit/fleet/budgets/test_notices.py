"""Who a notice wakes: the starter read from a run's trigger, and a budget's step up to a
limit being an alert."""

from __future__ import annotations

import pytest

from fleet.budgets.model import Transition
from fleet.ledger.records.budgets import Step
from fleet.notices import starter, who_on


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("spawned by @ann:hs on matrix", "@ann:hs on matrix"),
        ("follow-up from 123456789 on discord", "123456789 on discord"),
        ("spawned by @ann:hs on matrix, queued #3", "@ann:hs on matrix"),
        ("restart 1 by the watchdog: exited 1", None),
        ("spawned by operator", None),
        (None, None),
    ],
)
def test_the_starter_is_read_from_the_trigger(trigger: str | None, expected: str | None) -> None:
    """Only a command's sender is a starter; the watchdog and autostart are nobody."""
    assert starter(trigger) == expected


def test_who_on_splits_user_and_connector() -> None:
    """``"<user> on <connector>"`` names both; anything else names nobody."""
    assert who_on("@ann:hs on matrix") == ("@ann:hs", "matrix")
    assert who_on("the watchdog") is None and who_on(None) is None


@pytest.mark.parametrize(
    ("before", "after", "alert"),
    [
        (Step.NONE, Step.DOWNGRADE, False),
        (Step.DOWNGRADE, Step.QUEUE, True),
        (Step.QUEUE, Step.REFUSE, True),
        (Step.REFUSE, Step.QUEUE, False),
    ],
)
def test_a_step_up_to_a_limit_is_an_alert(before: Step, after: Step, alert: bool) -> None:
    """Reaching queue or refuse wakes someone; a downgrade or a step down does not."""
    notice = Transition("global", ("a",), before, after, "moved").notice()
    assert notice.alert is alert
