"""Tests for bot.render.forge: the ``forge list`` table and the one line of links for
``ps``/``runs`` — an issue's title or a repository's name written to make markup, break
the table, ping a room or fake a link shows as plain text, and only the forge's own web
addresses become links."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from markdown_it import MarkdownIt

from bot.render.forge import forge_list, links, pull_news
from connectors.markdown import to_html
from fleet.forge.facts import PullNews
from fleet.ledger.records.forge import ForgeRunRecord, Slug

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
HOSTILE = "Fix `it`\n# Heading | @room **now** <b>x</b> [link](http://evil)"
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def record(**fields: object) -> ForgeRunRecord:
    values: dict[str, object] = {
        "id": 1,
        "forge": "github",
        "repo": "app",
        "slug": Slug("acme", "app"),
        "issue": 12,
        "title": "Fix the login",
        "agent": "coder",
        "branch": "fleetwarden/coder/issue-12",
        "state": "working",
        "requester": "alice",
        "pull": None,
        "pull_url": None,
        "issue_url": "https://github.com/acme/app/issues/12",
        "comment_id": 7,
        "check_id": None,
        "run_id": 41,
        "line_id": 3,
        "done_signal": None,
        "done_status": None,
        "summary": None,
        "started_at": NOW - timedelta(minutes=3, seconds=5),
        "activity_at": None,
        "ended_at": None,
    }
    values.update(fields)
    return ForgeRunRecord(**values)  # type: ignore[arg-type]


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of each body row of the table, as a reader sees their text."""
    rows: list[list[str]] = []
    in_row = False
    for token in _PARSER.parse(markdown):
        if token.type in ("tr_open", "tr_close"):
            in_row = token.type == "tr_open"
            rows += [[]] if in_row else []
        elif token.type == "inline" and in_row:
            rows[-1].append(token.content)
    return rows[1:]


def test_the_list_has_one_linked_row_per_run() -> None:
    """Forge, the issue linked, title, agent, state, the PR linked, when it started."""
    done = record(
        id=2,
        issue=7,
        issue_url="https://github.com/acme/app/issues/7",
        state="waiting",
        done_signal="agent",
        done_status="ok",
        pull=18,
        pull_url="https://github.com/acme/app/pull/18",
        ended_at=NOW - timedelta(minutes=1),
    )
    text = forge_list([record(), done], NOW)
    lines = text.split("\n")
    assert lines[0] == "| forge | issue | title | agent | state | PR | started |"
    assert lines[2] == (
        "| github | [acme/app#12](https://github.com/acme/app/issues/12) | Fix the login | "
        "coder | working | — | 3m05s ago |"
    )
    assert lines[3] == (
        "| github | [acme/app#7](https://github.com/acme/app/issues/7) | Fix the login | "
        "coder | waiting (done ok) | [#18](https://github.com/acme/app/pull/18) | "
        "3m05s ago, ended 1m00s ago |"
    )
    assert text.endswith("\n\n2 forge runs, 1 not ended.")


def test_the_watchdog_is_said_in_the_state() -> None:
    """A run the watchdog ended says no done signal came."""
    text = forge_list([record(state="waiting", done_signal="watchdog")], NOW)
    assert "| waiting (no done signal) |" in text


def test_no_runs_says_how_one_starts() -> None:
    """An empty list says what makes a forge run."""
    assert forge_list([], NOW).startswith("No forge runs yet.")


def test_no_live_run_after_some_ended_points_to_forge_all() -> None:
    """Runs have ended, none is live: never "yet", but how many ended and where they are."""
    assert forge_list([], NOW, ended=1) == (
        "No forge run is live now; 1 run has ended (`forge all` lists them)."
    )
    assert "3 runs have ended" in forge_list([], NOW, ended=3)


def test_a_hostile_title_is_plain_text_in_its_own_cell() -> None:
    """A title with backticks, a line break, a heading, a pipe, ``@room``, emphasis, HTML
    and a link stays one cell of plain text: seven cells a row, no markup, no ping."""
    text = forge_list([record(title=HOSTILE, forge="git|hub", agent="c`o")], NOW)
    rows = table_rows(text)
    assert len(rows) == 1 and len(rows[0]) == 7
    html = to_html(text)
    assert "<h1>" not in html and "<b>" not in html and "<strong>" not in html
    assert 'href="http://evil"' not in html
    assert "<code>" not in html
    assert "@room" in html  # shown, escaped: as text


def test_an_address_that_is_not_a_web_address_is_not_linked() -> None:
    """A ``javascript:`` address, or one made to end the link early, is no link: the
    issue shows as text."""
    for address in ("javascript:alert(1)", "https://e.com/a) [x](http://evil"):
        text = links(record(issue_url=address))
        assert text == "issue acme/app#12"


def test_links_name_the_issue_and_the_pull_request() -> None:
    """``issue acme/app#12 · PR #18``, each linked to the forge's page."""
    assert links(record()) == "issue [acme/app#12](https://github.com/acme/app/issues/12)"
    with_pull = replace(record(), pull=18, pull_url="https://github.com/acme/app/pull/18")
    assert links(with_pull) == (
        "issue [acme/app#12](https://github.com/acme/app/issues/12) · "
        "PR [#18](https://github.com/acme/app/pull/18)"
    )
    assert (
        links(replace(record(), pull=18, pull_url=None))
        == "issue [acme/app#12](https://github.com/acme/app/issues/12) · PR #18"
    )


def test_a_hostile_repository_name_cannot_break_the_link() -> None:
    """A slug with brackets and parentheses is escaped inside the link's label."""
    text = links(record(slug=Slug("ev]il(", "a`pp")))
    html = to_html(text)
    assert html.count("<a ") == 1 and 'href="https://github.com/acme/app/issues/12"' in html


def test_pull_news_says_why_a_pull_request_is_not_open_and_what_opens_it() -> None:
    """Not opened: the work finished, why in Fleetwarden's words (escaped: it may quote the
    forge), what opens it; opened later: its link."""
    news = PullNews(
        "coder", Slug("acme", "app"), 12, "https://github.com/acme/app/issues/12",
        why="forge gh refused it (it said: <b>no</b> @team)",
        fix="`pr coder` in chat opens it once that is fixed",
    )  # fmt: skip
    text = pull_news(news)
    assert text.startswith(
        "⚠ **coder** finished its work on [acme/app#12](https://github.com/acme/app/issues/12)"
        ", but its pull request could not be opened: forge gh refused it"
    )
    assert "<b>" not in text and "\n\n`pr coder` in chat opens it once that is fixed." in text
    late = replace(news, pull=18, pull_url="https://github.com/acme/app/pull/18", late=True)
    assert pull_news(late).startswith(
        "✅ **coder**'s pull request [#18](https://github.com/acme/app/pull/18)"
    )


def test_pull_news_says_a_pull_request_opened_and_how_it_ended() -> None:
    """Opened when the work was done: its link and that it waits for review; merged (or
    closed) on the forge: by whom, the forge's login escaped."""
    opened = PullNews(
        "coder", Slug("acme", "app"), 12, "https://github.com/acme/app/issues/12", pull=18,
        pull_url="https://github.com/acme/app/pull/18",
    )  # fmt: skip
    assert pull_news(opened) == (
        "🔀 **coder** opened pull request [#18](https://github.com/acme/app/pull/18) for "
        "[acme/app#12](https://github.com/acme/app/issues/12): it waits for review."
    )
    merged = pull_news(replace(opened, ended="merged", by="@ann_*x* on gh"))
    assert (
        merged.startswith("🏁 **coder**'s pull request [#18](") and "was merged by @ann" in merged
    )
    assert "_*x*" not in merged
    assert pull_news(replace(opened, ended="closed", by="@ann on gh")).startswith("⏹ ")


def test_a_held_forge_is_said_first_with_why_even_without_runs() -> None:
    """No runs yet on a held forge: the list says it is held, why and the fix, before
    "No forge runs yet"; with runs, before the table."""
    why = "forge github refused Fleetwarden's credential (401): put a valid token in GH_TOKEN"
    empty = forge_list([], NOW, held={"github": why})
    assert empty.startswith("⚠ Forge github is held — its events are refused: forge github ")
    assert "GH\\_TOKEN" in empty  # escaped markdown: reads GH_TOKEN
    assert empty.endswith("(its label or an assignment to the bot).")
    listed = forge_list([record()], NOW, held={"github": why})
    assert listed.startswith("⚠ Forge github is held") and "| forge | issue |" in listed


def test_why_an_unpublished_run_s_pull_request_was_not_opened_is_said_in_full() -> None:
    """Under the table, each unpublished run's reason in the operator's words, escaped."""
    why = "forge github does not let Fleetwarden's credential (the token in GH_TOKEN) open it"
    text = forge_list([record(state="unpublished")], NOW, not_opened={1: why + " <b>x</b>"})
    assert "**coder**'s pull request for [acme/app#12](" in text
    assert "was not opened: forge github does not let" in text and "<b>" not in text
