"""What an agent's text becomes on GitLab: every GitLab Flavored Markdown reference (``#N``,
``!N``, ``x#N``, ``~label``, ``%milestone``, ``$N``, ``&N``, ``*iteration:N``,
``[vulnerability:N]``, ``GL-N``, ``group/project>``, an object's address) and mention
(``@all``, ``@group/sub``) outside code put in code but the run's own issue and merge
request, no quick action and no closing statement left, checked by rendering with comrak
(GitLab's renderer, with GitLab's options) and reading the HTML with GitLab's reference
patterns — for each form, for hostile issue text, and for any text hypothesis makes of
GLFM's pieces; and the check itself finds each form it must."""

from __future__ import annotations

import re

import comrak
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.markdown.defuse import POST_CAP, defuse, escape_cell
from fleet.markdown.gitlab_raw import quick_actions
from fleet.markdown.gitlab_rendered import gitlab_html, gitlab_inert, gitlab_live
from fleet.markdown.inert import inert
from fleet.markdown.live_markdown import safe

ISSUE, PULL = (3,), (4,)  # a GitLab run: issue #3, merge request !4 (numbered apart)


def posted(text: str) -> str:
    """``text`` defused for a GitLab run, held to the checks it must pass."""
    out = defuse(text, own=ISSUE, own_pulls=PULL)
    assert gitlab_inert(out, ISSUE, own_pulls=PULL), (text, gitlab_live(out, ISSUE, own_pulls=PULL))
    assert inert(out, ISSUE, own_pulls=PULL) and safe(out, ISSUE, PULL)
    return out


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("see #5 and !6", "see `#5` and `!6`"),
        ("own #3 and !4", "own #3 and !4"),
        (
            "not own: #4 is an issue, !3 a merge request",
            "not own: `#4` is an issue, `!3` a merge request",
        ),
        ("x#3 and group/sub/project!4", "`x#3` and `group/sub/project!4`"),
        (
            'labels ~bug, ~"feature request", ~"priority::high", ~42',
            'labels `~bug`, `~"feature request"`, `~"priority::high"`, `~42`',
        ),
        (
            'milestones %5, %v1.23 and %"release candidate"',
            'milestones `%5`, `%v1.23` and `%"release candidate"`',
        ),
        ("project%v2 and project~bug", "`project%v2` and `project~bug`"),
        ("snippet $7, epic &8, group/sub&9", "snippet `$7`, epic `&8`, `group/sub&9`"),
        ('*iteration:12 and *iteration:"sprint 3"', '`*iteration:12` and `*iteration:"sprint 3"`'),
        (
            "[vulnerability:5], [feature_flag:x/y/6], [work_item:7]",
            "[`vulnerability:5`], [`feature_flag:x/y/6`], [`work_item:7`]",
        ),
        ("GL-5 and GL-3", "`GL-5` and GL-3"),
        ("^alert#9", "^`alert#9`"),
        ("the project acme/app> itself", "the project `acme/app>` itself"),
        ("@all @here @group/sub/team", "`@all` `@here` `@group/sub/team`"),
        (
            "https://gitlab.com/a/b/-/merge_requests/4 and https://gitlab.com/a/b/-/epics/2",
            "`https://gitlab.com/a/b/-/merge_requests/4` and `https://gitlab.com/a/b/-/epics/2`",
        ),
        (
            "https://g.example/a/-/milestones/1, https://g.example/-/snippets/2",
            "`https://g.example/a/-/milestones/1`, `https://g.example/-/snippets/2`",
        ),
        (
            "[the MR](https://g.example/a/-/merge_requests/9)",
            "the MR (`https://g.example/a/-/merge_requests/9`)",
        ),
        ("[see](#5) and [label](~bug)", "see (`#5`) and label (`~bug`)"),
        (
            "~~struck~~ stays, 100% too, ~/path and a->b",
            "~~struck~~ stays, 100% too, ~/path and a->b",
        ),
    ],
)
def test_each_gitlab_form_is_put_in_code(text: str, shown: str) -> None:
    """Each of GitLab's references and mentions outside code reads the same, in code: it
    links and tells nothing; the run's own issue (``#3``) and merge request (``!4``) stay
    live, each in its own namespace; what names nothing is left as written."""
    assert posted(text) == shown


@pytest.mark.parametrize(
    ("keyword", "shown"),
    [
        ("Closes #5", "Closes `#5`"),
        ("Fixes: acme/other#3", "Fixes: `acme/other#3`"),
        (
            "Implements https://g.example/a/-/issues/8",
            "Implements `https://g.example/a/-/issues/8`",
        ),
        ("Resolving issues #6 and #3", "Resolving issues `#6` and #3"),
        ("Closes #3", "Closes #3"),
    ],
)
def test_a_merge_closes_no_other_issue(keyword: str, shown: str) -> None:
    """GitLab's closing statements (its default pattern: close, fix, resolve, implement in
    every form) name only the run's own issue once defused."""
    assert posted(keyword) == shown


def test_a_closing_statement_in_code_is_broken_but_reads_the_same() -> None:
    """GitLab reads a closing statement in a code span or a code block too: the space after
    the keyword becomes a no-break space, which a reader cannot tell apart; the run's own
    is left."""
    out = posted("`Fixes #9`\n\n```\ncloses acme/app#2\nCloses #3\n```")
    assert out == "`Fixes\u00a0#9`\n\n```\ncloses\u00a0acme/app#2\nCloses #3\n```"


HOSTILE = [
    "/close",
    "Thanks!\n/merge",
    "- item\n/approve",
    "1. first\n\n/assign @wendy",
    " /label ~x",
    "   /unlabel ~bug",
    "text\n\n\n/reopen\n",
    "> quoted\n/draft",
    "`code`\n/ready",
    "/CLOSE now",
    "/clo\u017fe",
    "~~~\n/close\n~~~",
    "```\n/close",
    "````\n/close\n````",
    "~~~\n```\n/merge\n~~~",
    "a `span\n/close` b",
    "| a |\n|---|\n/close | x",
    "[link](\n/close x)",
    "![alt\n/close](https://e.example/i.png)",
    "Please /close it",
    "<details>\n/close\n</details>",
    ">>>\n/close\n>>>",
]


_EXACT_FENCE = re.compile(r"^```[^`\n]*\n.*?^```$", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("text", HOSTILE)
def test_no_quick_action_survives_anywhere(text: str) -> None:
    """A command at a line's start — alone, after text, in a list, after blank lines,
    indented up to three spaces, in any case, in a ``~~~`` block or one left open, split
    by a code span's line break, in a table, a link, an image — runs nothing once
    defused: not by GitLab's own reading (:func:`quick_actions`), and no line starts with
    it outside a block fenced by exactly three backticks (which GitLab's reader skips)."""
    out = posted(text)
    assert quick_actions(out) == []
    assert not re.search(r"^/", _EXACT_FENCE.sub("", out), re.MULTILINE), out


def test_a_quick_action_in_prose_still_reads_as_written() -> None:
    """The escaped slash shows as the slash: the page reads ``/close``."""
    out = posted("Run:\n/close when done")
    assert out == "Run:\n\\/close when done"
    assert "Run:\n/close when done" in re.sub(r"<[^>]*>", "", gitlab_html(out))


def test_code_keeps_what_it_shows() -> None:
    """A ``~~~`` block holding a command is fenced anew by three backticks (which GitLab's
    reader skips), one holding a line of backticks is indented: either shows the same
    code; a block fenced by three backticks already is left as it is."""
    assert posted("~~~sh\n/close\n~~~") == "```sh\n/close\n```"
    assert posted("```\n/close\n```") == "```\n/close\n```"
    out = posted("intro\n~~~\n```\n/merge\n~~~")
    assert out == "intro\n\n    ```\n    /merge"
    assert "<pre" in gitlab_html(out) and "/merge" in gitlab_html(out)


def test_hostile_issue_text_is_inert_on_gitlab() -> None:
    """An issue's text of everything GitLab acts on, quoted back by an agent: nothing of it
    is live."""
    text = (
        "Please fix this.\n/label ~security\n/assign @wendy\n - /close\n\n"
        '~bug ~"needs review" !1 !4 #3 #2 @all @acme/admins %1 %"v2 release" $3 &5 '
        "*iteration:1 [vulnerability:1] GL-2 acme/app> Closes #2, fixes acme/app#1\n"
        "   /merge\n"
    )
    out = posted(text)
    assert quick_actions(out) == [] and "#3" in out.replace("`#3`", "")
    for live in ("~bug", "!1", "`#2`", "@all", "%1", "$3", "&5", "vulnerability:1", "GL-2"):
        assert f"`{live.strip('`')}`" in out, live


@pytest.mark.parametrize(
    "form",
    [
        "#5", "x#3", "!3", "~bug", '~"a b"', "%v1", '%"a b"', "$5", "&5", "*iteration:1",
        "[vulnerability:1]", "GL-5", "a/b>", "@all", "@group/sub", "^alert#1",
        "https://g.example/a/-/merge_requests/1", "[x](#5)", "/close", "Fixes #5",
        "`Fixes #5`", "~~~\n/close\n~~~", "<b>x</b>", "![i](https://e.example/i.png)",
        ">>>\nopen quote", "# 5",
    ],
)  # fmt: skip
def test_the_gitlab_check_finds_each_live_form(form: str) -> None:
    """The check is no formality: each form, posted as written, fails it."""
    assert not gitlab_inert(form, ISSUE, own_pulls=PULL), form


def test_the_runs_own_numbers_pass_the_check_in_their_own_namespace() -> None:
    """``#3`` and ``!4`` are the run's; ``#4`` and ``!3`` are another issue and merge
    request; without ``own_pulls`` (GitHub, Gitea) one namespace holds both."""
    assert gitlab_inert("#3 !4 Closes #3", ISSUE, own_pulls=PULL)
    assert not gitlab_inert("#4", ISSUE, own_pulls=PULL)
    assert not gitlab_inert("!3", ISSUE, own_pulls=PULL)
    assert gitlab_inert("#3 !3 #4 !4", (3, 4))
    assert defuse("#4 !3", own=(3, 4)) == "#4 !3"


def test_escaped_reference_characters_are_text_on_gitlab() -> None:
    """As GitLab documents, ``\\~bug`` or ``\\$5`` names nothing: comrak keeps the escaped
    character apart, as GitLab's renderer does; an escaped character GitLab does not keep
    apart is read with its text (``@\\_x`` is ``@_x``, a mention)."""
    assert gitlab_inert("\\~bug \\$5 \\#5 \\%v1 \\&5", ISSUE, own_pulls=PULL)
    assert not gitlab_inert("@\\_x", ISSUE, own_pulls=PULL)


def test_comrak_is_set_as_gitlab_sets_it() -> None:
    """The binding renders GitLab's extensions: ``>>>`` quotes, escaped characters kept
    apart, dollar math, heading anchors, raw HTML kept."""
    html = gitlab_html(">>>\nq\n>>>\n\n\\~x $y$\n\n# Title\n\n<b>x</b>")
    assert "<blockquote" in html and "data-escaped-char" in html
    assert "data-math-style" in html and 'href="#title"' in html and "<b>x</b>" in html
    assert comrak.render_markdown("~~x~~").strip() == "<p>~~x~~</p>"  # off by default


_GLFM = st.sampled_from(
    [
        *"ab1 \n/#!~%$&@*^:[]()`\\\"'<>-_.,|", "/close", "/merge ", " /label ~x", "~bug",
        '~"a b"', "%v1", '%"x y"', "$5", "&6", "#3", "#7", "!4", "!3", "x#3", "a/b!2", "@all",
        "@g/sub", "*iteration:", "[vulnerability:", "[issue:", "GL-", "^alert#", "a/b>",
        "Closes ", "fixes ", "Implements ", "issues ", "```", "~~~", "````", ">>>", "    ",
        "- ", "1. ", "> ", "https://g.example/a/-/issues/", "/-/merge_requests/", "[x](",
        "](#5)", "![i](https://e.example/i.png)", "<details>", "&#64;", "\u017f", "# ",
    ]
)  # fmt: skip
_TEXTS = st.lists(_GLFM, min_size=1, max_size=30).map("".join)


@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(text=_TEXTS, pulls=st.sampled_from([PULL, None]))
def test_any_defused_text_is_inert_on_gitlab(text: str, pulls: tuple[int, ...] | None) -> None:
    """Property: whatever GLFM the agent wrote, what is posted runs no quick action, closes
    no other issue and renders nothing live on GitLab (comrak and GitLab's patterns), nor
    on GitHub, within the cap."""
    out = defuse(text, own=ISSUE, own_pulls=pulls)
    assert gitlab_inert(out, ISSUE, own_pulls=pulls), (
        text,
        out,
        gitlab_live(out, ISSUE, own_pulls=pulls),
    )
    assert inert(out, ISSUE, own_pulls=pulls)
    assert quick_actions(out) == [] and len(out) <= POST_CAP


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=_TEXTS)
def test_any_value_on_a_line_of_ours_is_inert_on_gitlab(text: str) -> None:
    """Property: a value of any kind, even at the start of a line of ours, is inert on
    GitLab: in code, escaped (``\\~``, ``\\/``), or plain."""
    for line in (escape_cell(text), f"**Agent** {escape_cell(text)} on claude"):
        assert gitlab_inert(line), (text, line, gitlab_live(line))
        assert not line.startswith("/")
