"""Tests for bot.app.reload: what a `roster reload` applies of an edited config (the roster,
the operators, new repositories) and what refuses it whole (what only a start applies),
and an agent naming a repository Fleetwarden does not have refused in words, never a
`KeyError`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.reload import ENVIRONMENT_NOTE, offline_of, plan, refusal, reload_config
from bot.commands.errors import CommandError
from bot.commands.handlers.launches.spawn_queue import caps_of
from bot.config import Config, Offered, parse_config
from fleet.errors import LaunchFailed
from fleet.ledger import Ledger
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.repos.line.launching import workdir_of
from fleet.repos.schema import RepoEntry
from fleet.repos.service import Repos
from fleet.repos.stores import RepoStores

APP = "  app:\n    url: https://git.example.org/acme/app.git\n"
LOCAL = "  local:\n    url: /srv/git/local.git\n"
HUB = "forges:\n  hub:\n    kind: github\n    token_env: HUB_TOKEN\n    login: bot\n" + (
    "    poll_seconds: 60\n"
)


def config(text: str) -> Config:
    return parse_config(text, "fleetwarden.yaml", base_dir=Path("/srv/fw"))


def running(text: str) -> dict[str, RepoEntry]:
    return dict(config(text).repos)


@contextlib.asynccontextmanager
async def started(repos: Repos) -> AsyncIterator[Repos]:
    """``repos`` started, and stopped after: its ready checkouts are made by background
    tasks (a ``git`` under way among them) that must not be left to the loop's end."""
    await repos.start()
    try:
        yield repos
    finally:
        await repos.stop()


def test_a_new_repository_is_taken_on_and_nothing_waits_for_a_start() -> None:
    """Repositories running, one added off any forge: it is adopted; nothing refuses."""
    chosen = plan(running("repos:\n" + APP), {}, config("repos:\n" + APP + LOCAL))
    assert list(chosen.repos_added) == ["local"]
    assert chosen.at_start == ()


def test_a_provider_taken_from_the_offline_provider_waits_for_a_start() -> None:
    """Started with no provider (the offline stand-in answering both), a reload that adds
    a `providers:` entry is refused until a start; with the same providers it goes on."""
    started = config("agents: []\n")
    assert offline_of(started) == {"anthropic", "openai"}
    keyed = config("providers:\n  anthropic:\n    upstream: https://api.anthropic.com\n")
    chosen = plan(None, {}, keyed, offline=offline_of(started))
    assert len(chosen.at_start) == 1 and "offline provider answers changed" in chosen.at_start[0]
    assert plan(None, {}, config("agents: []\n"), offline=offline_of(started)).at_start == ()


def test_what_only_a_start_applies_is_named_each() -> None:
    """A repository changed (its keys as the file spells them), one removed, a forge
    added, and a new repository on a forge: each named, none adopted."""
    was = running("repos:\n" + APP + LOCAL)
    now = config(
        HUB
        + "repos:\n"
        + APP
        + "    merge: rebase\n    copy_from: /srv/fixtures\n    copy: [.env]\n"
        + "  web:\n    url: https://github.com/acme/web.git\n    forge: hub\n"
    )
    chosen = plan(was, {}, now)
    assert chosen.repos_added == {}
    assert chosen.at_start == (
        "repository 'app' was changed (merge, copy_from, copy)",
        "repository 'web' was added on forge 'hub' (a forge's repositories are watched "
        "from the start)",
        "repository 'local' was removed",
        "forge 'hub' was added",
    )


def test_forges_changed_or_removed_and_a_first_repos_section_wait_for_a_start() -> None:
    """Started without `repos:`, any repository waits for a start; a forge's changed keys
    and a removed forge are named."""
    hub = config(HUB)
    chosen = plan(None, hub.forges, config("repos:\n" + LOCAL))
    assert chosen.at_start == (
        "repository 'local' was added, and Fleetwarden started with no `repos:` (the git "
        "door and the branch commands are made at start)",
        "forge 'hub' was removed",
    )
    changed = plan(None, hub.forges, config(HUB.replace("login: bot", "login: fleet-bot")))
    assert changed.at_start == ("forge 'hub' was changed (login)",)
    assert plan(None, hub.forges, hub) == plan(None, {}, config(""))


def test_the_refusal_says_nothing_changed_and_how_to_apply_it() -> None:
    """One sentence: nothing changed, each change, a restart applies them, or undo them."""
    assert refusal(["forge 'hub' was added"]) == (
        "the roster was not reloaded; nothing changed: forge 'hub' was added. These apply "
        "only when Fleetwarden starts: restart Fleetwarden (as you started it, with the same "
        "`--config`) to apply the whole file, or undo those edits and `roster reload` again"
    )


async def test_a_credential_missing_from_the_environment_says_a_restart_reads_it(
    tmp_path: Path,
) -> None:
    """A new repository whose `token_env` Fleetwarden's environment lacks: refused with the
    variable named and the word that the environment is read at start."""
    file = tmp_path / "fleetwarden.yaml"
    file.write_text("agents: []\n")
    before = parse_config(file.read_text(), str(file), base_dir=tmp_path, source=file)
    file.write_text(
        "repos:\n  app:\n    url: https://git.example.org/acme/app.git\n"
        "    token_env: APP_TOKEN\nagents: []\n"
    )
    with pytest.raises(CommandError) as refused:
        await reload_config(before, {}, Offered(), fleet=None)  # type: ignore[arg-type]
    text = str(refused.value)
    assert text.startswith("the roster was not reloaded; nothing changed: ")
    assert "APP_TOKEN is not set" in text and text.endswith(ENVIRONMENT_NOTE + ".")


async def test_an_agent_on_a_repository_fleetwarden_lacks_is_refused_in_words(
    tmp_path: Path, ledger: Ledger
) -> None:
    """A spec naming a repository that is not configured (kept from before a restart):
    its launch is refused naming the known repositories, never a KeyError."""
    repos = Repos(
        state_dir=tmp_path / "state",
        entries={"app": RepoEntry(url="/srv/git/app.git", ready_checkouts=0)},  # no git behind
        stores=RepoStores(ledger.lines, ledger.agents, ledger.forge, ledger.refusals),
        environ={},
    )
    spec = AgentSpec(name=AgentName("lcoder"), runtime="stub", repo="local")
    async with started(repos):
        with pytest.raises(
            LaunchFailed, match=r"no repository 'local' in the config \(known: app\)"
        ):
            await workdir_of(repos, spec)


@pytest.mark.parametrize(
    ("added", "key", "said"),
    [
        ("  web:\n    url: ../lbi.git\n", "repos.web.url", "does not exist on this machine"),
        ("  web:\n    url: ./plain\n", "repos.web.url", "is not a git repository"),
        (
            "  web:\n    url: ./web.git\n    copy_from: ./fixtures\n    copy: [.env]\n",
            "repos.web.copy_from",
            "does not exist on this machine",
        ),
    ],
)
async def test_a_new_repository_check_config_refuses_refuses_the_reload_whole(
    tmp_path: Path, ledger: Ledger, added: str, key: str, said: str
) -> None:
    """A repository added with a path `url` that is no git repository, or a `copy_from`
    that is not there: the reload is refused on that line of the file, as `check-config`
    says it, and neither the repository nor the agent on it is taken on."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "web.git").mkdir()
    (tmp_path / "web.git" / "HEAD").write_text("ref: refs/heads/main\n")
    file = tmp_path / "fleetwarden.yaml"
    head = "repos:\n" + APP + "    ready_checkouts: 0\n"  # no git behind the test's back
    file.write_text(head + "agents: []\n")
    before = parse_config(file.read_text(), str(file), base_dir=tmp_path, source=file)
    repos = Repos(
        state_dir=tmp_path / "state",
        entries=before.repos,
        stores=RepoStores(ledger.lines, ledger.agents, ledger.forge, ledger.refusals),
        environ={},
    )
    agent = "agents:\n  - {name: web-coder, runtime: stub, repo: web}\n"
    file.write_text(head + added + agent)
    async with started(repos):
        with pytest.raises(CommandError) as refused:
            await reload_config(before, {}, Offered(), fleet=None, repos=repos)  # type: ignore[arg-type]
    text = str(refused.value)
    assert text.startswith(f"the roster was not reloaded; nothing changed: {file}:")
    assert f": {key}: the {key.rpartition('.')[2]} of repository web, " in text and said in text
    assert list(repos.names()) == ["app"]


def test_a_changed_concurrency_cap_is_said_to_need_a_restart() -> None:
    """`limits.max_running` raised in the file: the reload is refused naming the caps, not
    answered "nothing changed" while the old cap holds."""
    was = config("limits:\n  max_running: 1\n")
    chosen = plan(None, {}, config("limits:\n  max_running: 2\n"), caps_of(was))
    assert chosen.at_start == ("the concurrency caps were changed (`limits.max_running`, or "
                               "`max_running` on an account or a budget)",)  # fmt: skip
    assert plan(None, {}, config("limits:\n  max_running: 1\n"), caps_of(was)).at_start == ()
