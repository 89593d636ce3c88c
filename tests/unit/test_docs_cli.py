"""The shell commands the guides write are the CLI's own: every ``fleetwarden VERB`` in a
code block or span of README.md and docs/*.md is a verb (and sub-verb) the parser knows,
and no code span spells a verb's words apart (`config check` for `check-config`)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bot.cli.parser import command_line

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")  # a span may break across one line
_INVOCATION = re.compile(r"(?:^|[\s/(])fleetwarden((?:[ \t]+[^\s|;&)`]+)*)")


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _code(text: str) -> list[str]:
    """Every code block and span of a page, spans first joined onto one line."""
    blocks = [match.group(0) for match in _FENCE.finditer(text)]
    prose = _FENCE.sub("", text)
    spans = [" ".join(match.group(1).split()) for match in _SPAN.finditer(prose)]
    return [*blocks, *spans]


def _wrong_invocations(code: str, parser: argparse.ArgumentParser) -> list[str]:
    wrong = []
    for match in _INVOCATION.finditer(code):
        words = match.group(1).split()
        level = parser
        for depth, word in enumerate(words):
            verbs = _verbs(level)
            if (
                word in ("…", "...")
                or not verbs
                or word.startswith("-")
                or (depth and not re.fullmatch(r"[a-z-]+", word))
            ):
                break
            if word not in verbs:
                wrong.append(f"fleetwarden {' '.join(words[: depth + 1])}")
                break
            level = verbs[word]
    return wrong


def _all_verbs(parser: argparse.ArgumentParser) -> list[str]:
    found = []
    for name, sub in _verbs(parser).items():
        found.append(name)
        found.extend(_all_verbs(sub))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_fleetwarden_verb_a_guide_writes_is_the_clis(page: Path) -> None:
    """A guide's `fleetwarden VERB [SUB]` names a verb the CLI parser has."""
    parser = command_line()
    wrong = [bad for code in _code(page.read_text()) for bad in _wrong_invocations(code, parser)]
    assert not wrong, f"{page.name} writes commands the CLI has not: {sorted(set(wrong))}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_no_guide_spells_a_verb_s_words_apart(page: Path) -> None:
    """`config check` (either order, space for hyphen) is written `check-config`."""
    pairs = [verb.split("-") for verb in _all_verbs(command_line()) if verb.count("-") == 1]
    spans = _code(page.read_text())
    wrong = [
        f"{' '.join(words)} (the verb is {'-'.join(pair)})"
        for pair in pairs
        for words in (pair, pair[::-1])
        for span in spans
        if re.search(rf"(?<![\w-]){words[0]} {words[1]}(?![\w-])", span)
    ]
    assert not wrong, f"{page.name}: {sorted(set(wrong))}"


def test_the_checks_catch_what_they_are_for() -> None:
    """The checks see an unknown verb, an unknown sub-verb and a span broken across lines."""
    parser = command_line()
    assert _wrong_invocations("$ fleetwarden config check --config x.yaml", parser) == [
        "fleetwarden config"
    ]
    assert _wrong_invocations("fleetwarden hosts trsut box2", parser) == ["fleetwarden hosts trsut"]
    assert _wrong_invocations("fleetwarden hosts trust box2 --config f.yaml", parser) == []
    assert _code("see (`config\ncheck` names it)") == ["config check"]
