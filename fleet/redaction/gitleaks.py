"""gitleaks' default rules (MIT; ``rules/gitleaks.toml``, vendored unchanged) run by Python.

gitleaks keeps a broad, maintained set of credential formats (some 220 services) as data:
for each rule a regex, the lowercase ``keywords`` a text must hold for the rule to be worth
running, a minimum Shannon ``entropy`` of the secret, and allow-lists of values that only
look like secrets. :class:`GitleaksRules` loads that file and runs it the way gitleaks'
detector does (``detect/detect.go``):

* a rule runs only where one of its keywords is (here: on the lines holding one, as the
  detect-secrets shapes do; a rule whose pattern can span lines runs on the whole text);
* the secret is the rule's ``secretGroup``, else its first non-empty group, else the
  match; a secret whose entropy is not above the rule's is dropped;
* the global and the rule's allow-lists (regexes on the secret, the match or the line;
  stopwords in the secret; ``AND`` conditions) drop what they allow. A path condition
  never holds: a chat message has no file path. One allowance of ours: the generic rule
  does not take a dotted attribute path (``api=route.api``) for a secret.

Rules that name a file path (they find files, not text) are left out. The patterns are Go
RE2: :mod:`fleet.redaction.re2` translates what differs; a rule that still does not compile
is left out and listed in :attr:`GitleaksRules.refused` with why.

Rules given as data are compiled when they are read, Python's warnings about a pattern
taken for errors (:func:`~fleet.redaction.re2.compile_re2`). The rules this package carries
are compiled one by one, the first time a text holds one of a rule's keywords: most texts
name few services, and compiling all ~220 would cost every start of Fleetwarden some 30 ms.
Those compile with no warnings filter (which is process-wide, and would be set in whatever
thread first redacts a text); that every one of them compiles, warnings taken for errors,
is a test of the package (``GitleaksRules().compile_all()`` refuses none).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from fleet.redaction.known import Span
from fleet.redaction.re2 import compile_re2, translate

RULES_FILE: Final = "rules/gitleaks.toml"
# A dotted attribute path (``route.api``, ``api=self.config.token``): what the generic rule most
# often takes for a value in code an agent shows.
_ATTRIBUTE: Final = re.compile(r"(?:[A-Za-z_]\w*=)?[A-Za-z_]+(?:\.[A-Za-z_]\w*)+", re.ASCII)
# A pattern that can match a line break: run on the whole text, not line by line.
_SPANS_LINES: Final = re.compile(r"\\n|\\r|\(\?[a-z]*s|\[\\s\\S|\\s\\S\]")


@dataclass(frozen=True, slots=True)
class Allowlist:
    """What a rule (or every rule) lets through: regexes on ``target`` (``secret``,
    ``match`` or ``line``), stopwords in the secret; all that are given, with ``both``."""

    regexes: tuple[re.Pattern[str], ...]
    target: str
    stopwords: tuple[str, ...]
    both: bool
    impossible: bool  # an AND condition on a file path: never holds for chat text

    def allows(self, secret: str, match: str, line: str) -> bool:
        if self.impossible:
            return False
        target = {"match": match, "line": line}.get(self.target, secret)
        checks = []
        if self.regexes:
            checks.append(any(r.search(target) is not None for r in self.regexes))
        if self.stopwords:
            lowered = secret.lower()
            checks.append(any(word in lowered for word in self.stopwords))
        return bool(checks) and (all(checks) if self.both else any(checks))


@dataclass(frozen=True, slots=True)
class Rule:
    """One gitleaks rule, as its file has it."""

    id: str
    regex: str  # Go RE2
    keywords: tuple[str, ...]
    entropy: float
    group: int
    allowlists: tuple[dict[str, Any], ...]
    whole_text: bool


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A rule's pattern and allow-lists, compiled."""

    pattern: re.Pattern[str]
    allowlists: tuple[Allowlist, ...]


class GitleaksRules:
    """gitleaks' rules, each compiled once (the module says when); :meth:`spans` finds
    their secrets in a text."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._strict = config is not None  # data given: compiled now, warnings as errors
        if config is None:
            config = tomllib.loads(
                resources.files("fleet.redaction").joinpath(RULES_FILE).read_text("utf-8")
            )
        self.refused: dict[str, str] = {}  # rule id → why it is left out
        self.rules: list[Rule] = []
        self._global_raw: dict[str, Any] = config.get("allowlist", {})
        self._global: tuple[Allowlist, ...] | None = None
        self._compiled: dict[str, _Compiled | None] = {}
        for raw in config.get("rules", []):
            self._add(raw)
        if self._strict:
            self.compile_all()
            self.rules = [rule for rule in self.rules if rule.id not in self.refused]
        self._by_keyword: dict[str, list[str]] = {}
        for rule in self.rules:
            for word in rule.keywords:
                self._by_keyword.setdefault(word, []).append(rule.id)
        self._keywords = Keywords(sorted(self._by_keyword))
        self._unkeyed = [rule for rule in self.rules if not rule.keywords]  # run on any text

    def _add(self, raw: dict[str, Any]) -> None:
        rule_id = str(raw.get("id", "?"))
        if "path" in raw or "regex" not in raw:
            self.refused[rule_id] = "it finds files by their path, not text"
            return
        self.rules.append(
            Rule(
                id=rule_id,
                regex=str(raw["regex"]),
                keywords=tuple(k.lower() for k in raw.get("keywords", [])),
                entropy=float(raw.get("entropy", 0.0)),
                group=int(raw.get("secretGroup", 0)),
                allowlists=tuple(raw.get("allowlists", [])),
                whole_text=_SPANS_LINES.search(raw["regex"]) is not None,
            )
        )

    def compile_all(self) -> dict[str, str]:
        """Every rule compiled now, Python's warnings about a pattern taken for errors
        (call it on one thread: the warnings filter is the process's): the rules left
        out, with why."""
        self._global = tuple(_allowlists([self._global_raw], compile_re2))
        for rule in self.rules:
            self._compile(rule, compile_re2)
        return self.refused

    def _compile(
        self, rule: Rule, compiling: Callable[[str], re.Pattern[str]] | None = None
    ) -> _Compiled | None:
        """``rule`` compiled, once; None (and listed in :attr:`refused`) if it cannot be."""
        if rule.id not in self._compiled:
            compiling = compiling or _compile_quietly
            try:
                compiled = _Compiled(
                    compiling(rule.regex), tuple(_allowlists(rule.allowlists, compiling))
                )
            except re.error as error:
                self.refused[rule.id] = f"Python's re cannot compile it: {error}"
                self._compiled[rule.id] = None
            else:
                self._compiled[rule.id] = compiled
        return self._compiled[rule.id]

    def spans(self, text: str, lowered: str) -> Iterator[Span]:
        """Every secret a rule finds in ``text`` (``lowered``: the text in lower case, of
        the same length)."""
        lines = self._keywords.lines(lowered)
        named = {rule for word in lines for rule in self._by_keyword[word]}
        for rule in self.rules if named else self._unkeyed:
            if not rule.keywords:
                yield from self._find(rule, text, 0)
                continue
            if rule.id not in named:
                continue
            starts = sorted({at for word in rule.keywords for at in lines.get(word, ())})
            if rule.whole_text:
                yield from self._find(rule, text, 0)
                continue
            for start in starts:
                end = text.find("\n", start)
                yield from self._find(rule, text[start : len(text) if end == -1 else end], start)

    def _find(self, rule: Rule, text: str, offset: int) -> Iterator[Span]:
        compiled = self._compile(rule)
        if compiled is None:
            return
        if self._global is None:
            self._global = tuple(_allowlists([self._global_raw], _compile_quietly))
        for match in compiled.pattern.finditer(text):
            found = match.group(0).strip("\n")
            if not found:
                continue
            start, end = match.start(), match.start() + len(found)
            if match.re.groups:
                group = rule.group or next(
                    (n for n in range(1, match.re.groups + 1) if match.group(n)), 0
                )
                if group and match.group(group) and match.end(group) <= end:
                    start, end = match.start(group), match.end(group)
            secret = text[start:end]
            if rule.entropy and entropy(secret) <= rule.entropy:
                continue
            line = _line_at(text, match.start())
            if any(a.allows(secret, found, line) for a in (*self._global, *compiled.allowlists)):
                continue
            if rule.id.startswith("generic") and _ATTRIBUTE.fullmatch(secret):
                continue  # ours: code (``api=route.api``), not a value
            yield Span(offset + start, offset + end, rule.id)


class Keywords:
    """Finds every keyword of a set in a text in one pass: a regex made from their trie
    (one branch per common prefix, tried at each position through a lookahead), then the
    trie walked where it matched, for every keyword starting there. ~0.3 s per MB for
    gitleaks' ~400 keywords, where ``str.find`` once per keyword takes twice that."""

    def __init__(self, words: Sequence[str]) -> None:
        self._trie: dict[str, Any] = {}
        for word in words:
            node = self._trie
            for char in word:
                node = node.setdefault(char, {})
            node[""] = {}
        self._scan = re.compile(f"(?={_trie_regex(self._trie)})") if words else None

    def lines(self, lowered: str) -> dict[str, list[int]]:
        """For each keyword in ``lowered``, where each line holding it starts."""
        found: dict[str, list[int]] = {}
        if self._scan is None:
            return found
        for hit in self._scan.finditer(lowered):
            at = end = hit.start()
            node: dict[str, Any] | None = self._trie
            line = -1
            while node is not None:
                if "" in node:
                    if line < 0:
                        line = lowered.rfind("\n", 0, at) + 1
                    starts = found.setdefault(lowered[at:end], [])
                    if not starts or starts[-1] != line:
                        starts.append(line)
                node = node.get(lowered[end]) if end < len(lowered) else None
                end += 1
        return found


def _trie_regex(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + _trie_regex(rest) for char, rest in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 and "" not in node else f"(?:{'|'.join(branches)})"
    return body + ("?" if "" in node else "")


def _line_at(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return text[start : len(text) if end == -1 else end]


def _compile_quietly(pattern: str) -> re.Pattern[str]:
    """``pattern`` (Go RE2) compiled as :func:`~fleet.redaction.re2.compile_re2` does, but
    with no warnings filter: for the rules this package carries, which compile without."""
    return re.compile(translate(pattern), re.ASCII)


def _allowlists(
    raws: Sequence[dict[str, Any]], compiling: Callable[[str], re.Pattern[str]]
) -> Iterator[Allowlist]:
    for raw in raws:
        both = str(raw.get("condition", "OR")).upper() == "AND"
        yield Allowlist(
            regexes=tuple(compiling(r) for r in raw.get("regexes", [])),
            target=str(raw.get("regexTarget", "secret")),
            stopwords=tuple(str(w).lower() for w in raw.get("stopwords", [])),
            both=both,
            impossible=both and bool(raw.get("paths")),
        )


def entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character, as gitleaks computes it."""
    if not text:
        return 0.0
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())
