"""An agent on a repository, placed on an SSH host: the real ``fleetwarden run`` with a
real OpenSSH server on loopback as the host (its own Unix user) and a real git upstream
behind ``git http-backend`` that takes only its token.

The agent — a ``command`` agent, sandboxed and locked there — finds its checkout on the
host, on its own branch, fetched from this machine's mirror through the git door the link
forwards; its push of its own branch is taken through that forward, its push to ``main``
refused with the hook's words; what it left uncommitted is committed and pushed to its
branch at the run's end, on the host, past the ``index.lock`` it left as a git killed
mid-commit would; nothing reaches the upstream, and the upstream's
token is nowhere on the host nor in the agent's sight. A second run on the kept checkout
pushes through its ``origin``, pointed at the door with the new run's token. ``discard``
removes the checkout there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fleet.sandbox.lanes import FIRST_UID
from tests import sandbox_need
from tests.git_upstream import GitUpstream, token_anywhere
from tests.integration.console_bot import clean_env, wait_until
from tests.integration.hosts.test_hosts_e2e import WAIT, _entry, _started, _until
from tests.integration.hosts.test_hosts_lanes import root_ssh_host  # noqa: F401  (a fixture)
from tests.sshd_server import SshServer

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_hostUpstreamTokenOnlyFleetwardenHolds42"
AGENT = """
echo "branch=$(git branch --show-current)"
echo mine > mine.txt && git add mine.txt && git commit -qm mine
if git push -q origin HEAD 2>/tmp/own.err; then echo own=taken; else echo own=refused; fi
sed 's/^/own said: /' /tmp/own.err
if git push -q origin HEAD:main 2>/tmp/main.err; then echo main=taken; else echo main=refused; fi
sed 's/^/main said: /' /tmp/main.err
echo left behind > left.txt
: > .git/index.lock
if command -v fw-forge >/dev/null 2>&1; then echo fwforge=found; else echo fwforge=missing; fi
fw-forge read 1 >/tmp/fw.out 2>&1; echo "fwexit=$?"
sed 's/^/fw said: /' /tmp/fw.out
echo done=yes
"""


def _host_git(checkout: Path, *args: str) -> str:
    """git in the checkout on the host (this machine's filesystem, read as the test)."""
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(checkout), *args],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"},
    )
    return done.stdout.strip()


def test_an_agent_on_a_host_gets_its_checkout_there_and_the_door_through_the_link(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer], upstream: GitUpstream
) -> None:
    """Logged in as an ordinary user there: the agent shares its uid, in its sandbox."""
    _on_host(tmp_path, ssh_hosts[0], upstream)


@sandbox_need.root("logs in to the host as root")
def test_on_a_host_logged_in_as_root_the_agent_and_its_harvest_run_as_its_own_user(
    tmp_path: Path,
    root_ssh_host: SshServer,  # noqa: F811
    upstream: GitUpstream,
) -> None:
    """Logged in as root there: the checkout is handed to the agent's own uid (its lane),
    and the end of its run commits there as that uid, never as root."""
    checkout = _on_host(tmp_path, root_ssh_host, upstream, keep=True)
    owner = (checkout / ".git" / "objects").stat().st_uid
    assert owner >= FIRST_UID
    wip = _host_git(checkout, "log", "-1", "--format=%H")
    objects = checkout / ".git" / "objects" / wip[:2] / wip[2:]
    assert objects.stat().st_uid == owner  # written by the agent's uid, not root


def _on_host(tmp_path: Path, host: SshServer, upstream: GitUpstream, keep: bool = False) -> Path:
    """The agent's run on ``host``, checked; its checkout there (removed unless ``keep``)."""
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    state, state_path = host.state_dir("fw-repo")
    argv = ["sh", "-c", AGENT]
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "defaults: {stop_grace_seconds: 1}\n"
        f"repos:\n  app: {{url: '{upstream.url('app')}', token_env: APP_TOKEN}}\n"
        # A forge in the config puts fw-forge on every agent's PATH, on hosts too.
        "forges:\n  hub: {kind: github, api_url: 'http://127.0.0.1:9', token_env: FORGE_TOKEN,"
        " login: fleetwarden-bot, poll_seconds: 3600}\n"
        "hosts:\n" + _entry("box2", host.ssh_target, host.client_key, known, state) + "agents:\n"
        "  - {name: rogue, runtime: command, backend: tmux, host: box2, repo: app,"
        " git_name: '{agent} (bot)', git_email: '{agent}+{host}@bots.example.org',"
        f" egress_allow: [], argv: {json.dumps(argv)}}}\n"
        # The console's user, named in git: each commit of the run names them co-author.
        "operators:\n  - {id: console, connector: console, role: admin, git_name: Ann Lee,"
        " git_email: ann@example.org}\n"
    )
    before = upstream.tip("app")
    log = tmp_path / "state" / "agents" / "rogue" / "output.log"

    def said() -> str:
        try:
            return log.read_text(errors="replace")
        except OSError:
            return ""

    bot = _started(
        tmp_path, config, "box2", env=clean_env(APP_TOKEN=TOKEN, FORGE_TOKEN="forge-token-x")
    )
    try:
        bot.command("spawn rogue", r"rogue", timeout=WAIT)
        assert wait_until(lambda: "done=yes" in said(), timeout=120), said()
        lines = said().splitlines()
        verdicts = dict(line.split("=", 1) for line in lines if "=" in line and " " not in line)
        assert verdicts["branch"] == "fw/rogue/1", said()
        assert verdicts["own"] == "taken", said()
        assert verdicts["main"] == "refused", said()
        # fw-forge is there, and reaches the forge door through the link (no forge run).
        assert verdicts["fwforge"] == "found", said()
        assert verdicts["fwexit"] == "1" and "no forge run" in said(), said()
        assert any(
            line.startswith("main said: remote:") and "only to your own branch" in line
            for line in lines
        ), said()
        # The checkout is on the host, in the agent's own place there, on its branch.
        checkout = state_path / "agents" / "rogue" / "work" / "app-1"
        assert _host_git(checkout, "branch", "--show-current") == "fw/rogue/1"
        assert not (tmp_path / "state" / "checkouts" / "app" / "rogue-1").exists()
        origin = _host_git(checkout, "config", "remote.origin.url")
        forwards = json.loads((state_path / "forwards.json").read_text())
        port = origin.split("@127.0.0.1:", 1)[1].split("/", 1)[0]
        assert int(port) in forwards.values() and origin.endswith("/git/rogue/app.git")
        # The run's end: what it left is committed there and brought to its branch here.
        summary = bot.expect(r"Branch\W* fw/rogue/1 of \W*app\W*: [^\n]*", timeout=120)
        assert "2 commits, 2 files" in summary.group(0), summary.group(0)
        wip = _host_git(checkout, "log", "-1", "--format=%s%n%b")
        assert "wip" in wip and "Fleetwarden-Agent: rogue" in wip, wip
        # Both commits as the configured identity, with the requester as co-author: the
        # agent's own by the hook in its checkout there, the wip by Fleetwarden.
        trailer = "%(trailers:key=Co-authored-by,valueonly,separator=%x3B)"
        made = _host_git(checkout, "log", "-2", f"--format=%an <%ae>|%s|{trailer}")
        who, ann = "rogue (bot) <rogue+box2@bots.example.org>", "Ann Lee <ann@example.org>"
        [wip_made, own_made] = [line.split("|") for line in made.splitlines()]
        assert wip_made[0] == who and wip_made[1].startswith("wip") and wip_made[2] == ann, made
        assert own_made == [who, "mine", ann], made
        assert not (checkout / ".git" / "index.lock").exists()
        reply = _until(bot, "diff rogue", r"\+left behind")
        assert "+mine" in reply
        # Nothing reached the upstream; its token is nowhere on the host or in the state.
        assert upstream.pushes() == [] and upstream.tip("app") == before
        assert "refs/heads/fw/rogue/1" not in upstream.branches("app")
        assert token_anywhere(TOKEN, state_path, tmp_path / "state") == []
        assert TOKEN not in said()
        # A second run on the kept checkout: its origin names the door with the new run's
        # token (the first run's was revoked as it ended), and its push is taken.
        bot.command("spawn rogue", r"rogue", timeout=WAIT)
        assert wait_until(lambda: said().count("done=yes") == 2, timeout=120), said()
        second = said().split("done=yes")[1]
        assert "own=taken" in second and "main=refused" in second, second
        assert _host_git(checkout, "config", "remote.origin.url") != origin
        bot.expect(r"Branch\W* fw/rogue/1 of \W*app\W*: [^\n]*", timeout=120)
        if not keep:
            bot.command("discard rogue", r"(?i)yes|discard", timeout=WAIT)
            if "yes" in bot.output_since_command.lower():
                bot.command("yes", r"(?i)discard", timeout=WAIT)
            assert wait_until(lambda: not checkout.exists(), timeout=WAIT), "still on the host"
        assert bot.quit(WAIT) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    return checkout
