"""The stub agent: a small demo program for trying Fleetwarden without any real agent CLI.

It is a demonstration runtime, not an imitation of a real coding agent. It prints
progress lines for its prompt ("count to 5" counts to five; anything else takes three
steps), then echoes every line it receives on stdin. Lines it understands:

    exit         say goodbye and exit with status 0
    fail N       exit with status N (to see how failures look)
    fork         start a child process that sleeps (to see group stop at work)
    lines N      print N numbered lines at once (to see how long output is shown)

It exits with status 0 on SIGTERM. Standard library only; run as a script.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from types import FrameType


def say(text: str) -> None:
    print(f"stub: {text}", flush=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    say("received SIGTERM, exiting")
    sys.exit(0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stub_agent")
    parser.add_argument("--prompt", default="")
    parser.add_argument("--model", default="")
    parser.add_argument("--step-delay", type=float, default=0.05)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)

    say(f"started{f' with model {args.model}' if args.model else ''}")
    prompt = args.prompt.strip()
    if prompt:
        say(f"working on: {prompt}")
        match = re.search(r"count to (\d+)", prompt, re.IGNORECASE)
        steps = min(int(match.group(1)), 1000) if match else 3
        for i in range(1, steps + 1):
            time.sleep(args.step_delay)
            say(str(i) if match else f"step {i}/{steps}")
        say("done")
    say("waiting for input (send 'exit' to quit)")

    children: list[subprocess.Popen[bytes]] = []
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        words = line.split()
        if line.strip() == "exit":
            say("bye")
            return 0
        if len(words) == 2 and words[0] == "fail" and words[1].isdigit():
            say(f"failing with status {words[1]}")
            return int(words[1])
        if len(words) == 2 and words[0] == "lines" and words[1].isdigit():
            count = min(int(words[1]), 100_000)
            sys.stdout.write("".join(f"stub: line {i} of {count}\n" for i in range(1, count + 1)))
            sys.stdout.flush()
            continue
        if line.strip() == "fork":
            child = subprocess.Popen(
                [sys.executable, "-c", "import time\nwhile True: time.sleep(60)"],
                stdin=subprocess.DEVNULL,
            )
            children.append(child)
            say(f"forked child {child.pid}")
            continue
        say(f"received: {line}")
    # stdin closed: keep running until told to stop, like an agent awaiting work.
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
