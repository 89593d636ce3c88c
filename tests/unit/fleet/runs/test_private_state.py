"""What Fleetwarden keeps on disk is its user's alone: directories 0700, files 0600, from
creation on, and those an older version left readable are closed at start."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from bot.app.lock import StateDirLock
from bot.app.logs import setup_logging
from fleet.ledger import Ledger
from fleet.names import AgentName
from fleet.private_files import close_state_dir, private_dir
from fleet.redaction.redactor import Redactor
from fleet.runs.layout import AgentPaths, append_marker
from fleet.timing.clock import SystemClock


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> object:
    """A permissive umask, as a user may well have: modes must not depend on it."""
    old = os.umask(0o002)
    yield
    os.umask(old)


async def test_ledger_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    """The ledger, wherever it is, and SQLite's -wal and -shm beside it are 0600."""
    path = tmp_path / "elsewhere" / "ledger.db"
    ledger = await Ledger.open(path, SystemClock())
    try:
        await ledger.metering.record_metering([], [])
        files = [p for p in path.parent.iterdir() if p.name.startswith("ledger.db")]
        assert {p.name for p in files} >= {"ledger.db", "ledger.db-wal", "ledger.db-shm"}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        await ledger.close()


async def test_an_existing_readable_ledger_is_closed_at_open(tmp_path: Path) -> None:
    """A ledger left 0644 by an older version is 0600 once opened."""
    path = tmp_path / "ledger.db"
    await (await Ledger.open(path, SystemClock())).close()
    path.chmod(0o644)
    ledger = await Ledger.open(path, SystemClock())
    await ledger.close()
    assert mode(path) == 0o600


@pytest.mark.usefixtures("restore_root_logging")
def test_the_log_file_is_0600(tmp_path: Path) -> None:
    """fleetwarden.log is created 0600 in a 0700 directory."""
    log_file = tmp_path / "state" / "fleetwarden.log"
    setup_logging("info", log_file, Redactor())
    logging.getLogger("test").warning("hello")
    assert mode(log_file) == 0o600
    assert mode(log_file.parent) == 0o700


def test_the_state_dir_is_0700_even_when_it_was_open(tmp_path: Path) -> None:
    """Taking the state-dir lock makes the state dir 0700 (and the lock file 0600)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    lock = StateDirLock(state)
    lock.acquire()
    try:
        assert mode(state) == 0o700
        assert mode(lock.path) == 0o600
    finally:
        lock.release()


def test_agent_logs_and_dirs_are_private_from_creation(tmp_path: Path) -> None:
    """An agent's directory and output log are created 0700 and 0600."""
    paths = AgentPaths.of(tmp_path / "state", AgentName("coder-1"))
    append_marker(paths.log, "started")
    assert mode(paths.log) == 0o600
    assert mode(paths.root) == 0o700
    run = private_dir(paths.new_run_dir(SystemClock().now()))
    assert mode(run) == 0o700 and mode(run.parent) == 0o700


def test_what_an_older_version_left_open_is_closed_at_start(tmp_path: Path) -> None:
    """Files and directories of the state dir left readable are closed; an agent's home and
    work directory keep their contents' modes (executables stay executable)."""
    state = tmp_path / "state"
    agent = state / "agents" / "coder-1"
    run = agent / "runs" / "r1"
    home_tool = agent / "home" / "bin" / "tool"
    for directory in (run, home_tool.parent, state / "reports"):
        directory.mkdir(parents=True)
    for file in (
        state / "fleetwarden.log",
        state / "fleetwarden.log.1",
        state / "metering.json",
        agent / "output.log",
        run / "exit.json",
        state / "reports" / "pace.png",
    ):
        file.write_text("x")
        file.chmod(0o644)
    home_tool.write_text("#!/bin/sh\n")
    home_tool.chmod(0o755)
    for directory in (state, agent, agent / "runs", run, state / "reports"):
        directory.chmod(0o755)
    close_state_dir(state)
    assert mode(state) == 0o700
    for directory in (state / "agents", agent, agent / "runs", run, state / "reports"):
        assert mode(directory) == 0o700, directory
    for file in (state / "fleetwarden.log.1", agent / "output.log", run / "exit.json"):
        assert mode(file) == 0o600, file
    assert mode(state / "reports" / "pace.png") == 0o600
    assert mode(home_tool) == 0o755


def test_a_confined_mcp_servers_home_keeps_its_modes_at_start(tmp_path: Path) -> None:
    """A stdio MCP server's kept HOME (npx's install of the server) keeps its programs
    executable across a start, so the server starts again after a restart."""
    state = tmp_path / "state"
    home = state / "mcp" / "everything" / "toolsmith" / "home"
    program = home / ".npm" / "_npx" / "abc" / "node_modules" / "server" / "dist" / "index.js"
    program.parent.mkdir(parents=True)
    program.write_text("#!/usr/bin/env node\n")
    program.chmod(0o755)
    (state / "mcp").chmod(0o755)
    close_state_dir(state)
    assert mode(state / "mcp") == 0o700
    assert mode(state / "mcp" / "everything" / "toolsmith") == 0o700
    assert mode(program) == 0o755
