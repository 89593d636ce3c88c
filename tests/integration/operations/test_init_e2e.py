"""`fleetwarden init` through the real CLI: each preset's files, written with nothing asked
(stdin is no terminal), pass `check-config` as written and start `fleetwarden run`, whose
console answers; the stub's run is answered by the offline provider, so its spend shows.
A shell on the same machine reads the running fleet as the preset's operator. An existing
file is never overwritten; an unknown preset is answered with the one meant."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, github_thread
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

STARTUP = 60.0  # the whole app starts before the first answer, on a busy host
NO_KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL")
FORGE_ENV = {"FORGE_TOKEN": DEFAULT_PAT, "FORGE_WEBHOOK_SECRET": "init-webhook-secret-0123456789"}


def _env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in clean_env(**extra).items() if k not in NO_KEYS}


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), *args],
        cwd=cwd,
        env=_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _init_and_check(tmp_path: Path, preset: str, *args: str, **env: str) -> Path:
    """``init DIR --preset PRESET``, then check-config of what it wrote: the config."""
    done = _cli(tmp_path, "init", preset, "--preset", preset, *args)
    assert done.returncode == 0, done.stderr
    config = tmp_path / preset / "fleetwarden.yaml"
    assert f"fleetwarden check-config --config {config}" in done.stdout
    assert {p.name for p in config.parent.iterdir()} >= {"fleetwarden.yaml", "roster.yaml"}
    assert "agents: roster.yaml" in config.read_text()
    checked = _cli(tmp_path, "check-config", "--config", str(config), **env)
    assert checked.returncode == 0, checked.stderr
    assert f"{config}: OK" in checked.stdout
    return config


def _spend_shown(bot: ConsoleBot, agent: str) -> None:
    """A stub run of ``agent`` answered offline: its tokens and dollars in `runs`."""
    bot.command(f'spawn {agent} --prompt "count to 3"', rf"Agent {agent} started \(stub\)", STARTUP)
    bot.expect(r"stub: done", STARTUP)
    runs = bot.command(f"runs {agent}", r"1 model request · ([\d,]+) tokens · \$(\d+\.\d+)")
    assert int(runs.group(1).replace(",", "")) > 0 and float(runs.group(2)) > 0, runs.group(0)
    bot.command(f"stop {agent}", rf"Stopped {agent}")


@pytest.mark.parametrize(
    ("preset", "agents"),
    [
        ("solo", ("coder",)),
        ("pair", ("coder", "reviewer")),
        ("pipeline", ("planner", "coder", "reviewer")),
    ],
)
def test_a_preset_checks_and_runs_as_written(
    tmp_path: Path, preset: str, agents: tuple[str, ...]
) -> None:
    """`init --preset P` with no terminal asks nothing; its config checks and runs, spend
    shown, and a shell on this machine reads the fleet (`fleetwarden ps --json`)."""
    config = _init_and_check(tmp_path, preset)
    with ConsoleBot(config.parent, "--config", str(config), env=_env()) as bot:
        bot.command("roster", r"|".join(agents), STARTUP)
        for agent in agents:
            assert agent in bot.output_since_command
        bot.command("budget", r"global")
        _spend_shown(bot, "coder")
        ps = _cli(config.parent, "ps", "--json", "--config", str(config))  # the shell's door
        assert ps.returncode == 0, ps.stderr
        assert {a["name"] for a in json.loads(ps.stdout)["data"]["agents"]} >= {"coder"}
        assert bot.close() == 0, bot.stderr
    assert "Traceback" not in bot.stdout + bot.stderr


def test_the_forge_preset_checks_and_runs_against_its_forge(tmp_path: Path) -> None:
    """The forge preset, its forge a GitHub on loopback, checks and starts with its variables."""
    made = _cli(tmp_path, "init", "made", "--preset", "pair")  # a repository to work on
    assert made.returncode == 0, made.stderr
    port = free_port()
    with github_thread() as github:
        github.add_repo("acme/app")
        github.add_collaborator("acme/app", BOT_LOGIN, "write")
        config = _init_and_check(
            tmp_path,
            "forge",
            "--forge-api",
            github.api_url,
            "--login",
            BOT_LOGIN,
            "--repo-url",
            str(tmp_path / "made" / "repo"),
            "--listen",
            f"127.0.0.1:{port}",
            **FORGE_ENV,
        )
        text = config.read_text()
        assert (
            "token_env: FORGE_TOKEN" in text and "webhook_secret_env: FORGE_WEBHOOK_SECRET" in text
        )
        assert 'label_prefix: "fleetwarden:"' in text
        assert DEFAULT_PAT not in text
        with ConsoleBot(config.parent, "--config", str(config), env=_env(**FORGE_ENV)) as bot:
            bot.command("forge", r"No forge runs yet", STARTUP)
            _spend_shown(bot, "coder")
            assert bot.close() == 0, bot.stderr
    assert "Traceback" not in bot.stdout + bot.stderr


def test_init_never_overwrites(tmp_path: Path) -> None:
    """A second init into the same directory writes nothing and names the file and the fix."""
    first = _cli(tmp_path, "init", "--preset", "solo")
    assert first.returncode == 0, first.stderr
    roster = tmp_path / "roster.yaml"
    roster.write_text("# mine\n- name: mine\n")
    again = _cli(tmp_path, "init", "--preset", "pair")
    assert again.returncode == 1
    assert "fleetwarden.yaml, roster.yaml already exist; nothing was written" in again.stderr
    assert "fleetwarden init OTHER_DIR --preset pair" in again.stderr
    assert roster.read_text() == "# mine\n- name: mine\n"
    assert not (tmp_path / "repo").exists()  # nothing of the refused preset was made


def test_an_unknown_preset_gets_the_one_meant(tmp_path: Path) -> None:
    """`--preset sollo` is refused, exit 2, with 'solo' offered and nothing written."""
    done = _cli(tmp_path, "init", "--preset", "sollo")
    assert done.returncode == 2
    assert "unknown preset 'sollo': did you mean 'solo'?" in done.stderr
    assert "presets: solo, pair, forge, pipeline" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_next_line_runs_as_written_from_the_quick_starts_venv(tmp_path: Path) -> None:
    """Init run as `.venv/bin/fleetwarden` (on no PATH) says its next command in that form,
    and that line, typed in a shell as it is, checks the config."""
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "fleetwarden").symlink_to(FLEETWARDEN)
    path = "/usr/local/bin:/usr/bin:/bin"
    done = subprocess.run(
        [".venv/bin/fleetwarden", "init", "myfleet", "--preset", "solo"],
        cwd=tmp_path,
        env=_env(PATH=path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    said = [line.strip() for line in done.stdout.splitlines() if "check-config" in line]
    assert said and said[0].startswith(".venv/bin/fleetwarden check-config --config "), said
    checked = subprocess.run(
        ["bash", "-c", said[0]],
        cwd=tmp_path,
        env=_env(PATH=path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ": OK" in checked.stdout
