"""What an agent's text becomes on the forge's own page: every body Fleetwarden posts,
rendered by GitHub's renderer (cmark-gfm) and by Gitea's and Forgejo's (goldmark, built by
tests/goldmark.sh), holds no live mention, no reference or closing keyword to an issue
but the run's own, no image, no raw HTML and no ``<details>`` of the agent's — for the
review's attacks (a stray double backtick earlier in the paragraph turned the protective
code spans into text) and for any text hypothesis makes of the pieces that matter."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.forge.posts.footer import FOOTER_CAP
from fleet.ledger import Ledger
from fleet.markdown.defuse import BODY_LIMIT, POST_CAP, _defused, as_code, defuse, escape_cell
from fleet.markdown.inert import inert
from fleet.markdown.live_markdown import safe
from fleet.markdown.rendered import gfm_inert, github_html
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import WorkRig

ROOT = Path(__file__).resolve().parents[4]
GOLDMARK = Path(os.environ.get("FLEETWARDEN_GOLDMARK", ROOT / ".cache" / "goldmark" / "render"))
OWN = (5, 6)


class Goldmark:
    """One goldmark process, a document per line (JSON in, JSON out)."""

    def __init__(self, program: Path) -> None:
        self.proc = subprocess.Popen(
            [str(program), "-lines"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def __call__(self, markdown: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(markdown) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the goldmark renderer stopped"
        out = json.loads(line)
        assert isinstance(out, str)
        return out

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def goldmark() -> Iterator[Goldmark]:
    if not GOLDMARK.is_file():
        if os.environ.get("FLEETWARDEN_REQUIRE_GOLDMARK", "1") == "1":
            pytest.fail(f"no goldmark renderer at {GOLDMARK}: run bash tests/goldmark.sh")
        pytest.skip("no goldmark renderer (FLEETWARDEN_REQUIRE_GOLDMARK=0)")
    made = Goldmark(GOLDMARK)
    try:
        yield made
    finally:
        made.close()


ATTACKS = [
    "a `` b @alice c @acme/admins d fixes #99",
    '``x ` @alice <img src="https://attacker.example/p.png?d=1">',
    "a `` b fixes #99 and ![p](https://attacker.example/p.png)",
    "x `` y <details><summary>Provenance</summary>fake</details>",
    "pr body `` Closes acme/app#99",
    "www.x.@alice and www.y.example/@bob",
    "`` then <details open><summary>Fleetwarden</summary>\n\nforged\n",
    "text\n\n```\nunclosed @carol",
    "[^1] @dave\n\n[^1]: fixes #99 @erin",
    "| a | b |\n|---|---|\n| @frank | #99 | extra @grace |",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_reviews_attacks_post_nothing_live_on_either_renderer(
    attack: str, goldmark: Goldmark
) -> None:
    out = defuse(attack, own=OWN)
    assert gfm_inert(out, OWN), github_html(out)
    assert gfm_inert(out, OWN, goldmark), goldmark(out)


def test_markdown_it_alone_would_have_let_the_stray_backtick_through() -> None:
    """The hole itself: markdown-it reads the defused text as safe, cmark-gfm renders live
    mentions and a live closing keyword — so defuse falls back to a code block."""
    attack = ATTACKS[0]
    defused = _defused(attack, frozenset(OWN))
    assert safe(defused, OWN)
    html = github_html(defused)
    assert not gfm_inert(defused, OWN) and "`@acme/admins`" in html
    assert defuse(attack, own=OWN) == as_code(attack, OWN)


def test_the_runs_own_issue_stays_live_and_plain_text_keeps_its_markdown(
    goldmark: Goldmark,
) -> None:
    text = "Fixes #5.\n\n- **bold** and a [link](https://example.org/docs)\n- `code`"
    out = defuse(text, own=OWN)
    assert out == text
    assert gfm_inert(out, OWN) and gfm_inert(out, OWN, goldmark)


def test_a_body_and_its_footer_fit_the_forges_limit() -> None:
    """The agent's text at its cap, a prefix of ours and the footer at its cap."""
    assert POST_CAP + 200 + FOOTER_CAP <= BODY_LIMIT
    long = ("word @someone " * 10_000)[: POST_CAP * 2]
    assert len(defuse(long, own=OWN)) <= POST_CAP


PIECES = st.sampled_from(
    [
        "`", "``", "```", "~~~", "@alice", "@acme/admins", "#99", "#5", "GH-99",
        "acme/app#99", "fixes ", "Closes: ", "<img src=https://a.example/p.png>",
        "<details>", "</details>", "<!--", "-->", "[x](https://e.example/issues/9)",
        "![a](https://x.example/p.png)", "www.x.", "https://h.example/acme/app/pull/7",
        "\n", "\n\n", " ", "*", "_", "[^1]", "[^1]: ", "|", "---", "\\", "&#64;", "&lt;",
        ">", "    ", "[", "]", "(", ")", "<", "word", "é", "\u200b", "$", "- ",
    ]
)  # fmt: skip
TEXTS = st.lists(PIECES, min_size=1, max_size=30).map("".join)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(text=TEXTS)
def test_any_defused_text_is_inert_on_both_renderers(text: str) -> None:
    """Property: whatever the agent wrote, what is posted renders nothing live on GitHub's
    renderer or Gitea's."""
    out = defuse(text, own=OWN)
    assert gfm_inert(out, OWN), (text, github_html(out))
    assert gfm_inert(out, OWN, _GOLDMARK()), (text, _GOLDMARK()(out))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=TEXTS)
def test_any_value_on_a_line_of_ours_is_inert_on_both_renderers(text: str) -> None:
    line = f"**Agent** {escape_cell(text)} on claude"
    assert gfm_inert(line), (text, github_html(line))
    assert gfm_inert(line, (), _GOLDMARK()), (text, _GOLDMARK()(line))


_shared: list[Goldmark] = []


def _GOLDMARK() -> Goldmark:
    if not _shared:
        if not GOLDMARK.is_file():
            pytest.fail(f"no goldmark renderer at {GOLDMARK}: run bash tests/goldmark.sh")
        _shared.append(Goldmark(GOLDMARK))
    return _shared[0]


def teardown_module() -> None:
    for made in _shared:
        made.close()


async def test_a_body_of_ours_that_is_not_inert_goes_out_as_code(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The last guard before a post: a body whose rendering holds anything live (it should
    not: its parts are defused) is sent as one code block, its footer after it, within the
    forge's limit."""
    rig = WorkRig.make(ledger, clock)
    rig.api.add_issue(updated_at=clock.now())
    record = await rig.started()
    body = await rig.work.publisher.posts.signed(record, "done `` @alice fixes #99 <img src=x>")
    text, _, foot = body.partition("\n\n<details>")
    assert text.startswith("```") and "@alice" in text and foot
    assert inert(text, (record.issue,)) and len(body) <= BODY_LIMIT
    plain = await rig.work.publisher.posts.signed(record, "Fixes #3: the parser reads the header.")
    assert plain.startswith("Fixes #3: the parser reads the header.\n\n<details>")
