"""A secret the config names, pasted into the register's words, never written where its
writer cannot redact it — through the real ``fleetwarden run`` console and ``command`` agents.

``teller`` holds ``DEPLOY_TOKEN`` (its ``secret_env``) and hands a task on to ``doer`` with
``fw-msg task``, the value in its title and body; the operator pastes the same value in a
``task new`` title and a ``mission new`` title in chat. The ledger (read with sqlite3, not
through Fleetwarden) holds none of it: each row is redacted as it was stored and marked so.
``fleetwarden tasks`` run with ``DEPLOY_TOKEN`` unset (as docs/operations.md allows) writes
the stored labels, never the value: as markdown, JSON and CSV. A task stored before Fleetwarden
redacted what it stores (its row unmarked) is withheld by that command, said on standard
error with the fix; with the variable set it is redacted there; a Fleetwarden started
without the variable marks no row, and the next start with it redacts them in the ledger.
An agent ``roster reload`` adds with a ``secret_env`` the started config never named is
redacted as one named at start: the reload teaches the redactor its variables. A value in
a title stored before any config named it (the row marked for the secrets named then) is
redacted in the ledger by the reload or the start that names it, and withheld by the export
until then."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.timing.clock import SystemClock
from tests.integration.console_bot import (
    FLEETWARDEN,
    ConsoleBot,
    clean_env,
    processes_where,
    wait_until,
)

pytestmark = pytest.mark.integration

SECRET = f"deploy-{secrets.token_hex(16)}"
"""The value of ``DEPLOY_TOKEN`` (made anew each run, so no key-like value is in the tree)."""
LABEL = "[redacted: DEPLOY_TOKEN]"
WITHHELD = "[withheld: stored before it was redacted]"

TELLER = """\
import os, subprocess, time

value = os.environ["DEPLOY_TOKEN"]
done = subprocess.run(
    ["fw-msg", "task", "doer", "Rotate the deploy token " + value, "It is " + value],
    capture_output=True, text=True, timeout=200,
)
print("FW task exit", done.returncode, flush=True)
print(done.stdout + done.stderr, flush=True)
print("TELLER-DONE", flush=True)
time.sleep(120)  # until stopped; gone by itself if a failed test leaves it
"""
DOER = """\
import time

print("DOER-RAN", flush=True)
time.sleep(120)  # until stopped
"""


def write_config(root: Path, *, teller: bool = True) -> Path:
    """The config: ``doer``, and ``teller`` holding ``DEPLOY_TOKEN`` (unless not ``teller``)."""
    for name, script in (("teller", TELLER), ("doer", DOER)):
        (root / name).mkdir(exist_ok=True)
        (root / name / "agent.py").write_text(script)
    agents = (
        "  - name: teller\n    runtime: command\n"
        f"    argv: [{sys.executable}, -I, agent.py]\n"
        "    workdir: ./teller\n    secret_env: [DEPLOY_TOKEN]\n    talks_to: [doer]\n"
    )
    path = root / "fleetwarden.yaml"
    path.write_text(
        "state_dir: ./state\n"
        "connectors:\n  console: {}\n"
        "defaults:\n  stop_grace_seconds: 1\n"
        "agents:\n"
        f"{agents if teller else ''}"
        "  - name: doer\n    runtime: command\n"
        f"    argv: [{sys.executable}, -I, agent.py]\n"
        "    workdir: ./doer\n"
    )
    return path


def log_of(root: Path, agent: str) -> str:
    path = root / "state" / "agents" / agent / "output.log"
    return path.read_text(errors="replace") if path.exists() else ""


def rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    """What the ledger's SQLite file holds, read without Fleetwarden."""
    with contextlib.closing(sqlite3.connect(root / "state" / "ledger.db")) as db:
        return list(db.execute(sql))


def export(root: Path, config: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``fleetwarden tasks --markdown`` as an operator's shell runs it: without
    ``DEPLOY_TOKEN`` unless given in ``env``."""
    out.mkdir(exist_ok=True)
    return tasks_command(root, config, "--markdown", "--out", str(out), **env)


def tasks_command(
    root: Path, config: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), "tasks", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=clean_env(**env), cwd=root,
    )  # fmt: skip


def data(root: Path, config: Path, **env: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``fleetwarden tasks --json`` and ``--csv``, each checked to name no secret, read."""
    printed = []
    for form in ("--json", "--csv"):
        done = tasks_command(root, config, form, **env)
        assert done.returncode == 0, done
        assert SECRET not in done.stdout and SECRET[:16] not in done.stdout, done.stdout
        printed.append(done.stdout)
    return json.loads(printed[0]), list(csv.DictReader(io.StringIO(printed[1])))


def stop_agents(root: Path) -> None:
    """Kill what is left of the agents (a test that failed before stopping them)."""
    for pid in processes_where(
        lambda cwd, cmdline: cwd.startswith(str(root)) and b"agent.py" in cmdline
    ):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def stored_unredacted(path: Path) -> None:
    """A task and a mission as a Fleetwarden that did not redact what it stored kept them:
    the value in clear."""
    ledger = await Ledger.connect(LedgerLocation(path), SystemClock())
    try:
        await ledger.missions.add_mission("ops", f"Keys {SECRET}", "console")
        named = NewTask(f"Rotate {SECRET}", "chat", "console", name=SECRET[:20])  # as typed
        await ledger.tasks.add_task(named, NO_PROJECTION)
    finally:
        await ledger.close()


def run_bot(root: Path, config: Path) -> ConsoleBot:
    return ConsoleBot(root, "--config", str(config), env=clean_env(DEPLOY_TOKEN=SECRET))


def test_a_secret_in_a_task_title_is_never_stored_nor_exported_in_clear(tmp_path: Path) -> None:
    """A config-named secret in a task's or mission's words (chat, an agent's ``fw-msg
    task``) is redacted in the ledger itself, and the export without it never shows it."""
    config = write_config(tmp_path)
    bot = run_bot(tmp_path, config)
    try:
        bot.command(f"mission new ops Keys: {SECRET}", r"Mission ops made")
        bot.command(f"task new --mission ops Rotate {SECRET} today", r"Task #1 \S+ made")
        bot.command("spawn teller", r"Agent teller started")
        assert wait_until(lambda: "TELLER-DONE" in log_of(tmp_path, "teller"), timeout=60)
        assert "FW task exit 0" in log_of(tmp_path, "teller")
        assert wait_until(lambda: len(rows(tmp_path, "SELECT id FROM tasks")) == 2, timeout=30)
        assert wait_until(lambda: "DOER-RAN" in log_of(tmp_path, "doer"), timeout=30)
        bot.command("stop teller", r"Stopped teller")
        bot.command("stop doer", r"Stopped doer")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr

    # Exported by a shell without the variable: the labels, never the value.
    out = tmp_path / "docs"
    wrote = export(tmp_path, config, out)
    assert wrote.returncode == 0, wrote
    assert wrote.stderr == "", wrote  # nothing withheld: every row was redacted as stored
    for name in ("TASKS.md", "MISSIONS.md"):
        text = (out / name).read_text()
        assert SECRET not in text and SECRET[:16] not in text, text
    assert (
        "Rotate the deploy token \\[redacted: DEPLOY\\_TOKEN\\]" in (out / "TASKS.md").read_text()
    )
    assert "Keys: \\[redacted: DEPLOY\\_TOKEN\\]" in (out / "MISSIONS.md").read_text()
    printed, table = data(tmp_path, config)  # and as data
    assert [t["title"] for t in printed["tasks"]] == [
        f"Rotate {LABEL} today", f"Rotate the deploy token {LABEL}"
    ]  # fmt: skip
    assert printed["tasks"][1]["body"] == f"It is {LABEL}"
    assert [m["title"] for m in printed["missions"]] == [f"Keys: {LABEL}"]
    assert [(r["title"], r["words_withheld"]) for r in table] == [
        (f"Rotate {LABEL} today", "False"), (f"Rotate the deploy token {LABEL}", "False")
    ]  # fmt: skip

    # The ledger itself: every word redacted as it was stored, each row marked so.
    tasks = rows(tmp_path, "SELECT name, title, body, why, source_ref, asked_by, source FROM tasks")
    missions = rows(tmp_path, "SELECT name, title FROM missions")
    assert [row[-1] for row in tasks] == ["chat", "task"]
    for row in [*tasks, *missions]:
        assert all(SECRET not in str(v) and SECRET[:16] not in str(v) for v in row), row
    marks = rows(tmp_path, "SELECT redacted FROM tasks UNION ALL SELECT redacted FROM missions")
    assert marks == [(1,)] * 3
    assert tasks[0][1] == f"Rotate {LABEL} today"
    assert tasks[1][1] == f"Rotate the deploy token {LABEL}" and tasks[1][2] == f"It is {LABEL}"
    assert missions == [("ops", f"Keys: {LABEL}")]


def test_words_stored_before_are_withheld_until_the_next_start_redacts_them(
    tmp_path: Path,
) -> None:
    """A row stored unredacted (before Fleetwarden redacted what it stores, or by one
    started without a secret the config names) is withheld by an export that lacks one,
    redacted by one that has them all, and redacted in the ledger at the next start of a
    Fleetwarden that has them all."""
    config = write_config(tmp_path)
    asyncio.run(stored_unredacted(tmp_path / "state" / "ledger.db"))
    # Started without DEPLOY_TOKEN, Fleetwarden cannot vouch for any row: it marks none.
    blind = ConsoleBot(tmp_path, "--config", str(config), env=clean_env())
    try:
        blind.command("task new Another one", r"Task #2 \S+ made")
        assert blind.close() == 0, blind.stderr
    finally:
        if blind.proc.poll() is None:
            blind.kill()
    assert rows(tmp_path, "SELECT title, redacted FROM tasks") == [
        (f"Rotate {SECRET}", 0), ("Another one", 0)
    ]  # fmt: skip

    out = tmp_path / "docs"
    held = export(tmp_path, config, out)
    assert held.returncode == 0, held
    written = (out / "TASKS.md").read_text() + (out / "MISSIONS.md").read_text()
    assert SECRET not in written and SECRET[:16] not in written
    assert "\\[withheld: stored before it was redacted\\]" in written
    assert "the words of tasks #1, #2 and of mission ops are written as [withheld" in held.stderr
    assert "DEPLOY_TOKEN not set here" in held.stderr
    assert "start Fleetwarden once with this config" in held.stderr
    printed, table = data(tmp_path, config)
    withheld = [(WITHHELD, True)] * 2
    assert [(t["title"], t["words_withheld"]) for t in printed["tasks"]] == withheld
    assert [(m["title"], m["words_withheld"]) for m in printed["missions"]] == [(WITHHELD, True)]
    assert [(r["title"], r["words_withheld"]) for r in table] == [(WITHHELD, "True")] * 2

    shown = export(tmp_path, config, out, DEPLOY_TOKEN=SECRET)  # it knows every secret
    assert shown.returncode == 0 and shown.stderr == "", shown
    written = (out / "TASKS.md").read_text() + (out / "MISSIONS.md").read_text()
    assert SECRET not in written and "Rotate \\[redacted: DEPLOY\\_TOKEN\\]" in written

    again = run_bot(tmp_path, config)  # its start redacts what was stored before
    try:
        again.command("task 1", r"Rotate \[redacted: DEPLOY_TOKEN\]")
        assert again.close() == 0, again.stderr
    finally:
        if again.proc.poll() is None:
            again.kill()
    assert rows(tmp_path, "SELECT name, title, redacted FROM tasks") == [
        ("rotate-redacted-deploy", f"Rotate {LABEL}", 1), ("another-one", "Another one", 1)
    ]  # fmt: skip
    assert rows(tmp_path, "SELECT title, redacted FROM missions") == [(f"Keys {LABEL}", 1)]
    after = export(tmp_path, config, out)
    assert after.returncode == 0 and after.stderr == "", after
    assert "Rotate \\[redacted: DEPLOY\\_TOKEN\\]" in (out / "TASKS.md").read_text()


def test_a_secret_an_agent_added_by_a_reload_holds_is_redacted_as_stored(tmp_path: Path) -> None:
    """An agent ``roster reload`` adds with a ``secret_env`` the started config never named:
    its value, handed on with ``fw-msg task`` and pasted in chat, is redacted in the ledger
    and marked, and the export without it never shows it."""
    config = write_config(tmp_path, teller=False)
    bot = run_bot(tmp_path, config)  # DEPLOY_TOKEN in its environment, named by no config
    try:
        bot.command("task new Before the reload", r"Task #1 \S+ made")
        write_config(tmp_path)
        bot.command("roster reload", r"Roster reloaded — added: teller")
        bot.command(f"task new Rotate {SECRET}", r"Task #2 \S+ made")
        bot.command("spawn teller", r"Agent teller started")
        assert wait_until(lambda: "TELLER-DONE" in log_of(tmp_path, "teller"), timeout=60)
        assert "FW task exit 0" in log_of(tmp_path, "teller")
        assert wait_until(lambda: "DOER-RAN" in log_of(tmp_path, "doer"), timeout=30)
        bot.command("stop teller", r"Stopped teller")
        bot.command("stop doer", r"Stopped doer")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)

    out = tmp_path / "docs"
    wrote = export(tmp_path, config, out)
    assert wrote.returncode == 0 and wrote.stderr == "", wrote
    text = (out / "TASKS.md").read_text()
    assert SECRET not in text and SECRET[:16] not in text, text
    data(tmp_path, config)
    assert rows(tmp_path, "SELECT title, body, redacted FROM tasks") == [
        ("Before the reload", "", 1),
        (f"Rotate {LABEL}", "", 1),
        (f"Rotate the deploy token {LABEL}", f"It is {LABEL}", 1),
    ]


def test_a_title_stored_before_a_reload_named_its_secret_is_redacted_then(
    tmp_path: Path,
) -> None:
    """A title holding a value no secret_env names yet is stored and marked; a ``roster
    reload`` that adds an agent naming it redacts the row in the ledger, and the export
    without the variable never writes the value; a mark made before a config named it is
    never trusted by an export that cannot redact it."""
    config = write_config(tmp_path, teller=False)
    bot = run_bot(tmp_path, config)  # DEPLOY_TOKEN in its environment, named by no config
    try:
        bot.command(f"mission new ops Keys {SECRET}", r"Mission ops made")
        bot.command(f"task new Use {SECRET} for deploys", r"Task #1 \S+ made")
        assert rows(tmp_path, "SELECT title, redacted FROM tasks") == [
            (f"Use {SECRET} for deploys", 1)
        ]  # marked: redacted of every secret named then (none)
        write_config(tmp_path)  # the operator adds teller, its secret_env DEPLOY_TOKEN
        out = tmp_path / "early"
        early = export(tmp_path, config, out)  # before the reload: withheld, not trusted
        assert early.returncode == 0, early
        written = (out / "TASKS.md").read_text() + (out / "MISSIONS.md").read_text()
        assert SECRET not in written and SECRET[:16] not in written, written
        assert "or before the config named a secret it names now" in early.stderr
        assert "DEPLOY_TOKEN not set here" in early.stderr
        bot.command("roster reload", r"Roster reloaded — added: teller")
        assert wait_until(
            lambda: (
                rows(tmp_path, "SELECT title, redacted FROM tasks")
                == [(f"Use {LABEL} for deploys", 1)]
            ),
            timeout=30,
        )
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr

    out = tmp_path / "docs"
    wrote = export(tmp_path, config, out)
    assert wrote.returncode == 0 and wrote.stderr == "", wrote
    text = (out / "TASKS.md").read_text() + (out / "MISSIONS.md").read_text()
    assert SECRET not in text and SECRET[:16] not in text, text
    assert "Use \\[redacted: DEPLOY\\_TOKEN\\] for deploys" in text
    printed, table = data(tmp_path, config)
    assert [t["title"] for t in printed["tasks"]] == [f"Use {LABEL} for deploys"]
    assert [m["title"] for m in printed["missions"]] == [f"Keys {LABEL}"]
    assert [(r["title"], r["words_withheld"]) for r in table] == [
        (f"Use {LABEL} for deploys", "False")
    ]  # fmt: skip
    stored = rows(tmp_path, "SELECT name, title, redacted, redacted_for FROM tasks")
    assert stored == [(stored[0][0], f"Use {LABEL} for deploys", 1, '["DEPLOY_TOKEN"]')]
    assert SECRET[:16] not in str(stored[0][0])
    assert rows(tmp_path, "SELECT title, redacted FROM missions") == [(f"Keys {LABEL}", 1)]


def test_a_title_stored_before_a_restart_named_its_secret_is_redacted_at_the_start(
    tmp_path: Path,
) -> None:
    """A title marked under a config that named no secret is withheld by an export without
    the variable once the config names it, and redacted in the ledger at the next start."""
    config = write_config(tmp_path, teller=False)
    bot = run_bot(tmp_path, config)
    try:
        bot.command(f"task new Use {SECRET} for deploys", r"Task #1 \S+ made")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    write_config(tmp_path)  # the config names DEPLOY_TOKEN now (teller's secret_env)
    out = tmp_path / "docs"
    held = export(tmp_path, config, out)
    assert held.returncode == 0, held
    assert SECRET not in (out / "TASKS.md").read_text()
    assert "the words of task #1 are written as [withheld" in held.stderr
    again = run_bot(tmp_path, config)  # its start redacts the row of the secret named now
    try:
        again.command("task 1", r"Use \[redacted: DEPLOY_TOKEN\] for deploys")
        assert again.close() == 0, again.stderr
    finally:
        if again.proc.poll() is None:
            again.kill()
    assert rows(tmp_path, "SELECT title, redacted, redacted_for FROM tasks") == [
        (f"Use {LABEL} for deploys", 1, '["DEPLOY_TOKEN"]')
    ]  # fmt: skip
    after = export(tmp_path, config, out)
    assert after.returncode == 0 and after.stderr == "", after
    assert "Use \\[redacted: DEPLOY\\_TOKEN\\] for deploys" in (out / "TASKS.md").read_text()
