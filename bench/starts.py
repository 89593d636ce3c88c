"""What one start of the ``fleetwarden`` command costs in CPU: each command as the console
script starts it (the garbage collector off while the command loads, then frozen over what
loaded and on: :func:`bot.cli.command.loaded`; the code its data classes generate and the
patterns its modules compile kept between starts: :mod:`bot.cli.generated`,
:mod:`bot.cli.patterns`), beside the same start compiling that code and those patterns
afresh, and beside the command started with none of it (``bot.cli.command.main`` called
directly), interleaved, in one run.

The commands: ``--version`` (nothing of the app), ``check-config`` on the embedded default,
``init --preset solo`` into a fresh folder, ``ps`` with nothing running (the shell verb's
whole load, answered "not running"), and ``run`` on the embedded default told ``quit`` at
once (the orchestrator's whole load and start, then its stop). Each figure is the median of
``--rounds`` user + system CPU seconds of the process (after a round not counted, which
leaves the bytecode cached), with the modules it loaded.

Run alone: ``.venv/bin/python -m bench.starts [--rounds 7] [--json]``. The load average
is printed first; a figure taken under load is not one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

COMMANDS: dict[str, tuple[list[str], str]] = {
    "--version": (["--version"], ""),
    "check-config": (["check-config"], ""),
    "init solo": (["init", "--preset", "solo", "{dir}"], ""),
    "ps (not running)": (["ps"], ""),
    "run, then quit": (["run"], "quit\n"),
}
"""Each command's words (``{dir}``: a fresh folder) and what is typed on its input."""

_PROGRAM = """
import json, os, resource, sys
def report():
    used = resource.getrusage(resource.RUSAGE_SELF)
    said = {"cpu": used.ru_utime + used.ru_stime, "modules": len(sys.modules)}
    os.write(int(os.environ["BENCH_FD"]), json.dumps(said).encode())
import atexit
atexit.register(report)
sys.argv = ["fleetwarden", *json.loads(os.environ["BENCH_WORDS"])]
way = os.environ["BENCH_WAY"]
if way == "script":
    from bot.cli import main
elif way == "code compiled":
    import bot.cli.generated, bot.cli.patterns
    bot.cli.generated.install = lambda: None
    bot.cli.patterns.install = lambda: None
    from bot.cli import main
else:
    from bot.cli.command import main
main()
"""


def one(words: list[str], typed: str, way: str, scratch: Path) -> tuple[float, int]:
    """CPU seconds and modules of one start of ``words`` (``way``: ``script``, ``code
    compiled`` or ``collector on``) in a fresh folder under ``scratch``."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    read, write = os.pipe()
    env = {**os.environ, "HOME": str(folder), "BENCH_WAY": way, "BENCH_FD": str(write)}
    env["BENCH_WORDS"] = json.dumps([w.replace("{dir}", str(folder / "fleet")) for w in words])
    env.pop("FLEETWARDEN_CONFIG", None)
    subprocess.run(
        [sys.executable, "-c", _PROGRAM],
        input=typed.encode(),
        cwd=folder,
        env=env,
        pass_fds=(write,),
        capture_output=True,
        timeout=120,
        check=False,
    )
    os.close(write)
    with os.fdopen(read) as said:
        figures = json.loads(said.read())
    return float(figures["cpu"]), int(figures["modules"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    ways = ("script", "code compiled", "collector on")
    cpu: dict[tuple[str, str], list[float]] = {}
    modules: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="fw-bench-starts-") as scratch:
        for words, typed in COMMANDS.values():  # a round not counted: the bytecode cached
            one(words, typed, "script", Path(scratch))
        for _ in range(args.rounds):
            for name, (words, typed) in COMMANDS.items():
                for way in ways:  # interleaved: the machine's swings fall on both alike
                    seconds, loaded = one(words, typed, way, Path(scratch))
                    cpu.setdefault((name, way), []).append(seconds)
                    modules[name] = loaded
    rows = []
    for name in COMMANDS:
        script, compiled, on = (statistics.median(cpu[(name, way)]) for way in ways)
        rows.append(
            {"command": name, "modules": modules[name], "cpu_s": round(script, 3),
             "code_compiled_cpu_s": round(compiled, 3), "collector_on_cpu_s": round(on, 3),
             "ratio": round(script / on, 2)}
        )  # fmt: skip
    print(f"load average at end: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'command':18} {'modules':>7} {'CPU s':>7} {'code compiled':>14} {'neither':>8} "
        f"{'ratio':>6}"
    )
    for row in rows:
        print(
            f"{row['command']:18} {row['modules']:7d} {row['cpu_s']:7.3f} "
            f"{row['code_compiled_cpu_s']:14.3f} {row['collector_on_cpu_s']:8.3f} "
            f"{row['ratio']:6.2f}"
        )


if __name__ == "__main__":
    main()
