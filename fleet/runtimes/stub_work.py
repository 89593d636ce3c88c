"""What the stub agent (``stub_agent.py``) does on its checkout and on a review asked of
it: ``commit TEXT`` (a line added to NOTES.md, committed as the checkout's own identity)
and a verdict given through ``fw-msg``, as a review agent is told to, by hand or by its one
rule for a review prompt. Standard library only; loaded by the stub from beside it.
"""

from __future__ import annotations

import os
import subprocess


def say(text: str) -> None:
    print(f"stub: {text}", flush=True)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )


def commit(text: str) -> None:
    """Add ``text`` to NOTES.md and commit it with the message ``text``: no identity given
    here, so the commit is the checkout's own (``user.name``, ``user.email``), which is the
    agent's under Fleetwarden and what its git door holds every pushed commit to."""
    here = os.getcwd()
    try:
        inside = _git("rev-parse", "--is-inside-work-tree")
    except OSError as exc:
        say(f"cannot commit: git cannot run here ({exc})")
        return
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        say(f"cannot commit: {here} is not a git checkout (give the agent a repo to work on)")
        return
    with open("NOTES.md", "a", encoding="utf-8") as notes:
        notes.write(text + "\n")
    for step in (("add", "--", "NOTES.md"), ("commit", "-q", "-m", text, "--", "NOTES.md")):
        done = _git(*step)
        if done.returncode != 0:
            said = " ".join((done.stderr or done.stdout).split()) or f"status {done.returncode}"
            say(f"commit failed at git {step[0]}: {said}")
            return
    head = _git("log", "-1", "--format=%h %an <%ae>").stdout.strip()
    say(f"committed {head}: {text}")


def review(verdict: str, text: str) -> None:
    """Give ``verdict`` (approve or changes) with ``text`` through ``fw-msg``, as the review
    prompt tells an agent to; print its answer."""
    try:
        done = subprocess.run(
            ["fw-msg", "review", verdict, "--", text or "(no words)"],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as exc:
        say(f"review {verdict}: fw-msg cannot run here ({exc}; is it run by Fleetwarden?)")
        return
    said = " ".join((done.stdout + done.stderr).split())
    outcome = "given" if done.returncode == 0 else f"refused (status {done.returncode})"
    say(f"review {verdict} {outcome}: {said}")


def reviewed(prompt: str) -> tuple[str, str]:
    """The stub's verdict on the review ``prompt`` asks: approve a change that has lines
    (each quoted after ``| ``), ask for changes when there is none."""
    changed = [line for line in prompt.splitlines() if line.startswith("| ") and line[2:].strip()]
    if changed:
        return "approve", f"the change has {len(changed)} lines; the stub approves any change"
    return "changes", "there is no change to review"
