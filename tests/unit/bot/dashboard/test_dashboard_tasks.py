"""The Tasks page, ``/api/tasks`` and the tasks in ``/metrics`` through the real server over
a real register (:mod:`tests.tasks_rig`): columns by state with the latest of each end,
each task's projection beside its actual to the token, a mission's totals, filters that
name nothing refused with what to send, every hostile title and body escaped on the page
and valid in the JSON, and a gauge for every state."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import SignIns, Viewer
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.pages.pages import NAV, Pages
from bot.dashboard.pages.task_board import (
    ENDED_SHOWN,
    BadFilter,
    Filter,
    spend_words,
    task_filter,
    topic_filter,
)
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NO_PROJECTION, TASK_STATES, NewTask
from fleet.ledger.stores.work.stages import NewStage
from fleet.timing.clock import ManualClock
from tests.postgres_server import free_port
from tests.tasks_rig import (
    BODY,
    HOSTILE,
    IMG,
    PULL,
    REVIEW_USE,
    SCRIPT,
    WORKING_USE,
    Rig,
    build,
)
from tests.unit.bot.dashboard.test_dashboard_guard import SHOWN
from tests.unit.bot.dashboard.test_dashboard_guard import TOKEN as SECRET
from tests.unit.bot.dashboard.test_dashboard_guard import _views as views
from tests.unit.bot.dashboard.test_dashboard_server import signed_in
from tests.unit.conftest import ENGINES

TOKEN = "metrics-token-for-the-tasks-test"
BOTH = pytest.mark.parametrize("ledger_location", ENGINES, indirect=True)
"""On SQLite and on PostgreSQL."""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def tasks_dashboard(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[tuple[str, Rig, SignIns]]:
    rig = await build(ledger, clock, tmp_path, extra_done=ENDED_SHOWN + 2)
    acl = Acl([Grant("@alice:example.org", Role.VIEWER)])
    section = DashboardSection(listen=f"127.0.0.1:{free_port()}", metrics_token_env="FW_METRICS")
    signins = SignIns(ledger.dashboard, acl, clock)
    server = DashboardServer(
        section.settings(),
        views=views(ledger, clock, tmp_path),
        signins=signins,
        metrics=Metrics(),
        state_dir=tmp_path,
        environ={"FW_METRICS": TOKEN},
    )
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", rig, signins
    finally:
        await server.stop()


async def _get(url: str, auth: bool = True) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers=AUTH if auth else {}) as reply,
    ):
        return reply.status, await reply.text()


@BOTH
async def test_the_json_has_every_task_by_state_with_its_projection_and_actual(
    tasks_dashboard: tuple[str, Rig, SignIns],
) -> None:
    base, rig, _ = tasks_dashboard
    assert (await _get(f"{base}/api/tasks", auth=False))[0] == 401
    status, text = await _get(f"{base}/api/tasks")
    assert status == 200
    data = json.loads(text)
    tasks = {t["id"]: t for t in data["tasks"]}
    assert data["counts"] == {
        "todo": 1, "queued": 1, "working": 1, "review": 1,
        "done": 1 + ENDED_SHOWN + 2, "failed": 1, "cancelled": 1,
    }  # fmt: skip
    assert [t["state"] for t in data["tasks"]] == sorted(
        (t["state"] for t in data["tasks"]), key=TASK_STATES.index
    )
    done = [t["id"] for t in data["tasks"] if t["state"] == "done"]
    assert len(done) == ENDED_SHOWN and done == sorted(done, reverse=True)  # the latest first
    assert rig.done not in tasks and rig.extra_done[-1] in tasks
    working = tasks[rig.working]
    assert working["title"] == SCRIPT  # text, as written
    assert working["body"] == BODY.replace("\u202e", "")  # nothing hidden
    assert working["mission"] == "release" and working["agent"] == "coder-1"
    assert working["projection"] == {
        "basis": "agent coder-1 · runtime claude", "tasks": 2, "from_tasks": [1, 2],
        "tokens": [9000.0, 12000.0], "usd": [0.5, 0.8],
    }  # fmt: skip
    assert working["actual"] == {"tokens": WORKING_USE[0], "usd": WORKING_USE[1], "runs": 1}
    assert working["started_at"] is not None and working["ended_at"] is None
    review = tasks[rig.review]
    assert review["actual"] == {"tokens": REVIEW_USE, "usd": None, "runs": 1}
    assert (review["branch"], review["pull"], review["pull_url"]) == ("fix/imports", PULL, PULL)
    assert (review["source"], review["source_ref"], review["mission"]) == ("forge", "app#3", "docs")
    todo = tasks[rig.todo]
    assert todo["pull"] == "javascript:alert(1)" and todo["pull_url"] is None  # never a link
    assert todo["projection"]["usd"] is None and todo["projection"]["tokens"] is None
    assert tasks[rig.queued]["title"] == "invoice [U+202E]gnp.exe"  # nothing hidden
    assert tasks[rig.queued]["mission"] is None
    missions = {m["name"]: m for m in data["missions"]}
    assert missions["docs"]["parent"] == "release" and missions["release"]["parent"] is None
    release = missions["release"]["totals"]
    assert release["progress"] == "1 of 4 done"  # the done one is not shown, still counted
    assert release["tasks"] == 4 and release["unprojected"] == 1
    assert release["actual_tokens"] == WORKING_USE[0] + REVIEW_USE
    assert release["projected_usd"] == [1.0, 1.6]


@BOTH
async def test_a_mission_filter_shows_its_tree_and_its_totals(
    tasks_dashboard: tuple[str, Rig, SignIns],
) -> None:
    base, rig, _ = tasks_dashboard
    data = json.loads((await _get(f"{base}/api/tasks?mission=release"))[1])
    assert sorted(t["id"] for t in data["tasks"]) == sorted(
        [rig.working, rig.review, rig.todo, rig.done]
    )
    assert data["mission"]["name"] == "release" and data["topic"] == "tasks?mission=release"
    assert data["mission"]["totals"]["by_state"]["done"] == 1
    assert [m["name"] for m in data["missions"]] == ["release", "docs"]
    docs = json.loads((await _get(f"{base}/api/tasks?mission=docs&state=review"))[1])
    assert [t["id"] for t in docs["tasks"]] == [rig.review] and docs["counts"] == {"review": 1}
    assert docs["mission"]["parent"] == "release"


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("state=started", "?state= takes one of todo, queued, working, review, done"),
        ("mission=nowhere", "no mission is called 'nowhere'; the missions are release, docs"),
        ("mission=%20release", "?mission= takes a mission's name"),
        ("mission=" + "m" * 101, "at most 100 characters"),
    ],
)
async def test_a_filter_that_names_nothing_is_a_400_saying_what_to_send(
    tasks_dashboard: tuple[str, Rig, SignIns], query: str, said: str
) -> None:
    base, _, _ = tasks_dashboard
    status, text = await _get(f"{base}/api/tasks?{query}")
    assert status == 400 and said in json.loads(text)["error"]


def test_filters_and_topics_read_back() -> None:
    assert task_filter({}) == Filter() and Filter().topic == "tasks"
    shown = task_filter({"mission": "a&b=c", "state": "done"})
    assert topic_filter(shown.topic) == shown
    assert topic_filter("tasks?state=nope") is None and topic_filter("fleet") is None
    with pytest.raises(BadFilter):
        task_filter({"mission": "a\nb"})


def _task_json(usd: list[float] | None, tokens: list[float] | None, actual: Any) -> Any:
    projection = {"basis": "no finished task yet", "usd": usd, "tokens": tokens}
    return {"projection": projection, "actual": actual}


def test_a_cards_spend_says_projected_beside_actual_in_the_unit_it_has() -> None:
    priced = _task_json([0.5, 0.8], [9000, 12000], {"usd": 0.31, "tokens": 6200})
    assert spend_words(priced) == "projected $0.50 (p90 $0.80) · actual $0.31"
    unspent = _task_json([0.5, 0.8], None, {"usd": None, "tokens": 0})
    assert spend_words(unspent) == "projected $0.50 (p90 $0.80) · actual $0.00"
    unpriced = _task_json([0.5, 0.8], None, {"usd": None, "tokens": 4333})
    assert spend_words(unpriced) == "projected $0.50 (p90 $0.80) · actual 4,333 tokens, no price"
    tokens = _task_json(None, [9000, 12000], {"usd": None, "tokens": 4333})
    assert spend_words(tokens) == "projected 9,000 tokens (p90 12,000) · actual 4,333 tokens"
    none = _task_json(None, None, {"usd": None, "tokens": 0})
    assert spend_words(none) == "no projection: no finished task yet · actual 0 tokens"


async def test_the_page_escapes_every_hostile_title_and_links_only_a_web_address(
    tasks_dashboard: tuple[str, Rig, SignIns],
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    base, _, _ = tasks_dashboard
    assert ("/tasks", "Tasks") in NAV
    assert (await _get(f"{base}/tasks", auth=False))[0] == 401
    board = views(ledger, clock, tmp_path).board
    data = await board.page(Filter())
    viewer = Viewer("matrix", "@alice:example.org", Role.VIEWER, "s")
    html = Pages().page("tasks", data, viewer, here="/tasks", topic="tasks")
    main = html[html.index('<main id="live"') : html.index("</main>")]
    for bad in ("<script>document", "<img", 'onerror="', "<b>now", "\u202e", 'href="javascript'):
        assert bad not in main, bad
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in main
    assert "&#34;&gt;&lt;img src=x onerror=" in main
    assert "**bold** [click](javascript:alert(1)) # heading ⏎ | a | b |" in main
    assert "invoice [U+202E]gnp.exe" in main
    assert "long " * 60 not in main  # ten kilobytes, clipped on its card and in its tip
    assert len(main) < 60_000
    assert f'<a class="pull" href="{PULL}" rel="noopener noreferrer">pull request</a>' in main
    assert '<span class="pull">javascript:alert(1)</span>' in main
    assert '<a class="run" href="/agents/coder-1">run ' in main
    cards = re.findall(r'<article class="card" data-task="(\d+)">', main)
    assert len(cards) == 4 + 2 + ENDED_SHOWN  # the open, one failed, one cancelled, 20 done
    assert "projected $0.50 (p90 $0.80) · actual $0.31" in main
    assert "projected 9,000 tokens (p90 12,000) · actual 4,333 tokens" in main
    assert "no projection: no finished task yet" in main
    assert not any(title in main for title in HOSTILE)  # each only as text, escaped
    filtered = await board.page(Filter("release"))
    page = Pages().page("tasks", filtered, viewer, here="/tasks", topic=filtered["topic"])
    assert "1 of 4 done" in page and 'data-topic="tasks?mission=release"' in page
    assert "projected $1.00 (p90 $1.60) (1 without a projection) · actual $0.31" in page
    assert IMG not in page and SCRIPT not in page


@BOTH
async def test_metrics_have_a_gauge_for_every_state_and_the_open_tasks_spend(
    tasks_dashboard: tuple[str, Rig, SignIns], ledger: Ledger, clock: ManualClock
) -> None:
    base, rig, _ = tasks_dashboard
    status, text = await _get(f"{base}/metrics")
    assert status == 200
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("fleetwarden_task")
    }
    tasks = {k[1][0][1]: v for k, v in found.items() if k[0] == "fleetwarden_tasks"}
    assert tasks == {
        "todo": 1, "queued": 1, "working": 1, "review": 1,
        "done": 1 + ENDED_SHOWN + 2, "failed": 1, "cancelled": 1,
    }  # fmt: skip
    spend = {k[1][0][1]: v for k, v in found.items() if k[0] == "fleetwarden_task_spend_usd"}
    assert spend == {"projected": pytest.approx(1.0), "actual": pytest.approx(0.31)}
    used = {k[1][0][1]: v for k, v in found.items() if k[0] == "fleetwarden_task_spend_tokens"}
    assert used == {"projected": 27000.0, "actual": WORKING_USE[0] + REVIEW_USE}
    await ledger.tasks.move(rig.todo, "cancelled")  # read again only once a minute has passed
    assert 'fleetwarden_tasks{state="todo"} 1.0' in (await _get(f"{base}/metrics"))[1]
    clock.advance(61)
    assert 'fleetwarden_tasks{state="todo"} 0.0' in (await _get(f"{base}/metrics"))[1]


async def test_the_fleets_json_counts_the_open_tasks_by_state(
    tasks_dashboard: tuple[str, Rig, SignIns],
) -> None:
    base, _, _ = tasks_dashboard
    data = json.loads((await _get(f"{base}/api/fleet"))[1])
    assert data["tasks"] == {"todo": 1, "queued": 1, "working": 1, "review": 1}


async def test_a_secret_in_a_title_or_a_body_is_on_no_surface(
    tasks_dashboard: tuple[str, Rig, SignIns], ledger: Ledger
) -> None:
    base, _, signins = tasks_dashboard
    made = await ledger.tasks.add_task(
        NewTask(f"deploy with {SECRET}", "chat", "@op:hs", body=f"use {SECRET}\nthen go"),
        NO_PROJECTION,
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await signed_in(http, base, signins)
        async with http.get(f"{base}/tasks") as reply:
            page = await reply.text()
        async with http.get(f"{base}/api/tasks?state=todo") as reply:
            text = await reply.text()
    task = next(t for t in json.loads(text)["tasks"] if t["id"] == made.id)
    assert (task["title"], task["body"]) == (f"deploy with {SHOWN}", f"use {SHOWN}\nthen go")
    assert SECRET not in page and SECRET not in text and f"deploy with {SHOWN}" in page


async def test_the_page_says_plainly_when_a_filter_names_nothing(
    tasks_dashboard: tuple[str, Rig, SignIns],
) -> None:
    base, rig, signins = tasks_dashboard
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await signed_in(http, base, signins)
        async with http.get(f"{base}/tasks?mission=%3Cb%3Enowhere") as reply:
            assert reply.status == 404
            missing = await reply.text()
        async with http.get(f"{base}/tasks?state=started") as reply:
            assert reply.status == 400
            bad = await reply.text()
        async with http.get(f"{base}/tasks?mission=docs") as reply:
            assert reply.status == 200
            docs = await reply.text()
        async with http.get(f"{base}/events?topic=tasks%3Fmission%3Dnowhere") as reply:
            assert reply.status == 404
        async with http.get(f"{base}/events?topic=tasks%3Fmission%3Ddocs") as reply:
            assert reply.status == 200
            seen = ""
            while not ('class="board"' in seen and seen.endswith("\n\n")):  # the fragment, whole
                seen += (await reply.content.readline()).decode()
    said = "No mission is called &#39;&lt;b&gt;nowhere&#39;; the missions are release, docs."
    assert said in missing
    assert "<b>nowhere" not in missing
    assert "?state= takes one of todo, queued, working, review, done, failed, cancelled" in bad
    assert 'data-topic="tasks?mission=docs"' in docs and "0 of 1 done" in docs
    assert "event: fragment" in seen and f'data-task="{rig.review}"' in seen
    assert f'data-task="{rig.working}"' not in seen  # the mission's tasks only


async def test_a_pipelines_stage_is_on_its_tasks_card(
    tasks_dashboard: tuple[str, Rig, SignIns], ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """A task that is a pipeline's stage carries its stage, gate and how the gate went in
    `/api/tasks`, and its card says so; other tasks carry none."""
    base, rig, _ = tasks_dashboard
    release = await ledger.missions.mission_named("release")
    assert release is not None
    await ledger.stages.add_stages(
        release.id,
        [NewStage(rig.done, "ship", "plan", "auto"), NewStage(rig.todo, "ship", "code", ["make"])],
    )
    await ledger.stages.move(rig.done, "passed", "auto", came_from=("waiting",))
    data = json.loads((await _get(f"{base}/api/tasks?mission=release"))[1])
    stages = {t["id"]: t["stage"] for t in data["tasks"]}
    assert stages[rig.done] == {
        "pipeline": "ship",
        "name": "plan",
        "gate": "auto",
        "gate_state": "passed",
        "why": "auto",
    }
    assert stages[rig.todo]["gate"] == "check: make" and stages[rig.working] is None
    viewer = Viewer("matrix", "@alice:example.org", Role.VIEWER, "s")
    page = await views(ledger, clock, tmp_path).board.page(Filter(mission="release"))
    html = Pages().page("tasks", page, viewer, here="/tasks", topic="tasks")
    assert "stage <b>plan</b> of ship · gate auto: " in html
