"""Tests for fleet.sandbox: bubblewrap's command line, the doors, the egress defaults, the
forwarder's arguments, the pid namespace lookup, and launches refused or wrapped."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.destinations import DEFAULT_ALLOW
from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName
from fleet.sandbox import forwarder
from fleet.sandbox.egress.doors import DoorSet, fixed
from fleet.sandbox.host.bwrap_probe import probe
from fleet.sandbox.host.procs import namespace_pids, sandbox_init_pid
from fleet.sandbox.places import needed_paths
from fleet.sandbox.policy import DOORS, Door, Layout, bwrap_argv
from fleet.sandbox.schema import check_egress, unsandboxed_warnings
from fleet.sandbox.service import Sandboxes, SandboxSettings, loopback_ports, proxy_env
from tests import sandbox_need
from tests.polling import eventually

NOBODY = 65534

STATE = Path("/srv/fw/state")
WORK = Path("/srv/fw/work")
HOME = STATE / "agents" / "coder" / "home"


def pairs(argv: list[str], option: str) -> list[str]:
    """The values that follow each ``option`` in ``argv``."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == option]


def test_an_open_sandbox_hides_the_state_dir_and_binds_only_home_and_workdir() -> None:
    """Host read-only; the config dir a read-only tmpfs, the state dir inside it with no
    mount of its own; HOME and workdir bound after them (so they show through); the host's
    network; the agent after the forwarder."""
    layout = Layout(workdir=WORK, home=HOME, hidden=(STATE, Path("/srv/fw"), Path("/")))
    argv = bwrap_argv(layout, ["claude", "-p", "hi"], bwrap="bwrap", python="/usr/bin/python3")
    assert argv[:2] == ["bwrap", "--unshare-all"] and "--share-net" in argv
    assert "--die-with-parent" in argv
    assert pairs(argv, "--tmpfs") == ["/tmp", "/run", "/srv/fw"]  # never "/"
    assert pairs(argv, "--remount-ro") == ["/run", "/srv/fw"]
    assert "/run/systemd/resolve" in pairs(argv, "--ro-bind-try")  # DNS, and no sockets
    assert pairs(argv, "--bind") == [str(HOME), str(WORK)]
    assert argv.index("--bind") > argv.index("/srv/fw")
    assert pairs(argv, "--size") == [str(layout.tmp_size)]
    tail = argv[argv.index("--") + 1 :]
    assert tail[:4] == ["/usr/bin/python3", "-I", "-S", str(forwarder.__file__)]
    assert tail[4:] == ["--", "claude", "-p", "hi"]


def test_a_needed_path_under_a_hidden_one_comes_back_read_only_without_what_it_holds() -> None:
    """Fleetwarden's venv under the config dir is bound back read-only; the state dir inside
    that venv's parent is hidden again after it."""
    venv = Path("/srv/fw/.venv")
    layout = Layout(
        workdir=WORK,
        home=HOME,
        hidden=(Path("/srv/fw"), Path("/srv/fw/.venv/state")),
        needed=(venv, Path("/usr/lib")),
    )
    argv = bwrap_argv(layout, ["x"], bwrap="bwrap", python="python3")
    assert pairs(argv, "--ro-bind-try")[-1:] == [str(venv)]
    tmpfs = pairs(argv, "--tmpfs")
    assert tmpfs.count("/srv/fw/.venv/state") == 1  # hidden again after the bind only
    assert argv.index("/srv/fw/.venv/state") > argv.index(str(venv))


def test_the_workdirs_beside_an_agents_own_get_no_mount_point_in_the_hidden_state_dir() -> None:
    """Other agents' checkouts inside the hidden state dir are covered by its tmpfs alone:
    no mount of their own would make their names show beside the agent's checkout; one
    outside every hidden path is still hidden where it lies."""
    checkouts = STATE / "checkouts" / "app"
    mine, theirs = checkouts / "coder-1", checkouts / "other-2"
    outside = Path("/srv/elsewhere/other")
    layout = Layout(workdir=mine, home=HOME, hidden=(STATE, theirs, outside))
    argv = bwrap_argv(layout, ["x"], bwrap="bwrap", python="python3")
    assert sorted(pairs(argv, "--tmpfs")[2:]) == [str(outside), str(STATE)]
    assert sorted(pairs(argv, "--remount-ro")[1:]) == [str(outside), str(STATE)]
    assert pairs(argv, "--bind") == [str(HOME), str(mine)]
    assert str(theirs) not in argv


def test_a_locked_sandbox_has_its_own_network_and_doors_on_the_same_ports() -> None:
    """No --share-net; /run a tmpfs with the door directory at /run/fw; the forwarder
    listens on each door's port and pipes it to the socket there."""
    layout = Layout(
        workdir=WORK,
        home=HOME,
        hidden=(STATE,),
        locked=True,
        door_dir=STATE / "sandbox" / "coder" / "doors",
        doors=(Door(41000, "tcp-41000.sock"), Door(3128, "egress.sock")),
    )
    argv = bwrap_argv(layout, ["agent"], bwrap="bwrap", python="python3")
    assert "--share-net" not in argv
    assert "/run" in pairs(argv, "--tmpfs") and "/run/systemd/resolve" not in argv
    assert pairs(argv, "--bind")[-1] == str(STATE / "sandbox" / "coder" / "doors")
    assert pairs(argv, "--door") == [
        f"41000={DOORS / 'tcp-41000.sock'}",
        f"3128={DOORS / 'egress.sock'}",
    ]


def test_the_forwarder_reads_its_doors_and_the_agent_argv() -> None:
    """``--door PORT=PATH`` pairs, then the agent's argv untouched after ``--``."""
    doors, command = forwarder.parse(["--door", "80=/run/fw/a.sock", "--", "sh", "--door"])
    assert doors == [(80, "/run/fw/a.sock")] and command == ["sh", "--door"]
    with pytest.raises(ValueError):
        forwarder.parse(["--door", "80=/x"])


def test_only_loopback_urls_get_doors() -> None:
    """Ports of 127.0.0.1 / localhost URLs, once each; other hosts and no port: none."""
    urls = [
        "http://127.0.0.1:4100/a/coder/anthropic/k",
        "http://127.0.0.1:4100/a/coder/openai/k",
        "http://127.0.0.1:4200/heartbeat/coder",
        "https://api.anthropic.com",
        "http://localhost:4300/",
        None,
    ]
    assert loopback_ports(urls) == [4100, 4200, 4300]


def test_a_locked_agent_with_an_allow_list_is_pointed_at_the_forward_proxy() -> None:
    """Both spellings of the proxy variables, and loopback goes direct."""
    env = proxy_env(3128)
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://127.0.0.1:3128"
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://127.0.0.1:3128"
    assert env["NO_PROXY"] == "127.0.0.1,localhost"


def test_egress_is_locked_by_default_with_the_registries_and_the_forge() -> None:
    """Deny by default: a spec that says nothing is locked, with the default allow-list."""
    spec = AgentSpec(name=AgentName("a"), runtime="command")
    assert (spec.sandbox, spec.egress, spec.egress_allow) == ("bwrap", "locked", DEFAULT_ALLOW)
    assert {"registry.npmjs.org", "pypi.org", "github.com"} <= set(DEFAULT_ALLOW)


def test_egress_settings_that_cannot_hold_are_named() -> None:
    """Locked without a sandbox, or an allow-list on an open network, is a problem."""
    assert check_egress("agent 'a'", "bwrap", "locked", ["github.com"]) is None
    assert "sandbox: bwrap" in (check_egress("agent 'a'", "none", "locked", []) or "")
    assert "egress: locked" in (check_egress("agent 'a'", "bwrap", "open", ["x.org"]) or "")
    warned = unsandboxed_warnings([("a", "bwrap", "locked"), ("b", "none", "open")])
    assert len(warned) == 1 and "'b'" in warned[0]
    warned = unsandboxed_warnings([("c", "bwrap", "open")])
    assert len(warned) == 1 and "egress: open" in warned[0]


def test_namespace_pids_refuses_the_host_namespace_and_forgets_the_dead() -> None:
    """Fleetwarden's own namespace is no sandbox; a gone pid has no processes."""
    with pytest.raises(ValueError):
        namespace_pids(os.getpid())
    assert namespace_pids(2**22 + 1) == []


def test_a_run_without_a_sandbox_record_has_no_init_pid(tmp_path: Path) -> None:
    """No sandbox.json, or one naming a process that is gone: None."""
    assert sandbox_init_pid(tmp_path) is None
    (tmp_path / "sandbox.json").write_text('{"init_pid": 4194305, "start_ticks": 1}')
    assert sandbox_init_pid(tmp_path) is None


async def test_a_missing_bwrap_is_reported_by_the_probe() -> None:
    """No such program: the probe says bubblewrap is not installed."""
    said = await probe("/nonexistent/bwrap")
    assert said is not None and "not installed" in said


def plan_for(tmp_path: Path) -> LaunchPlan:
    (tmp_path / "work").mkdir(exist_ok=True)
    return LaunchPlan(argv=("python3", "-V"), env={"PATH": "/usr/bin"}, cwd=tmp_path / "work")


async def test_a_sandboxed_launch_is_refused_with_the_fix_when_bwrap_cannot_work(
    tmp_path: Path,
) -> None:
    """The probe's reason and the fix (install, user namespaces, or sandbox: none); an
    agent with sandbox: none runs unchanged."""
    sandboxes = Sandboxes(SandboxSettings(state_dir=tmp_path, hidden=(), bwrap="/nonexistent"))
    assert await sandboxes.start() is not None
    spec = AgentSpec(name=AgentName("coder"), runtime="command")
    with pytest.raises(LaunchFailed, match=r"cannot start sandboxed.*sandbox: none"):
        await sandboxes.wrap(spec, plan_for(tmp_path), tmp_path / "home", [])
    plain = AgentSpec(name=AgentName("coder"), runtime="command", sandbox="none")
    assert await sandboxes.wrap(plain, plan_for(tmp_path), tmp_path, []) == plan_for(tmp_path)


async def test_a_workdir_that_holds_fleetwardens_files_is_refused(tmp_path: Path) -> None:
    """Binding it would show the state dir again: the launch says so instead."""
    sandboxes = Sandboxes(SandboxSettings(state_dir=tmp_path / "state", hidden=()))
    spec = AgentSpec(name=AgentName("coder"), runtime="command")
    plan = LaunchPlan(argv=("true",), env={}, cwd=tmp_path)
    with pytest.raises(LaunchFailed, match=r"holds .*state"):
        await sandboxes.wrap(spec, plan, tmp_path / "home", [])


def test_a_path_directory_under_a_hidden_home_brings_its_install_not_the_data_beside_it(
    tmp_path: Path,
) -> None:
    """``~/.cargo/bin`` on PATH under a hidden HOME brings the rest of ``~/.cargo`` but its
    credentials; ``~/.local/bin`` brings ``~/.local/lib`` and the pipx venv a link there
    leads into, with the Python it was made from, never ``~/.local/share`` or ``state``;
    ``~/bin`` brings itself alone, never the HOME around it (one with ``.ssh`` in it, though
    neither Fleetwarden's nor in ``/home``)."""
    home = tmp_path / "home" / "fw"
    cargo, local = home / ".cargo", home / ".local"
    venv = local / "share" / "pipx" / "venvs" / "tool"
    python = tmp_path / "pythons" / "3.12"
    for made in (cargo / "bin", cargo / "registry", local / "lib", local / "state", home / "bin"):
        made.mkdir(parents=True)
    for made in (venv / "bin", local / "bin", local / "share" / "keyrings", home / ".ssh"):
        made.mkdir(parents=True, exist_ok=True)
    for secret in ("credentials.toml", "credentials", "auth.json", "gh_token"):
        (cargo / secret).write_text("held\n")
    (python / "bin").mkdir(parents=True)
    (python / "lib").mkdir()
    (venv / "pyvenv.cfg").write_text(f"home = {python / 'bin'}\nversion = 3.12.0\n")
    (venv / "bin" / "tool").write_text("#!/bin/sh\n")
    (local / "bin" / "tool").symlink_to(venv / "bin" / "tool")
    path = f"{cargo / 'bin'}:{local / 'bin'}:{home / 'bin'}:/usr/bin"
    plan = LaunchPlan(argv=("true",), env={"PATH": path}, cwd=WORK)
    needed = needed_paths(plan, HOME, (STATE, tmp_path / "home"), python=sys.executable)
    assert {cargo / "bin", cargo / "registry", local / "bin", local / "lib"} <= set(needed)
    assert {venv, python / "bin", python / "lib", home / "bin"} <= set(needed)
    kept_out = (local, local / "share", local / "state", cargo, home)
    assert not set(kept_out) & set(needed)
    assert not [p for p in needed if p.parent == cargo and p.name not in ("bin", "registry")]
    assert not [p for p in needed if p.is_relative_to(local / "share" / "keyrings")]
    stdio = needed_paths(plan, HOME, (STATE, tmp_path / "home"), python="x", prefixes=False)
    assert cargo / "registry" not in stdio and venv in stdio  # a server: its links only


@sandbox_need.root("needs root to look as another user")
def test_a_path_directory_fleetwarden_cannot_reach_is_left_out(tmp_path: Path) -> None:
    """Fleetwarden run as `nobody` with root's PATH (``/root/.cargo/bin`` on it): bubblewrap,
    run as `nobody`, could not bind back what `nobody` cannot reach, and every start would
    fail; such a directory is left out, the reachable ones kept."""
    closed = tmp_path / "closed"
    (closed / ".cargo" / "bin").mkdir(parents=True)
    closed.chmod(0o700)
    plan = LaunchPlan(argv=("true",), env={"PATH": f"{closed}/.cargo/bin:/usr/bin"}, cwd=WORK)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child looks as `nobody`, then ends without running pytest's exits
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            needed = needed_paths(plan, HOME, (closed,), python=sys.executable)
            os.write(write, "\n".join(map(str, needed)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as said:
        seen = said.read().splitlines()
    os.waitpid(pid, 0)
    assert "/usr" in seen or "/usr/bin" in seen, seen
    assert not [p for p in seen if p.startswith(str(closed))], seen
    assert str(closed / ".cargo") in map(str, needed_paths(plan, HOME, (), python="python3"))
    under = needed_paths(plan, HOME, (closed,), python="python3")
    assert str(closed / ".cargo" / "bin") in map(str, under)


def test_a_program_in_the_agents_own_places_or_behind_a_link_there_binds_nothing(
    tmp_path: Path,
) -> None:
    """Its own `run.sh` needs no bind (its workdir is there); a symlink it put there in
    place of it is not resolved into the directory it points at; a program elsewhere
    still brings its install."""
    work, other = tmp_path / "work", tmp_path / "other" / "scripts"
    for where in (work, other):
        where.mkdir(parents=True)
    for program in (work / "run.sh", other / "run.sh"):
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    home = tmp_path / "home"

    def needed(program: Path) -> tuple[Path, ...]:
        plan = LaunchPlan(argv=(str(program),), env={"PATH": "/usr/bin"}, cwd=work)
        return needed_paths(plan, home, (), python=sys.executable)

    base = needed(Path("/usr/bin/env"))
    assert Path("/usr/bin") in base
    assert needed(work / "run.sh") == base[:-2] and needed(other / "run.sh")[-1] == other
    (work / "run.sh").unlink()
    (work / "run.sh").symlink_to(other / "run.sh")
    assert other not in needed(work / "run.sh")


async def test_the_configs_workdirs_are_hidden_whole_and_no_agent_may_work_in_them_all(
    tmp_path: Path,
) -> None:
    """`workdirs:` is made at start and a tmpfs in every sandbox, the agent's own workdir
    bound back below it; a workdir that is (or holds) it is refused, naming it."""
    parent = tmp_path / "work"
    settings = SandboxSettings(state_dir=tmp_path / "state", hidden=(), workdirs=parent)
    started = Sandboxes(settings)
    await started.start()  # made whether or not bubblewrap works here
    await started.stop()
    assert parent.is_dir() and parent.stat().st_mode & 0o777 == 0o700
    sandboxes = Sandboxes(settings)
    spec = AgentSpec(name=AgentName("coder"), runtime="command", egress="open")
    (parent / "coder").mkdir()
    plan = LaunchPlan(argv=("python3", "-V"), env={"PATH": "/usr/bin"}, cwd=parent / "coder")
    wrapped = await sandboxes.wrap(spec, plan, tmp_path / "home", [])
    assert str(parent) in pairs(list(wrapped.argv), "--tmpfs")
    assert str(parent / "coder") in pairs(list(wrapped.argv), "--bind")
    with pytest.raises(LaunchFailed, match=r"holds .*work, which no agent may see"):
        await sandboxes.wrap(spec, replace(plan, cwd=parent), tmp_path / "home", [])
    await sandboxes.stop()


async def test_a_locked_launch_opens_its_doors_and_release_closes_them(tmp_path: Path) -> None:
    """One socket per loopback port given, in a 0700 directory; gone after release."""
    sandboxes = Sandboxes(SandboxSettings(state_dir=tmp_path, hidden=()))
    spec = AgentSpec(name=AgentName("coder"), runtime="command", egress="locked", egress_allow=())
    wrapped = await sandboxes.wrap(
        spec, plan_for(tmp_path), tmp_path / "home", ["http://127.0.0.1:4100/a", None]
    )
    doors = tmp_path / "sandbox" / "coder" / "doors"
    assert wrapped.sandboxed and "--share-net" not in wrapped.argv
    assert (doors / "tcp-4100.sock").is_socket()
    assert doors.stat().st_mode & 0o777 == 0o700
    assert "HTTPS_PROXY" not in wrapped.env  # no allow-list: no forward proxy
    await sandboxes.release(AgentName("coder"))
    assert not (doors / "tcp-4100.sock").exists()
    await sandboxes.stop()


async def test_a_door_pipes_to_its_port_and_closing_it_cuts_open_connections(
    tmp_path: Path,
) -> None:
    """Bytes go both ways through the Unix socket; after close the connection ends and
    the socket is gone, with nothing for the loop's error handler (no traceback in the
    log for each connection a closing door cut)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(100):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    doors = DoorSet(tmp_path / "doors")
    await doors.open("tcp.sock", fixed(port))
    reader, writer = await asyncio.open_unix_connection(str(tmp_path / "doors" / "tcp.sock"))
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.read(4), 5) == b"ping"
    assert await doors.close("tcp.sock")
    assert await asyncio.wait_for(reader.read(100), 5) == b""
    assert not (tmp_path / "doors" / "tcp.sock").exists()
    writer.close()
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.05)
    loop.set_exception_handler(None)
    assert errors == []


async def test_a_door_to_our_own_server_serves_it_in_place(tmp_path: Path) -> None:
    """A door onto the heartbeat endpoint serves each connection in place, with the
    server's own checks (a wrong token is refused); past the door's cap a connection is
    closed at once, and closing the door cuts those still open."""
    from fleet.watchdog.heartbeat import HeartbeatServer

    beats: list[tuple[str, str]] = []

    async def on_beat(agent: str, kind: str) -> None:
        beats.append((agent, kind))

    server = HeartbeatServer(tmp_path / "state", on_beat)
    await server.start()
    try:
        token = server.token_for("c1")
        doors = DoorSet(tmp_path / "doors", max_open=3)
        await doors.open_served("hb.sock", server.connection)
        path = str(tmp_path / "doors" / "hb.sock")

        async def post(token: str) -> bytes:
            reader, writer = await asyncio.open_unix_connection(path)
            body = b'{"state": "working"}'
            writer.write(
                b"POST /heartbeat/c1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                + f"X-Fleetwarden-Token: {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer

        assert (await post(token)).startswith(b"HTTP/1.1 204")
        assert (await post("wrong")).startswith(b"HTTP/1.1 403")
        assert beats == [("c1", "working")]
        held = [await asyncio.open_unix_connection(path) for _ in range(3)]
        door = doors._doors["hb.sock"]
        await eventually(  # all three taken in, so the next one is past the cap
            lambda: len(door._connections) + len(door._in_place) == 3, "three held connections"
        )
        extra_reader, extra_writer = await asyncio.open_unix_connection(path)
        assert await asyncio.wait_for(extra_reader.read(), 5) == b""  # past the cap
        extra_writer.close()
        assert await doors.close("hb.sock")
        for reader, writer in held:
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
    finally:
        await server.stop()


def test_a_needed_path_under_tmp_comes_back_through_the_private_tmp() -> None:
    """A checkout (its venv, the fleet package) under /tmp — a CI runner's, say — is still
    there for the agent, read-only, though /tmp is the sandbox's own tmpfs; other paths
    under /tmp are not."""
    venv = Path("/tmp/ci-1234/p/.venv")
    layout = Layout(workdir=WORK, home=HOME, hidden=(STATE,), needed=(venv, Path("/usr/lib")))
    argv = bwrap_argv(layout, ["x"], bwrap="bwrap", python="python3")
    assert str(venv) in pairs(argv, "--ro-bind-try")
    assert "/usr/lib" not in pairs(argv, "--ro-bind-try")  # not covered: no bind needed
    assert argv.index(str(venv)) > argv.index("/tmp")  # after the tmpfs, so it shows


async def test_a_door_in_a_deep_state_dir_still_opens(tmp_path: Path) -> None:
    """A door's path past the 108-byte socket limit is bound through its directory's
    descriptor: the socket is where the sandbox expects it, and it pipes."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    deep = tmp_path / ("d" * 60) / ("e" * 60) / "doors"
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    doors = DoorSet(deep)
    try:
        await doors.open("tcp-41000.sock", fixed(server.sockets[0].getsockname()[1]))
        assert len(str(deep / "tcp-41000.sock")) > 108 and (deep / "tcp-41000.sock").is_socket()
        cwd = os.getcwd()
        os.chdir(deep)  # a client reaches it by a short relative path
        try:
            reader, writer = await asyncio.open_unix_connection("tcp-41000.sock")
        finally:
            os.chdir(cwd)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.read(4), 5) == b"ping"
        writer.close()
    finally:
        await doors.close_all()
        server.close()
        await server.wait_closed()


def test_a_review_agents_workdir_is_bound_read_only() -> None:
    """A layout whose workdir is not writable (a review agent's checkout): the workdir
    bound ``--ro-bind``, HOME still ``--bind``; by default the workdir is writable."""
    layout = Layout(workdir=WORK, home=HOME, hidden=(STATE,), workdir_writable=False)
    argv = bwrap_argv(layout, ["claude"], bwrap="bwrap", python="/usr/bin/python3")
    assert pairs(argv, "--bind") == [str(HOME)]
    assert str(WORK) in pairs(argv, "--ro-bind")
    assert argv.index(str(WORK)) > argv.index(str(STATE))  # shown through what hides it
    writable = bwrap_argv(replace(layout, workdir_writable=True), ["claude"], bwrap="bwrap",
                          python="/usr/bin/python3")  # fmt: skip
    assert pairs(writable, "--bind") == [str(HOME), str(WORK)]
    assert str(WORK) not in pairs(writable, "--ro-bind")
