"""What a hostile agent names reaches no surface as it wrote it: the real ``fleetwarden run``
with its dashboard, a ``command`` agent (tests/fakes/agents/naming_agent.py) sending real requests
through the metering proxy and real asks through the ask door, Debian's Chromium reading
the pages, and ``fleetwarden status`` the API.

The agent sends its own ``secret_env`` value as a model's name (served, as a lenient
upstream echoes any name, and refused) and as an ask's tool; a model name of links, images,
ESC and a C1 CSI; an ask whose subject holds a bidi override; then 600 requests with fresh
model names the provider refuses. The secret is looked for on every page, API, CSV,
``/metrics`` and the console; the markup in the browser's DOM; the escapes in the terminal's
output; the flood in ``/metrics``' size.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.console_bot import FLEETWARDEN, wait_until
from tests.integration.dashboard_rig import Rig, need_chromium, running, sign_in, watch

pytestmark = pytest.mark.integration

AGENT_SCRIPT = Path(__file__).parents[2] / "fakes" / "agents" / "naming_agent.py"
TOKEN = "fake-deploy-" + secrets.token_hex(16)
REDACTED = "[redacted: DEPLOY_TOKEN]"
EVIL = "evil.example"
MARKUP = (
    f"[docs](https://{EVIL}/x) ![i](https://{EVIL}/i.png) <img src=https://{EVIL}/p.png> "
    f"<https://{EVIL}/a> \x1b[31mred\x9b2J"
)
BIDI_SUBJECT = "cat notes\u202etxt.exe"
FLOOD = 600
ROSTER = f"""\
  - name: hostile
    runtime: command
    argv: [{sys.executable}, -I, {AGENT_SCRIPT.name}]
    workdir: ./hostile-work
    secret_env: [ANTHROPIC_API_KEY, DEPLOY_TOKEN]
"""
PAGES = ["/", "/agents/hostile", "/budgets", "/usage", "/accounts", "/hosts", "/approvals"]
PAGES += ["/changes", "/audit"]
FETCHED = [f"/api{path}" if path != "/" else "/api/fleet" for path in PAGES]
FETCHED += ["/usage.csv", "/changes.csv", "/metrics"]


def _log(rig: Rig) -> str:
    path = rig.root / "state" / "agents" / "hostile" / "output.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _tell(rig: Rig, line: str, answer: str, timeout: float = 30) -> None:
    """Type ``line`` to the agent; wait for one more ``answer`` line in its log."""
    before = _log(rig).count(answer)
    rig.bot.command(f"send hostile {line}", r"Sent to")
    assert wait_until(lambda: _log(rig).count(answer) > before, timeout=timeout), _log(rig)[-3000:]


@pytest.fixture(scope="module")
def hostile_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    need_chromium()
    root = tmp_path_factory.mktemp("hostile-names")
    (root / "hostile-work").mkdir()
    shutil.copy(AGENT_SCRIPT, root / "hostile-work" / AGENT_SCRIPT.name)
    with running(root, [], roster=ROSTER, env={"DEPLOY_TOKEN": TOKEN}) as hostile_rig:
        hostile_rig.bot.command("spawn hostile", r"hostile", timeout=30)
        assert wait_until(lambda: "naming agent ready" in _log(hostile_rig), timeout=30), (
            hostile_rig.bot.stdout
        )
        hostile_rig.fake.any_model = True  # a lenient upstream: serves any name, and echoes it
        _tell(hostile_rig, 'model "${DEPLOY_TOKEN}"', "MODEL 200")
        _tell(hostile_rig, f"model {json.dumps(MARKUP)}", "MODEL 200")
        hostile_rig.fake.any_model = False  # the provider's own answer: 404 for an unknown model
        _tell(hostile_rig, 'model "${DEPLOY_TOKEN}"', "MODEL 404")
        _tell(
            hostile_rig,
            'ask {"id": "s1", "tool": "${DEPLOY_TOKEN}", "subject": "deploy"}',
            "ASKED s1",
        )
        body = {"id": "b1", "tool": "Bash", "subject": BIDI_SUBJECT}
        _tell(hostile_rig, f"ask {json.dumps(body)}", "ASKED b1")
        _tell(hostile_rig, f"flood {FLOOD}", "FLOOD", timeout=120)
        assert f"FLOOD 404={FLOOD}" in _log(hostile_rig)
        hostile_rig.bot.command("send hostile exit", r"Sent to")
        assert wait_until(lambda: _ended(hostile_rig), timeout=30), hostile_rig.bot.stdout[-3000:]
        yield hostile_rig


def _ended(rig: Rig) -> bool:
    with sqlite3.connect(rig.ledger) as ledger:
        row = ledger.execute(
            "SELECT COUNT(*) FROM runs WHERE agent = 'hostile' AND ended_at IS NOT NULL"
        ).fetchone()
    return bool(row[0])


def _fetch(page: Any, path: str) -> tuple[int, str]:
    """``GET path`` from the signed-in page, as its own scripts would."""
    found = page.evaluate(
        "async (path) => { const r = await fetch(path); return [r.status, await r.text()]; }",
        path,
    )
    return int(found[0]), str(found[1])


def _status(rig: Rig, *args: str) -> str:
    done = subprocess.run(
        [str(FLEETWARDEN), "status", *args, "--config", str(rig.config)],
        cwd=rig.root,
        env=rig.bot.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


STATUS_RUNS = [(), ("--json",), ("agent", "hostile"), ("usage",), ("approvals",), ("audit",)]


def _hidden(text: str) -> list[str]:
    """Control and format characters (ESC, the C1 controls, bidi overrides), as code points."""
    return sorted(
        {
            f"U+{ord(c):04X}"
            for c in text
            if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf")
        }
    )


def test_the_agent_really_sent_its_secret_as_names(hostile_rig: Rig) -> None:
    """The ledger holds what the agent sent, as sent: the checks below look for something
    that is there to be shown."""
    with sqlite3.connect(hostile_rig.ledger) as ledger:
        served = ledger.execute(
            "SELECT COUNT(*) FROM usage WHERE served_model = ? AND status = 200", (TOKEN,)
        ).fetchone()[0]
        refused = ledger.execute(
            "SELECT COUNT(*) FROM usage WHERE requested_model = ? AND status = 404", (TOKEN,)
        ).fetchone()[0]
        asked = ledger.execute(
            "SELECT COUNT(*) FROM approvals WHERE tool = ?", (TOKEN,)
        ).fetchone()[0]
    assert (served, refused, asked) == (1, 1, 1)


def test_a_secret_sent_as_a_model_or_tool_name_is_on_no_surface(
    hostile_rig: Rig, chromium: Any
) -> None:
    """Every page, its API twin (by session and by the status token), /usage.csv, /metrics,
    `fleetwarden status` and chat: the agent's secret_env value is redacted everywhere the
    name is shown, and shown nowhere whole or in part."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, hostile_rig.link())
    seen: dict[str, str] = {}
    for path in PAGES:
        page.goto(hostile_rig.base + path)
        seen[path] = page.content()
    for path in FETCHED:
        status, text = _fetch(page, path)
        assert status == 200, (path, status, text[:300])
        seen[path] = text
    context.close()
    for path in FETCHED[:-2]:
        status, body = hostile_rig.api(path)
        assert status == 200, (path, status)
        seen[f"status token {path}"] = body.decode()
    for args in STATUS_RUNS:
        seen[f"fleetwarden status {' '.join(args)}"] = _status(hostile_rig, *args)
    seen["chat"] = hostile_rig.bot.stdout
    for where, text in seen.items():
        assert TOKEN not in text and TOKEN[12:28] not in text, where
    usage = json.loads(seen["/api/usage"])
    assert REDACTED in usage["by"]["model"]  # the served one: shown, redacted
    tools = [a["tool"] for a in json.loads(seen["/api/approvals"])["approvals"]]
    assert REDACTED in tools
    assert any(
        s.labels["model"] == REDACTED
        for family in text_string_to_metric_families(seen["/metrics"])
        for s in family.samples
    )


def test_a_model_name_with_markup_and_escapes_is_text_on_the_page(
    hostile_rig: Rig, chromium: Any
) -> None:
    """Links, images and an autolink in a served model's name make no <a> or <img> in the
    DOM of the agent's page (its run summary, its facts, its usage), the fleet page or the
    usage page, and nothing is fetched from them; ESC and the C1 CSI reach no text."""
    context = chromium.new_context()
    page = context.new_page()
    seen = watch(page)
    sign_in(page, hostile_rig.link())
    for path in ("/agents/hostile", "/", "/usage"):
        page.goto(hostile_rig.base + path)
        page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
        made = page.eval_on_selector_all(
            "a[href], img[src]", "nodes => nodes.map(n => n.href || n.src)"
        )
        assert not [url for url in made if EVIL in url], (path, made)
        text = page.inner_text("main")
        assert f"[docs](https://{EVIL}/x)" in text, path
        assert _hidden(page.content()) == [], path
    page.goto(hostile_rig.base + "/agents/hostile")
    summary = page.inner_text("article.run")
    assert re.search(r"Served by .*\[docs\]\(https://evil\.example/x\)", summary), summary
    assert f"{FLOOD + 1} requests not served" in summary  # the flood, and the refused secret
    assert not [url for url in seen.requests if EVIL in url]
    context.close()


def test_fleetwarden_status_writes_no_escape_to_the_terminal(hostile_rig: Rig) -> None:
    """The model's ESC and C1 CSI show as code points in the table; no output of `status`
    holds a control or bidi character, and `--json` still parses."""
    said = {args: _status(hostile_rig, *args) for args in STATUS_RUNS}
    row = next(line for line in said[()].splitlines() if line.startswith("hostile"))
    assert "[U+001B][31mred[U+009B]2J" in row
    for args, text in said.items():
        assert _hidden(text) == [], args
    assert json.loads(said[("--json",)])["agents"][0]["name"] == "hostile"


def test_a_bidi_override_in_an_ask_shows_as_its_code_point(hostile_rig: Rig, chromium: Any) -> None:
    """/approvals (page and API) shows the subject with [U+202E] where the override was:
    the line cannot read backwards there."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, hostile_rig.link())
    page.goto(hostile_rig.base + "/approvals")
    assert "Bash: cat notes[U+202E]txt.exe" in page.inner_text("main")
    assert "\u202e" not in page.content()
    _, body = _fetch(page, "/api/approvals")
    subjects = [a["subject"] for a in json.loads(body)["approvals"]]
    assert "cat notes[U+202E]txt.exe" in subjects
    context.close()


def test_a_flood_of_fresh_model_names_leaves_metrics_bounded(
    hostile_rig: Rig, chromium: Any
) -> None:
    """600 requests, each with a name never seen, refused by the provider: they count, under
    one model, and no name of theirs becomes a label; the scrape stays small."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, hostile_rig.link())
    status, text = _fetch(page, "/metrics")
    context.close()
    assert status == 200 and "fresh-" not in text
    requests = [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "fleetwarden_model_requests_total"
    ]
    models = {s.labels["model"] for s in requests}
    assert len(models) == 3 and {REDACTED, "(not served)"} < models, models  # and the markup
    not_served = sum(s.value for s in requests if s.labels["model"] == "(not served)")
    assert not_served == FLOOD + 1  # and the secret the provider refused
    assert len(text) < 32 * 1024, len(text)
