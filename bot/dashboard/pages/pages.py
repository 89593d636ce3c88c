"""The dashboard's HTML: each page's data (:mod:`bot.dashboard.pages.views`) through a Jinja
template that escapes every value, as a whole page or as the fragment live updates swap in.

Markdown the chat renderers already write (an agent's transcript, its runs' summaries) is
turned into HTML by markdown-it with raw HTML off, so nothing an agent printed becomes
markup. Charts are drawn in the browser by the vendored uPlot from the numbers given here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bot.dashboard.access.signin import Viewer
from bot.dashboard.pages.shapes import Json
from bot.dashboard.pages.task_board import spend_words, totals_words
from connectors.markdown import to_html
from fleet.ledger.records.tasks import TASK_STATES
from fleet.metering import units
from fleet.redaction.guard import cut

_AGENT = re.compile(r"[a-z][a-z0-9-]{0,62}")  # an agent's name, as its page's path takes it
CARD_TITLE = 140
"""Characters of a task's title on its card (the whole, guarded, in its tooltip)."""

NAV: tuple[tuple[str, str], ...] = (
    ("/", "Fleet"),
    ("/tasks", "Tasks"),
    ("/budgets", "Budgets"),
    ("/usage", "Usage"),
    ("/changes", "Changes"),
    ("/accounts", "Accounts"),
    ("/hosts", "Hosts"),
    ("/approvals", "Approvals"),
    ("/audit", "Audit"),
)
TITLES = {
    "fleet": "Fleet",
    "tasks": "Tasks",
    "budgets": "Budgets",
    "usage": "Usage",
    "changes": "Changes",
    "accounts": "Accounts",
    "hosts": "Hosts",
    "approvals": "Approvals",
    "audit": "Audit",
}


def _tokens(value: float | None) -> str:
    return "—" if value is None else units.tokens_short(value)


def _usd(value: float | None) -> str:
    return "—" if value is None else units.usd(value)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _when(text: str | None) -> str:
    if not text:
        return "—"
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")


def _bytes(value: int | None) -> str:
    if value is None:
        return "—"
    return f"{value / 2**30:.1f} GiB"


def markdown_html(markdown: str) -> str:
    """Chat markdown as HTML for a page: raw HTML in it is escaped (markdown-it's
    ``html=False``), and a table's column alignment is a class, not a ``style`` attribute
    the page's CSP would refuse."""
    return to_html(markdown, align_classes=True)


def _amount(value: float, unit: str) -> str:
    return _usd(value) if unit == "usd" else units.tokens_words(value)


class Pages:
    """Renders pages and fragments."""

    def __init__(self) -> None:
        env = Environment(
            loader=PackageLoader("bot.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            tokens=_tokens, usd=_usd, age=_age, when=_when, bytes=_bytes, amount=_amount
        )
        self._env = env

    def fragment(self, name: str, data: Json) -> str:
        """What ``#live`` holds on page ``name`` (a template of that name)."""
        return self._env.get_template(f"{name}.html").render(data=_shown(name, data))

    def page(self, name: str, data: Json, viewer: Viewer, *, here: str, topic: str) -> str:
        """A whole page: the frame around the fragment."""
        title = data["agent"]["name"] if name == "agent" else TITLES.get(name, name)
        return self._env.get_template("base.html").render(
            title=title,
            nav=NAV,
            here=here,
            viewer={"user_id": viewer.user_id, "role": viewer.role.value},
            topic=topic,
            fragment=Markup(self.fragment(name, data)),
            data=data,
        )

    def message(
        self, title: str, text: str, *, form_action: str | None = None, form_value: str = ""
    ) -> str:
        """A plain page saying one thing (a refused link, a page not found), or the sign-in
        button of a link."""
        return self._env.get_template("message.html").render(
            title=title, text=text, form_action=form_action, form_value=form_value
        )


def _shown(name: str, data: Json) -> Mapping[str, Any]:
    """``data`` with what only the HTML needs: markdown made HTML, charts' arrays."""
    if name == "agent":
        transcript = data["transcript"]
        return {
            **data,
            "transcript": {**transcript, "html": Markup(markdown_html(transcript["markdown"]))},
            "runs": [
                {**run, "html": Markup(markdown_html(run["summary_markdown"]))}
                for run in data["runs"]
            ],
        }
    if name == "tasks":
        cards = [
            {
                **task,
                "card_title": cut(task["title"], CARD_TITLE),
                "spend": spend_words(task),
                "agent_page": f"/agents/{agent}"
                if (agent := task["agent"]) and _AGENT.fullmatch(agent)
                else None,
            }
            for task in data["tasks"]
        ]
        missions = [{**m, "spend": totals_words(m["totals"])} for m in data["missions"]]
        columns = [
            {"state": s, "count": n, "tasks": [c for c in cards if c["state"] == s]}
            for s in TASK_STATES
            if (n := data["counts"].get(s)) is not None
        ]
        mission = None if data["mission"] is None else missions[0]
        return {**data, "columns": columns, "missions": missions, "mission": mission}
    if name == "budgets":
        return {**data, "budgets": [{**b, "chart": _chart(b)} for b in data["budgets"]]}
    return data


def _chart(budget: Json) -> Json:
    """A budget's chart for uPlot: seconds since the epoch, use so far, the even line."""
    start = datetime.fromisoformat(budget["window_start"]).timestamp()
    end = datetime.fromisoformat(budget["window_end"]).timestamp()
    limit = float(budget["limit"])
    xs = [datetime.fromisoformat(at).timestamp() for at, _ in budget["series"]]
    used = [float(value) for _, value in budget["series"]]
    times = sorted({start, end, *xs})
    by_time = dict(zip(xs, used, strict=True))
    span = (end - start) or 1.0
    return {
        "x": times,
        "used": [by_time.get(t) for t in times],
        "even": [limit * (t - start) / span for t in times],
        "limit": limit,
        "title": budget["key"],
    }
