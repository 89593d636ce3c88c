"""``fleetwarden`` writing into a pipe whose reader has gone (``… | head``): a quiet end with
a shell's SIGPIPE status, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.console_bot import FLEETWARDEN


def test_a_reader_that_stops_early_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    """`check-config`'s output into a closed pipe: status 141 and nothing on stderr."""
    made = subprocess.run(
        [str(FLEETWARDEN), "init", "--preset", "solo", str(tmp_path)], capture_output=True
    )
    assert made.returncode == 0, made.stderr
    config = tmp_path / "fleetwarden.yaml"
    with subprocess.Popen(
        [str(FLEETWARDEN), "check-config", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before a byte is written
        try:
            err = proc.stderr.read().decode()
            status = proc.wait(timeout=60)
        finally:
            proc.kill()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert status == 141
