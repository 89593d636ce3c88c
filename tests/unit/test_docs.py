"""The README stays a landing page, and every link in it and in the guides leads somewhere."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The text without fenced code blocks, and each code span as a word of its own, so a
    `[label](target)` shown as code is no link while a link labelled with code still is."""
    return _CODE_SPAN.sub(lambda span: span.group(0).strip("`"), _FENCE.sub("", text))


def _links(text: str) -> list[str]:
    without_spans = _CODE_SPAN.sub("code", _FENCE.sub("", text))
    return [target for _, target in _LINK.findall(without_spans)]


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: the text of the heading in lower case, with
    every character but letters, digits, `_`, `-` and spaces taken out, spaces as `-`."""
    text = _LINK.sub(lambda link: link.group(1), heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor, a repeated one numbered from its second as GitHub does."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in _HEADING.findall(_prose(page.read_text(encoding="utf8"))):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def test_slugs_follow_github() -> None:
    """Code, punctuation and links in a heading make the anchor GitHub would make."""
    assert slug("Exit status of `fleetwarden run`") == "exit-status-of-fleetwarden-run"
    assert slug("In chat: what an agent does") == "in-chat-what-an-agent-does"
    assert slug("pi and opencode") == "pi-and-opencode"
    assert slug("See [Limits](isolation.md) — and *more*") == "see-limits--and-more"


def test_the_readme_is_a_landing_page() -> None:
    """README.md is at most 200 lines: the manual lives in the guides."""
    assert len(README.read_text(encoding="utf8").splitlines()) <= 200


def test_every_guide_the_readme_indexes_exists() -> None:
    """Each link under the README's Guides heading names a file in docs/ that exists."""
    text = README.read_text(encoding="utf8")
    index = text.split("\n## Guides\n", 1)[1].split("\n## ", 1)[0]
    guides = _links(index)
    assert guides, "the README indexes no guide"
    for target in guides:
        assert target.startswith("docs/"), target
        assert (ROOT / target).is_file(), f"README indexes {target}, which does not exist"


def test_every_guide_is_reachable_from_the_readme() -> None:
    """Every page in docs/ is linked from the README, so no guide is orphaned."""
    linked = {(ROOT / target.split("#")[0]).resolve() for target in _links(README.read_text())}
    orphans = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert orphans == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_to_a_file_and_heading(page: Path) -> None:
    """A relative link names a file that exists, and its #anchor a heading in that file."""
    broken = []
    for target in _links(page.read_text(encoding="utf8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: — not ours to check
            continue
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        if not goal.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (goal.suffix != ".md" or anchor not in anchors(goal)):
            broken.append(f"{target}: no heading #{anchor} in {goal.name}")
    assert broken == []


def test_the_quick_start_keeps_two_commands_and_says_how_a_config_is_passed() -> None:
    """The Quick start shows two commands; its way to repositories says how the config
    file holding `repos:` is passed (`--config`, or FLEETWARDEN_CONFIG)."""
    text = README.read_text(encoding="utf8")
    quick = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    assert quick.count("```sh\n") == 2
    [repos] = [line for line in quick.splitlines() if "`repos:`" in line]
    assert "--config" in repos and "FLEETWARDEN_CONFIG" in repos


@pytest.mark.parametrize("name", ["repos.md", "forges.md"])
def test_a_guide_says_how_to_pass_the_config_before_its_first_config(name: str) -> None:
    """A new user following the guide is told how its YAML reaches Fleetwarden before
    being asked to write any."""
    text = (ROOT / "docs" / name).read_text(encoding="utf8")
    before = text.split("```yaml", 1)[0]
    assert "--config" in before and "FLEETWARDEN_CONFIG" in before


def test_the_quick_start_says_what_to_type_right_after_run_sh() -> None:
    """`Then type commands` follows `bash run.sh` with no other command between them (the
    test suite's command comes after)."""
    text = README.read_text(encoding="utf8")
    quick = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    between = quick.split("bash run.sh\n```", 1)[1].split("Then type commands", 1)[0]
    assert "```" not in between
    assert quick.index("Then type commands") < quick.index("bash tests/run.sh")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_code_fence_closes_on_a_line_of_its_own(page: Path) -> None:
    """A fence opens with its info string alone and closes with nothing after it: a
    closing fence with text after it closes nothing (CommonMark), and the prose after it
    would show as code until the next fence."""
    opened = False
    wrong = []
    for number, line in enumerate(page.read_text(encoding="utf8").splitlines(), 1):
        fence = re.match(r"^ {0,3}(```|~~~)(.*)$", line)
        if fence is None:
            continue
        rest = fence.group(2).strip()
        if opened and rest:
            wrong.append(f"line {number}: a closing fence with text after it: {line!r}")
        elif not opened and " " in rest:
            wrong.append(f"line {number}: an info string of more than one word: {line!r}")
        if not (opened and rest):
            opened = not opened
    assert wrong == [] and not opened, (wrong, "a fence left open at the end")
