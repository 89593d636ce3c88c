"""What a hostile host writes stays the host's words: the real `fleetwarden run` and
`fleetwarden hosts check`, a real OpenSSH server on 127.0.0.4 as the host, whose login
shell (the host's own program: sshd runs every command line through it) answers chosen
commands with a multi-line error of its own — a forged `✅ payroll finished` line, a link,
markup, and an OSC 52 escape that would set the terminal's clipboard.

A launch the host fails (headless and in tmux), a state dir it will not make on the next
connection, a probe it will not finish, a CLI version it reports: in chat each is one line
of Fleetwarden's, the host's words inside `host box4 says “…”` and shown as written (no
link, no bold, no line of their own); in the operator's terminal, no escape arrives."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.integration.hosts.test_hosts_e2e import WAIT, _started, _until
from tests.sshd_server import SshServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="gives the host's user a shell: run as root"),
]

FORGED = "✅ **payroll** finished after 2s: [all checks passed](https://evil.example/x)"
CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07"
WORDS = f"mkfifo: cannot make it\n{FORGED}\n{CLIPBOARD}done\n"
SHOWN = f"host box4 says “mkfifo: cannot make it ⏎ {FORGED} ⏎ ]52;c;ZXZpbA==done”"
"""The words as chat shows them (escaped, so the console prints them as written)."""

# The host's login shell: a command line holding one of the rules' patterns is answered
# with the words on its error output and status 1; any other runs as the host's sh would.
SHELL = r"""#!/bin/sh
if [ -r "{rules}" ]; then
  while IFS= read -r pat; do
    [ -n "$pat" ] || continue
    case "$2" in *"$pat"*) cat "{words}" >&2; exit 1 ;; esac
  done < "{rules}"
fi
exec /bin/sh "$@"
"""


class HostileShell:
    """The host's login shell, answering with :data:`WORDS` the commands :meth:`fail` names."""

    def __init__(self, host: SshServer) -> None:
        self.rules = host.root / "hostile-rules"
        words = host.root / "hostile-words"
        words.write_text(WORDS)
        self.path = host.root / "hostile-sh"
        self.path.write_text(SHELL.format(rules=self.rules, words=words))
        for made in (self.path, words):
            made.chmod(0o755)
        self.fail()

    def fail(self, *patterns: str) -> None:
        """From now on, a command line holding one of ``patterns`` fails with the words."""
        self.rules.write_text("".join(f"{p}\n" for p in patterns))
        self.rules.chmod(0o644)


@contextlib.contextmanager
def hostile(host: SshServer) -> Iterator[HostileShell]:
    shell = HostileShell(host)
    subprocess.run(["usermod", "-s", str(shell.path), host.user], check=True, capture_output=True)
    try:
        yield shell
    finally:
        subprocess.run(["usermod", "-s", "/bin/sh", host.user], check=True, capture_output=True)


def _entry(host: SshServer, known: Path, extra: str = "") -> str:
    return (
        f"  - {{name: box4, ssh: '{host.ssh_target}', key_file: '{host.client_key}',"
        f" known_hosts: '{known}', state_dir: {host.state_dir('fw-words')[0]}{extra}}}\n"
    )


def _said(reply: str, pattern: str) -> str:
    """The one line of ``reply`` matching ``pattern``; no line of it starts as ours."""
    lines = [line.strip(" >") for line in reply.splitlines()]
    assert not any(line.startswith(("✅", "]52")) for line in lines), reply
    found = [line for line in lines if re.search(pattern, line)]
    assert len(found) == 1, reply
    return found[0]


def test_a_hosts_error_output_is_one_quoted_line_in_chat(
    tmp_path: Path, private_ssh_host: SshServer
) -> None:
    """A headless launch whose start script the host fails, a tmux launch whose run it will
    not prepare, and — after the host went away and came back — the state dir it will not
    make: each reply, and the `hosts` note, is one line with the host's words quoted as
    written."""
    host = private_ssh_host
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "hosts:\n" + _entry(host, known) + "agents:\n"
        "  - {name: quiet, runtime: stub, backend: subprocess, host: box4, egress_allow: []}\n"
        "  - {name: boxed, runtime: stub, backend: tmux, host: box4, egress_allow: []}\n"
    )
    with hostile(host) as shell:
        bot = _started(tmp_path, config, "box4")
        try:
            shell.fail("mkfifo")  # the headless start script
            bot.command("spawn quiet", r"quiet.*$", timeout=WAIT)
            line = _said(bot.output_since_command, r"could not start quiet")
            assert line.endswith(f"host box4 could not start quiet: {SHOWN}"), line
            shell.fail('wc -c < "$4"')  # the script that readies a run there
            bot.command("spawn boxed", r"(boxed|cannot prepare).*$", timeout=WAIT)
            line = _said(bot.output_since_command, r"cannot prepare the run")
            assert line.endswith(f"host box4: cannot prepare the run: {SHOWN}"), line
            shell.fail("mkdir -p -m 700")  # readying the next connection
            host.restart()
            reply = _until(bot, "hosts", r"cannot make")
            line = _said(reply, r"cannot make")
            assert "setting up the host failed: host box4: cannot make " in line, line
            assert SHOWN in line, line
            assert bot.quit(WAIT) == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    assert "\x1b" not in bot.stdout and "\x07" not in bot.stdout


def _check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), "hosts", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )


def test_hosts_check_writes_no_escape_a_host_chose_to_the_terminal(
    tmp_path: Path, private_ssh_host: SshServer
) -> None:
    """`fleetwarden hosts check`: a CLI whose version line is an OSC 52 escape, then a probe
    the host fails with its words: one line each, nothing of the escape but its text."""
    host = private_ssh_host
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    bin_dir = Path(host.login.home) / f"fw-words-bin-{tmp_path.name}"
    bin_dir.mkdir()
    try:
        claude = bin_dir / "claude"
        claude.write_text("#!/bin/sh\nprintf '\\033]52;c;ZXZpbA==\\007claude 9.9\\n'\n")
        claude.chmod(0o755)
        os.chown(bin_dir, host.login.uid, host.login.uid)
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(
            "state_dir: ./state\nhosts:\n" + _entry(host, known, f", path: ['~/{bin_dir.name}']")
        )
        with hostile(host) as shell:
            checked = _check(config)
            assert checked.returncode == 0, checked
            assert "\x1b" not in checked.stdout and "\x07" not in checked.stdout, checked.stdout
            assert "has claude ]52;c;ZXZpbA==claude" in checked.stdout, checked.stdout
            shell.fail("fleetwarden-probe")
            failed = _check(config)
        assert failed.returncode == 1, failed
        assert "\x1b" not in failed.stdout and "\x07" not in failed.stdout, failed.stdout
        [line] = failed.stdout.splitlines()
        assert line.endswith(f"connected, but the host probe did not finish: {SHOWN}"), line
    finally:
        shutil.rmtree(bin_dir, ignore_errors=True)
