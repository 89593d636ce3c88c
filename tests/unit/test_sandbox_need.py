"""A test needing a missing sandbox part skips, and fails when the sandbox is required."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import sandbox_need


class Marked:
    """Stands for a collected test item carrying the given marks."""

    def __init__(self, *marks: pytest.MarkDecorator) -> None:
        self.marks = [m.mark for m in marks]

    def iter_markers(self, name: str) -> Iterator[pytest.Mark]:
        return (m for m in self.marks if m.name == name)


@pytest.mark.parametrize("value", ["", "0"])
def test_a_missing_part_skips_unless_required(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Without the requirement (unset or 0), a missing part skips the test, naming it."""
    monkeypatch.setenv(sandbox_need.REQUIRE_ENV_VAR, value)
    with pytest.raises(pytest.skip.Exception, match="needs bubblewrap"):
        sandbox_need.missing("needs bubblewrap (bwrap)")


def test_a_missing_part_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLEETWARDEN_REQUIRE_SANDBOX=1 turns the skip into a failure naming what is missing."""
    monkeypatch.setenv(sandbox_need.REQUIRE_ENV_VAR, "1")
    with pytest.raises(pytest.fail.Exception, match=r"REQUIRE_SANDBOX is set, and not root"):
        sandbox_need.missing("not root: chown needs it")


def test_marks_are_checked_at_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mark naming nothing missing lets the test run; one naming a problem stops it."""
    monkeypatch.setenv(sandbox_need.REQUIRE_ENV_VAR, "1")
    sandbox_need.check(Marked(sandbox_need.needs(None)))  # type: ignore[arg-type]
    with pytest.raises(pytest.fail.Exception, match="no cgroup caps"):
        sandbox_need.check(Marked(sandbox_need.needs("no cgroup caps")))  # type: ignore[arg-type]
