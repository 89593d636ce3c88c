"""The suite names the test that started a process dropped still running
(tests/popen_owners.py)."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import pytest

from tests import popen_owners

pytestmark = pytest.mark.integration


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


def test_one_waited_for_is_dropped_without_a_word() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        popen_owners._named_del(process)
    assert said == []


def test_one_that_ended_never_waited_for_is_named_as_python_names_it(
    request: pytest.FixtureRequest,
) -> None:
    """Python warns of a child never waited for even once it ended (a zombie until then):
    so does the suite, naming it, and reaps it."""
    process = subprocess.Popen(["true"])
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        popen_owners._named_del(process)
    [warning] = said
    assert (
        f"(true) was dropped ended, never waited for; it was started by {request.node.nodeid}"
        in str(warning.message)
    )
    assert process.returncode == 0


def test_every_form_popen_takes_still_runs_what_it_names(tmp_path: Path) -> None:
    """The marking reads the program without consuming what Popen is given: an iterator
    reaches Popen whole (its program unnamed), a path or bytes is the program itself."""
    script = tmp_path / "said"
    script.write_text('#!/bin/sh\necho "$0 $*"\n')
    script.chmod(0o700)
    forms: list[object] = [
        iter([str(script), "from", "an iterator"]),
        (str(script), "from", "a tuple"),
        script,
        os.fsencode(script),
        f"{script} from a shell",
    ]
    said, named = [], []
    for args in forms:
        ran = subprocess.Popen(args, stdout=subprocess.PIPE, shell=isinstance(args, str))  # type: ignore[call-overload]
        out, _ = ran.communicate(timeout=10)
        said.append(out.decode().strip())
        named.append(ran._fw_program)
    assert said == [
        f"{script} from an iterator",
        f"{script} from a tuple",
        str(script),
        str(script),
        f"{script} from a shell",
    ]
    shown = [str(script)[-80:], f"{script} from a shell"[-80:]]  # the last 80 characters
    assert named == ["?", shown[0], shown[0], shown[0], shown[1]]
