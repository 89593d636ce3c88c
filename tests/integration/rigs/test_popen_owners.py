"""The suite names the test that started a process dropped still running
(tests/popen_owners.py)."""

from __future__ import annotations

import subprocess
import warnings

import pytest

from tests import popen_owners


def test_a_process_dropped_still_running_names_its_program_and_test(
    request: pytest.FixtureRequest,
) -> None:
    process = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE)
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            popen_owners._named_del(process)
        [warning] = said
        assert warning.category is ResourceWarning
        assert f"subprocess {process.pid} (sleep) was dropped still running" in str(warning.message)
        assert f"started by {request.node.nodeid}" in str(warning.message)
        assert process in subprocess._active  # type: ignore[attr-defined]  # reaped later
    finally:
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_one_that_ended_is_dropped_without_a_word() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        popen_owners._named_del(process)
    assert said == []
