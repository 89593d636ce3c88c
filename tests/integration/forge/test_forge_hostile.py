"""Work from the forge, against what a hostile agent and a hostile network try, through the
real ``fleetwarden run`` and a real git upstream.

A ``command`` agent given an issue by a writer, sandboxed with its network locked, tries
what a prompt-injected agent would: to comment on an issue it was not given, to ping
everyone and hide or fake markup, to describe a pull request it has not opened, to find
the forge's token anywhere it can reach, to call the forge's API itself, to push to
``main`` — each refused and the forge door's refusals audited — and says ``done failed``;
its summary is posted on its own issue with the footer. That agent runs on the strict fake
GitHub alone: its door, sandbox and egress are the same whatever the forge, and what it is
checked by is that fake's record of which credential each request bore. On every forge
kind — GitHub and Gitea, each a strict fake held to its own published API description,
each signing as it does — webhook deliveries that are mis-signed, replayed, a stranger's,
for no such forge or stale start nothing and post nothing; and Fleetwarden restarted while
a forge run works takes the run up again: no second run, the same status comment edited
on."""

from __future__ import annotations

import contextlib
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.github.api import DEFAULT_PAT, FakeGitHub
from tests.git_upstream import GitUpstream, token_anywhere
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where, wait_until
from tests.integration.forge.kinds import Forge, on_github
from tests.integration.forge_rig import (
    APP_ON_GITHUB,
    bot_comments,
    ledger_rows,
    listening,
    post,
)
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_e2eUpstreamTokenNoAgentHolds9876543210"  # the git upstream's
SECRET = b"forge-webhook-secret-0123456789abcdef"
STRANGER = "eve"
LABEL_ROGUE = "fleetwarden:rogue"
LABEL_SLEEPER = "fleetwarden:sleeper"
OTHER_TITLE = "The other issue"
CONFIG = (
    APP_ON_GITHUB
    + """\
agents:
  - name: rogue
    runtime: command
    repo: app
    argv: [sh, -c, {script}]
  - name: sleeper
    runtime: command
    repo: app
    argv: [sh, -c, "sleep 600"]
"""
)
# What a prompt-injected agent on a forge run tries, from inside its sandbox. Each attempt
# prints its verdict on one line (no spaces), for the test to read in its log; no line
# ever prints what it found, only whether it found anything. The tokens it hunts are
# spelt in halves, so that no argv of its own holds one whole.
HOSTILE = """
t=@PAT_HEAD@; t="${t}@PAT_TAIL@"
u=@TOKEN_HEAD@; u="${u}@TOKEN_TAIL@"
fw-forge comment --issue @OTHER@ x >/dev/null 2>/tmp/why; echo "other_comment=$?"
grep -q "not assigned" /tmp/why && echo other_why=not-assigned || echo other_why=unsaid
fw-forge comment "hi @everyone <!-- hidden --> </details>" >/dev/null 2>&1; echo "own_comment=$?"
fw-forge read @OTHER@ >/tmp/read 2>&1; echo "read_other=$?"
grep -q "@OTHER_TITLE@" /tmp/read && echo read_text=seen || echo read_text=unseen
fw-forge describe x >/dev/null 2>/tmp/why; echo "describe=$?"
grep -q "no pull request yet" /tmp/why && echo describe_why=no-pull || echo describe_why=unsaid
found() { if [ -n "$2" ]; then echo "$1=found"; else echo "$1=none"; fi; }
found env "$(env | grep -F -e "$t" -e "$u")"
found environ "$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -F -e "$t" -e "$u")"
echo "environ_read=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c ^PATH=)"
found files "$(grep -rlsF -e "$t" -e "$u" "$HOME" "$PWD" @STATE@ @CONFIG_DIR@ 2>/dev/null)"
[ -r @STATE@/ledger.db ] && echo state_ledger=seen || echo state_ledger=hidden
[ -r @STATE@/fleetwarden.log ] && echo state_log=seen || echo state_log=hidden
[ -r @CONFIG_DIR@/fleetwarden.yaml ] && echo config=seen || echo config=hidden
url=@API@/repos/acme/app/issues/1/comments
curl -s -m 5 -o /dev/null -H "Authorization: token x" -d '{"body":"x"}' "$url"; echo "curl=$?"
curl -s -m 5 --noproxy '*' -o /dev/null -d '{"body":"x"}' "$url"; echo "curl_direct=$?"
py='import sys, urllib.request as r; r.urlopen(r.Request(sys.argv[1], data=b"{}"), timeout=5)'
python3 -I -c "$py" "$url" 2>/dev/null && echo python=taken || echo python=refused
echo mine > rogue.txt && git add rogue.txt && git commit -qm rogue
git push -q origin HEAD:main >/dev/null 2>&1 && echo push_main=taken || echo push_main=refused
git push -q origin HEAD >/dev/null 2>&1 && echo push_own=taken || echo push_own=refused
pushed() { git push -q origin HEAD >/dev/null 2>/tmp/why && echo "$1=taken" || echo "$1=refused"; }
said() { grep -q "$2" /tmp/why && echo "$1=said" || echo "$1=unsaid"; }
git commit -q --allow-empty -m "Fixes acme/app#99" -m "Fleetwarden-Agent: release-bot"
pushed forged; said forged_why "cannot be taken"; git reset -q --hard HEAD~1
GIT_AUTHOR_NAME="Ann Lee" GIT_AUTHOR_EMAIL=ann@example.org git commit -q --allow-empty -m work
pushed posing; said posing_why "Commit as yourself"; git reset -q --hard HEAD~1
mkdir -p .forgejo/workflows && echo "on: push" > .forgejo/workflows/evil.yml
git add -A && git commit -qm ci && pushed forgejo; git reset -q --hard HEAD~1
fw-forge done failed nope >/dev/null 2>&1; echo "done=$?"
echo finished=yes
sleep 600
"""


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def hostile_script(tmp_path: Path, api: str, other: int) -> str:
    half, token_half = len(DEFAULT_PAT) // 2, len(TOKEN) // 2
    places = {
        "@PAT_HEAD@": DEFAULT_PAT[:half],
        "@PAT_TAIL@": DEFAULT_PAT[half:],
        "@TOKEN_HEAD@": TOKEN[:token_half],
        "@TOKEN_TAIL@": TOKEN[token_half:],
        "@OTHER_TITLE@": OTHER_TITLE,
        "@OTHER@": str(other),
        "@STATE@": str(tmp_path / "state"),
        "@CONFIG_DIR@": str(tmp_path),
        "@API@": api,
    }
    script = HOSTILE
    for place, value in places.items():
        script = script.replace(place, value)
    return script


def write_config(tmp_path: Path, upstream: GitUpstream, forge: Forge, port: int) -> Path:
    config = tmp_path / "fleetwarden.yaml"
    api = forge.fake.api_url
    script = _yaml_str(hostile_script(tmp_path, api, other=1))
    config.write_text(
        forge.config(CONFIG).format(
            port=port, api=api, login=forge.login, url=upstream.url("app"), script=script
        )
    )
    return config


def start_bot(tmp_path: Path, config: Path, forge: Forge) -> ConsoleBot:
    env = clean_env(
        PATH=agent_path(),
        APP_TOKEN=TOKEN,
        FORGE_TOKEN=forge.pat,
        FORGE_HOOK_SECRET=SECRET.decode(),
    )
    return ConsoleBot(tmp_path, "--config", str(config), env=env)


def audit(tmp_path: Path, agent: str | None = None) -> list[tuple[str, int, str]]:
    """The forge audit, oldest first: (op, allowed, detail), of ``agent`` when given."""
    sql = "SELECT op, allowed, detail FROM forge_audit"
    if agent is None:
        rows = ledger_rows(tmp_path, f"{sql} ORDER BY id")
    else:
        rows = ledger_rows(tmp_path, f"{sql} WHERE agent = ? ORDER BY id", agent)
    return [(str(op), int(allowed), str(detail)) for op, allowed, detail in rows]


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def verdicts_of(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and " " not in line)


def kill_left(checkout: Path) -> None:
    """SIGKILL whatever still runs in ``checkout`` (a test that failed first)."""
    for pid in running_in(checkout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def running_in(checkout: Path) -> list[int]:
    """Every process (bubblewrap's aside) working in ``checkout``: an agent's, its shim's."""
    return processes_where(lambda cwd, cmd: cwd == str(checkout))


def sleeps(checkout: Path) -> list[int]:
    """The ``sleep 600`` processes an agent runs in ``checkout``."""
    return processes_where(lambda cwd, cmd: cwd == str(checkout) and cmd == b"sleep\x00600\x00")


def test_a_hostile_agent_on_a_forge_run_gets_its_own_issue_and_nothing_else(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> None:
    """A prompt-injected agent on a forge run acts on its own issue alone: every other try
    is refused and audited, no token is within its reach, and its failure is posted."""
    other = github.add_issue(str(SLUG), OTHER_TITLE, "Not the rogue's.", author=WRITER)
    own = github.add_issue(
        str(SLUG), "Tidy the notes", "Make them short.", author=WRITER, labels=[LABEL_ROGUE]
    )
    assert (other, own) == (1, 2)
    port, forge = free_port(), on_github(github)
    bot = start_bot(tmp_path, write_config(tmp_path, upstream, forge, port), forge)
    state = tmp_path / "state"
    log = state / "agents" / "rogue" / "output.log"
    checkout = state / "checkouts" / "app" / "rogue-1"
    try:
        assert wait_until(lambda: listening(port), timeout=60), bot.stderr
        labelled = forge.labelled(own, LABEL_ROGUE, SECRET, title="Tidy the notes")
        status, text = post(port, forge.name, *labelled)
        assert status == 202, text
        assert wait_until(lambda: "finished=" in read(log), timeout=120), (
            read(log) + bot.stdout + bot.stderr
        )
        said = read(log)
        verdicts = verdicts_of(said)
        expected = {
            # The door: its own issue only; reads anywhere; no description without a PR.
            **{"other_comment": "1", "other_why": "not-assigned", "own_comment": "0"},
            **{"read_other": "0", "read_text": "seen", "describe": "1", "describe_why": "no-pull"},
            # No token anywhere it can reach; Fleetwarden's state and config out of sight.
            **{"env": "none", "environ": "none", "files": "none", "config": "hidden"},
            **{"state_ledger": "hidden", "state_log": "hidden"},
            # The forge's API around the egress proxy: no connection ("Couldn't connect").
            **{"curl_direct": "7", "python": "refused"},
            # git: its own branch only; and its done taken.
            **{"push_main": "refused", "done": "0"},
            # Its own commits, as itself, go through; forged provenance, a person's name
            # and a Forgejo workflow do not.
            **{"push_own": "taken", "forged": "refused", "forged_why": "said"},
            **{"posing": "refused", "posing_why": "said", "forgejo": "refused"},
        }
        assert {key: verdicts.get(key) for key in expected} == expected, said
        assert int(verdicts["environ_read"]) > 0, said  # it did read what it could
        assert verdicts["curl"] != "0", said  # through the egress proxy: refused too
        assert all(seen.credential == "pat" for seen in github.requests), github.requests
        assert upstream.pushes() == []

        assert github.comments_on(str(SLUG), other) == []  # nothing on the other issue
        [posted] = [c for c in bot_comments(github, SLUG, own, forge.login) if c.startswith("hi ")]
        assert "@everyone" not in posted.replace("`@everyone`", ""), posted  # no live ping
        assert "<!--" not in posted, posted
        assert posted.count("<details>") == 1, posted
        assert posted.count("</details>") == 1, posted
        assert posted.rstrip().endswith("</details>"), posted

        lines = audit(tmp_path, "rogue")
        assert ("comment", 0, f"refused: comment on #{other}, not assigned") in lines, lines
        assert ("describe", 0, "refused: no pull request yet: `fw-forge pr` opens it") in lines
        assert ("comment", 1, f"commented on #{own}") in lines, lines
        assert ("read", 1, f"read issue #{other}") in lines, lines
        assert ("done", 1, "done failed") in lines, lines
        refused = [line for line in lines if line[1] == 0]
        assert len(refused) == 2, lines  # the door's two; git and egress count their own

        bot.command("egress rogue", r"refused", timeout=30)

        # The operator stops it: its turn is over, so its "failed" is published.
        bot.command("stop rogue", r"[Ss]topped rogue", timeout=30)
        assert wait_until(lambda: not running_in(checkout), timeout=30), running_in(checkout)

        def summary() -> list[str]:
            return [
                c
                for c in bot_comments(github, SLUG, own, forge.login)
                if c.startswith("**rogue could not finish:**")
            ]

        assert wait_until(lambda: len(summary()) == 1, timeout=60), bot_comments(
            github, SLUG, own, forge.login
        )
        [failed] = summary()
        assert "nope" in failed and failed.count("<details>") == 1, failed
        assert github.comments_on(str(SLUG), other) == []
        assert wait_until(
            lambda: (
                ledger_rows(tmp_path, "SELECT state, done_status FROM forge_runs")
                == [("failed", "failed")]
            ),
            timeout=30,
        ), ledger_rows(tmp_path, "SELECT * FROM forge_runs")

        assert token_anywhere(DEFAULT_PAT, state) == []
        assert token_anywhere(TOKEN, state) == []
        for text in (read(log), bot.stdout, bot.stderr, read(state / "fleetwarden.log")):
            assert DEFAULT_PAT not in text and TOKEN not in text
        bot.close()
    finally:
        kill_left(checkout)
        if bot.proc.poll() is None:
            bot.kill()


def test_webhook_refusals_start_nothing_and_post_nothing(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge
) -> None:
    """On each forge kind a mis-signed, an unknown forge's, a stale and a stranger's delivery
    start nothing and post nothing; a writer's starts one run, its replays nothing more."""
    forge, fake = forge_kind, forge_kind.fake
    given = fake.add_issue(
        str(SLUG), "Sleep on it", "Take your time.", author=WRITER, labels=[LABEL_SLEEPER]
    )
    refused = fake.add_issue(str(SLUG), "Not for you", "Nothing here.", author=WRITER)
    forge.meets(STRANGER)
    forge.label(refused, LABEL_SLEEPER, by=STRANGER)  # what Gitea's record of changes says
    port = free_port()
    bot = start_bot(tmp_path, write_config(tmp_path, upstream, forge, port), forge)
    checkout = tmp_path / "state" / "checkouts" / "app" / "sleeper-1"

    def deliver(headers_and_body: tuple[dict[str, str], bytes], to: str = forge.name) -> int:
        return post(port, to, *headers_and_body)[0]

    try:
        assert wait_until(lambda: listening(port), timeout=60), bot.stderr
        assert deliver(forge.labelled(refused, LABEL_SLEEPER, b"not-the-secret")) == 401
        assert deliver(forge.labelled(refused, LABEL_SLEEPER, SECRET), to="nope") == 404
        long_ago = datetime.now(UTC) - timedelta(hours=2)
        stale = forge.labelled(refused, LABEL_SLEEPER, SECRET, at=long_ago)
        status, text = post(port, forge.name, *stale)
        assert (status, "stale" in text) == (forge.stale_status, True), text
        by_stranger = forge.labelled(
            refused, LABEL_SLEEPER, SECRET, sender=STRANGER, delivery="stranger-1"
        )
        assert deliver(by_stranger) == 202

        def ignored() -> list[tuple[str, int, str]]:
            return [line for line in audit(tmp_path) if line[0] == "event"]

        assert wait_until(lambda: len(ignored()) == 1, timeout=30), audit(tmp_path)
        [(_, allowed, detail)] = ignored()
        assert allowed == 0 and f"@{STRANGER}" in detail, detail

        # A writer's label starts one run; its replay starts nothing more.
        labeled = forge.labelled(given, LABEL_SLEEPER, SECRET, delivery="given-1")
        assert deliver(labeled) == 202
        assert post(port, forge.name, *labeled) == (200, "already had it")
        assert wait_until(lambda: len(sleeps(checkout)) == 1, timeout=60), bot.stdout + bot.stderr
        assert wait_until(
            lambda: len(bot_comments(fake, SLUG, given, forge.login)) == 1, timeout=30
        )
        assert post(port, forge.name, *labeled) == (200, "already had it")
        assert wait_until(
            lambda: (
                ledger_rows(tmp_path, "SELECT issue, state FROM forge_runs") == [(given, "working")]
            ),
            timeout=30,
        ), ledger_rows(tmp_path, "SELECT * FROM forge_runs")
        assert ledger_rows(tmp_path, "SELECT count(*) FROM runs WHERE agent = 'sleeper'") == [(1,)]
        assert len(sleeps(checkout)) == 1

        assert fake.comments_on(str(SLUG), refused) == []  # nothing posted for a refusal
        webhooks = [line for line in audit(tmp_path) if line[0] == "webhook"]
        stale = ("400",) if forge.stale_status == 400 else ()  # GitLab's: 200, ignored
        for code in ("401", "404", *stale):
            assert any(not ok and f"({code})" in d for _, ok, d in webhooks), webhooks
        replays = [d for _, ok, d in webhooks if ok and "already had it" in d]
        assert len(replays) == 2, webhooks
        # Two deliveries taken (each also kept by its body's digest, against replays).
        taken = "SELECT count(*) FROM forge_deliveries WHERE delivery NOT LIKE 'body:%'"
        assert ledger_rows(tmp_path, taken) == [(2,)]

        bot.command("stop sleeper", r"[Ss]topped sleeper", timeout=30)
        assert wait_until(lambda: not running_in(checkout), timeout=30)
        assert token_anywhere(forge.pat, tmp_path / "state") == []
        assert SECRET.decode() not in bot.stdout + bot.stderr
        bot.close()
    finally:
        kill_left(checkout)
        if bot.proc.poll() is None:
            bot.kill()


def test_a_restart_mid_run_takes_the_run_up_again_without_a_second_one(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge
) -> None:
    """On each forge kind a Fleetwarden restarted mid-run takes the live run up again: the
    same run and agent process, the same status comment edited on, no second run."""
    forge, fake = forge_kind, forge_kind.fake
    issue = fake.add_issue(
        str(SLUG), "Sleep on it", "Take your time.", author=WRITER, labels=[LABEL_SLEEPER]
    )
    port = free_port()
    config = write_config(tmp_path, upstream, forge, port)
    checkout = tmp_path / "state" / "checkouts" / "app" / "sleeper-1"
    first = start_bot(tmp_path, config, forge)
    second: ConsoleBot | None = None
    try:
        assert wait_until(lambda: listening(port), timeout=60), first.stderr
        labeled = forge.labelled(issue, LABEL_SLEEPER, SECRET, delivery="sleep-1")
        assert post(port, forge.name, *labeled)[0] == 202
        assert wait_until(lambda: len(sleeps(checkout)) == 1, timeout=60), (
            first.stdout + first.stderr
        )
        assert wait_until(
            lambda: ledger_rows(tmp_path, "SELECT state FROM forge_runs") == [("working",)],
            timeout=30,
        )
        [comment] = fake.comments_on(str(SLUG), issue)
        assert comment.author == forge.login

        assert first.close(timeout=60) == 0
        before = forge.edits(comment.id)
        asleep = sleeps(checkout)
        assert len(asleep) == 1, asleep  # the agent outlives Fleetwarden

        second = start_bot(tmp_path, config, forge)
        assert wait_until(lambda: listening(port), timeout=60), second.stderr
        assert post(port, forge.name, *labeled) == (200, "already had it")
        # The new Fleetwarden brings the same status comment up to date.
        assert wait_until(lambda: forge.edits(comment.id) > before, timeout=60), fake.requests
        comments = fake.comments_on(str(SLUG), issue)
        assert [(c.id, c.author) for c in comments] == [(comment.id, forge.login)], comments
        runs = ledger_rows(tmp_path, "SELECT id, state, run_id, ended_at FROM forge_runs")
        assert len(runs) == 1 and runs[0][1] == "working" and runs[0][3] is None, runs
        agent_runs = ledger_rows(tmp_path, "SELECT id, ended_at FROM runs WHERE agent = 'sleeper'")
        assert agent_runs == [(runs[0][2], None)], agent_runs  # the same run, still live
        assert sleeps(checkout) == asleep  # the same agent process: none started again

        second.command("stop sleeper", r"[Ss]topped sleeper", timeout=30)
        assert wait_until(lambda: not running_in(checkout), timeout=30)
        assert token_anywhere(forge.pat, tmp_path / "state") == []
        second.close()
    finally:
        kill_left(checkout)
        for bot in (first, second):
            if bot is not None and bot.proc.poll() is None:
                bot.kill()
