"""What is tested is what ships: Fleetwarden's wheel, built from this checkout and installed
(not editable) into a fresh virtualenv (:mod:`tests.wheel_build`), holds every file of its
packages — the ones that are not Python too: the dashboard's templates and static files,
the gates pi and opencode load, the redactor's rules, ``fw-msg`` and ``fw-forge`` — and runs.

From that venv, and from nothing of the checkout: the real ``fleetwarden run`` with a forge
(the strict fake GitHub, a real git upstream), its dashboard serving the wheel's templates
and static files, and two sandboxed ``command`` agents; the one
on the forge run finds ``fw-msg`` and ``fw-forge`` of the installed package first on its
PATH, messages the other (who reads it), comments on its issue and opens its pull request
with them. An SSH host set up by that install gets ``fw-msg`` (the host bundle) and its
agent reaches the peer door with it through the link. And its ``fleetwarden init`` writes a
preset from the wheel's templates that its ``check-config`` and ``run`` take."""

from __future__ import annotations

import http.client
import json
import subprocess
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.forge.webhook_sender import github_delivery, github_issue
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge_rig import (
    APP_ON_GITHUB,
    bot_comments,
    listening,
    post,
)
from tests.integration.hosts.rig import WAIT, until_up
from tests.integration.hosts.rig import entry as _entry
from tests.postgres_server import free_port
from tests.sshd_server import SshServer
from tests.wheel_build import (
    PACKAGES,
    Installed,
    build_wheel,
    imported_from,
    install_fresh,
    project_files,
    run_python,
)

pytestmark = pytest.mark.integration

NOT_SHIPPED: dict[str, str] = {}
"""Files of the packages left out of the wheel on purpose, each with why (none today)."""
COMMANDS = ("fleet/peers/bin/fw-msg", "fleet/forge/door/bin/fw-forge")
"""What agents run by name from their PATH: executable wherever they are installed."""

TOKEN = "ghp_wheelUpstreamTokenNoAgentHolds12345678"  # the git upstream's
SECRET = b"wheel-webhook-secret-0123456789abcdef"
NOTE = "the release notes are on their way"
COMMENT = "Writing the release notes from the installed package."
CODER = f"""
echo "fw-msg=$(command -v fw-msg)"
echo "fw-forge=$(command -v fw-forge)"
fw-msg send ears '{NOTE}' --verify; echo "sent=$?"
fw-forge comment '{COMMENT}'; echo "commented=$?"
printf 'shipped on Friday\\n' > NOTES.md
git add NOTES.md && git commit -qm 'Write the release notes'
git push -q origin HEAD && fw-forge done ok 'Wrote the release notes.'; echo "done=$?"
"""
EARS = 'echo EARS-READY\nwhile IFS= read -r line; do echo "ears got: $line"; done\n'
AGENTS = """\
agents:
  - name: coder
    runtime: command
    repo: app
    talks_to: [ears]
    argv: [sh, -c, {script}]
  - name: ears
    runtime: command
    workdir: ./ears
    argv: [sh, ears.sh]
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built once for the module."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv with that wheel installed, once for the module."""
    return install_fresh(wheel, tmp_path_factory.mktemp("installed") / "venv")


def test_the_wheel_holds_every_file_of_the_packages_commands_executable(wheel: Path) -> None:
    """Every file of the four packages a clone has, Python or not, is in the built wheel
    (unless :data:`NOT_SHIPPED` says why not), and what git keeps executable — ``fw-msg``,
    ``fw-forge`` — is executable there."""
    with zipfile.ZipFile(wheel) as archive:
        held = {item.filename: (item.external_attr >> 16) & 0o777 for item in archive.infolist()}
    files = project_files(*PACKAGES)
    missing = [path for path in files if path not in held and path not in NOT_SHIPPED]
    assert missing == [], (
        f"{missing} would not ship: name them in pyproject.toml's [tool.setuptools.package-data]"
        " (a folder of modules needs its __init__.py), or in NOT_SHIPPED with why"
    )
    assert set(NOT_SHIPPED) <= set(files), "NOT_SHIPPED names a file that is gone"
    assert [path for path in NOT_SHIPPED if path in held] == []
    executable = [path for path, mode in files.items() if mode & 0o111]
    assert sorted(executable) == sorted(COMMANDS), "a command agents run by name: in COMMANDS"
    assert {path: oct(held[path]) for path in executable if not held[path] & 0o111} == {}
    assert any(not path.endswith(".py") for path in files)  # the non-Python files are seen


def test_the_installed_package_is_imported_from_the_venv_with_every_file_a_host_gets(
    installed: Installed,
) -> None:
    """In the fresh venv, the CLI and the app load every module of the four packages from
    its own site-packages (no editable finder, nothing of the checkout); the files each host
    gets a copy of and the agents' tool directories are there, the commands executable."""
    modules, editable = imported_from(installed, "bot.cli", "bot.app.assembly")
    assert editable == []
    assert len(modules) > 200, sorted(modules)
    outside = {
        name: where
        for name, where in modules.items()
        if where is None or not Path(where).is_relative_to(installed.site)
    }
    assert outside == {}

    listed = run_python(
        installed,
        "import json; from bot.app.phases.core.hosts import BUNDLED;"
        " from fleet.peers.tools import PEER_TOOLS; from fleet.forge.door.tools import FORGE_TOOLS;"
        " print(json.dumps([*map(str, BUNDLED), str(PEER_TOOLS), str(FORGE_TOOLS)]))",
    )
    *bundled, peer_tools, forge_tools = map(Path, json.loads(listed))
    assert len(bundled) >= 14
    assert [path for path in bundled if not path.is_relative_to(installed.site)] == []
    assert [path for path in bundled if not path.is_file()] == []
    for command in COMMANDS:
        path = installed.site / command
        assert path in bundled
        assert path.stat().st_mode & 0o111, f"{command} is not executable once installed"
    assert (peer_tools / "fw-msg").is_file() and (forge_tools / "fw-forge").is_file()


@sandbox_need.BWRAP
def test_the_installed_init_writes_a_preset_that_checks_and_runs(
    tmp_path: Path, installed: Installed
) -> None:
    """The installed ``fleetwarden init --preset pair`` writes its files from the wheel's
    templates; the installed ``check-config`` accepts them and ``run`` starts on them."""
    program = str(installed.fleetwarden)
    env = installed.env()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [program, *args], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    made = cli("init", "fleet", "--preset", "pair")
    assert made.returncode == 0, made.stderr
    config = tmp_path / "fleet" / "fleetwarden.yaml"
    checked = cli("check-config", "--config", str(config))
    assert checked.returncode == 0 and f"{config}: OK" in checked.stdout, checked.stderr
    with ConsoleBot(
        config.parent, "--config", str(config), env=env, program=installed.fleetwarden
    ) as bot:
        bot.command("roster", r"reviewer", timeout=60)
        assert bot.quit() == 0, bot.stderr


def fetched(port: int, path: str) -> tuple[int, str]:
    """GET ``path`` from the dashboard on ``port``: the status and text."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    finally:
        conn.close()


def log_of(root: Path, agent: str) -> str:
    path = root / "state" / "agents" / agent / "output.log"
    return path.read_text(errors="replace") if path.exists() else ""


@sandbox_need.BWRAP
def test_the_installed_package_says_its_version_only(installed: Installed, tmp_path: Path) -> None:
    """`fleetwarden --version` of the installed wheel prints the package's version and no
    commit: an install is no git checkout, whatever directory it runs from."""
    done = subprocess.run(
        [str(installed.fleetwarden), "--version"],
        cwd=tmp_path,
        env=installed.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"fleetwarden {version('fleetwarden')}\n"


def test_agents_of_the_installed_package_use_its_fw_msg_and_fw_forge(
    tmp_path: Path, installed: Installed, upstream: GitUpstream, github: FakeGitHub
) -> None:
    """The installed ``fleetwarden run`` serves its dashboard's templates and files; an
    issue's forge run finds the venv's ``fw-msg`` and ``fw-forge`` in its sandbox; its
    message reaches ``ears``'s input, its comment is on the issue, its ``done`` opens the
    pull request, whose footer names the installed version."""
    port = free_port()
    script = '"' + CODER.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        (APP_ON_GITHUB + AGENTS).format(
            port=port, api=github.api_url, login=BOT_LOGIN, url=upstream.url("app"), script=script
        )
    )
    (tmp_path / "ears").mkdir()
    (tmp_path / "ears" / "ears.sh").write_text(EARS)
    env = installed.env(APP_TOKEN=TOKEN, FORGE_TOKEN=DEFAULT_PAT, FORGE_HOOK_SECRET=SECRET.decode())
    with ConsoleBot(
        tmp_path, "--config", str(config), env=env, program=installed.fleetwarden
    ) as bot:
        assert wait_until(lambda: listening(port), timeout=60), bot.stderr
        # The dashboard's pages and files, from the wheel's templates and static files.
        status, page = fetched(port, "/")
        assert status == 401 and "Sign in from chat" in page and "</html>" in page, page
        css = (installed.site / "bot" / "dashboard" / "static" / "dashboard.css").read_text()
        assert fetched(port, "/static/dashboard.css") == (200, css)

        bot.command("spawn ears", r"Agent ears started")
        assert wait_until(lambda: "EARS-READY" in log_of(tmp_path, "ears"), timeout=30)

        issue = github.add_issue(str(SLUG), "Write the release notes", "Say when.",
                                 author=WRITER, labels=["fleetwarden:coder"])  # fmt: skip
        labelled = github_issue(
            "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
            label="fleetwarden:coder",
        )  # fmt: skip
        headers, body = github_delivery(*labelled, secret=SECRET)
        assert post(port, "gh", headers, body)[0] == 202
        assert wait_until(lambda: "done=" in log_of(tmp_path, "coder"), timeout=90), (
            log_of(tmp_path, "coder"),
            bot.stdout + bot.stderr,
        )
        said = log_of(tmp_path, "coder")
        assert f"fw-msg={installed.site}/fleet/peers/bin/fw-msg\n" in said
        assert f"fw-forge={installed.site}/fleet/forge/door/bin/fw-forge\n" in said
        assert "ACCEPTED: message 1 is in ears's session" in said and "sent=0" in said, said
        assert "commented=0" in said and "done=0" in said, said
        assert f"ears got: > {NOTE}" in log_of(tmp_path, "ears")
        comments = bot_comments(github, SLUG, issue, BOT_LOGIN)
        assert any(COMMENT in comment for comment in comments), comments
        assert wait_until(lambda: len(github.pulls(str(SLUG))) == 1, timeout=60)
        [pull] = github.pulls(str(SLUG))  # its footer names the version alone: no checkout
        assert f"- **Fleetwarden** {version('fleetwarden')}\n" in (pull.body or ""), pull.body

        bot.command("stop ears", r"Stopped ears")
        assert bot.close() == 0, bot.stderr
    assert "Traceback" not in bot.stdout + bot.stderr


FAR = """
echo "fw-msg=$(command -v fw-msg)"
fw-msg peers; echo "peers=$?"
"""


@sandbox_need.BWRAP
def test_a_host_set_up_by_the_installed_package_runs_its_fw_msg(
    tmp_path: Path, installed: Installed, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    """The installed package sets up an SSH host (the bundle, ``fw-msg`` in it, copied
    there) and an agent there lists its peers with that ``fw-msg`` through the link."""
    host = ssh_hosts[0]
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    state, state_path = host.state_dir("fw-wheel")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "defaults: {stop_grace_seconds: 1}\n"
        "hosts:\n" + _entry("box2", host.ssh_target, host.client_key, known, state) + "agents:\n"
        f"  - {{name: far, runtime: command, host: box2, talks_to: [near],"
        f" argv: {json.dumps(['sh', '-c', FAR])}}}\n"
        "  - {name: near, runtime: command, argv: [sh, -c, 'sleep 600']}\n"
    )
    with ConsoleBot(
        tmp_path, "--config", str(config), env=installed.env(), program=installed.fleetwarden
    ) as bot:
        until_up(bot, "box2")
        bot.command("spawn far", r"far", timeout=WAIT)
        assert wait_until(lambda: "peers=" in log_of(tmp_path, "far"), timeout=60), (
            log_of(tmp_path, "far"),
            bot.stdout + bot.stderr,
        )
        said = log_of(tmp_path, "far")
        assert f"fw-msg={state_path}/lib/fleet/peers/bin/fw-msg" in said, said
        assert "peers=0" in said and "- near on host local (command)" in said, said
        copied = Path(state_path) / "lib" / "fleet" / "peers" / "bin" / "fw-msg"
        assert copied.read_bytes() == (installed.site / COMMANDS[0]).read_bytes()
        assert bot.close() == 0, bot.stderr
    assert "Traceback" not in bot.stdout + bot.stderr
