"""What the git door reads of each new commit object itself, whole: every header (author,
committer, and any other a commit was written with), every line of its message, with no
line or column cut — and what it refuses there besides secrets:

* an author or committer that is not the agent's own identity;
* a header git's ``commit`` never writes (one made with ``hash-object``), and a message
  in an encoding other than UTF-8 (the scan reads UTF-8; a forge shows it decoded);
* Fleetwarden's own trailers (``Fleetwarden-Run``, ``Fleetwarden-Agent``, any
  ``Fleetwarden-*``) stating anything but the truth of this line, and ``Co-authored-by``
  naming anyone but the run's requester — the lines Fleetwarden's own commits use to say
  who ran what;
* a reference to an issue or pull request other than the run's own (``#N``, ``GH-N``,
  ``owner/repo#N``, an issue's web address) — with or without a closing keyword, the forge
  links, and on a merge closes, what it names.

A commit object past :data:`MAX_COMMIT_BYTES` is refused as too big to check, never passed
unscanned. Everything read here is the agent's text: shown only through the hook's
``shown``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from fleet.repos.hook.policy import Issue, Policy
from fleet.repos.hook.scan import Added, TooBig, fed

MAX_COMMIT_BYTES: Final = 1024 * 1024
"""Bytes of one commit object (headers and message) the door reads whole."""
HEADERS: Final = frozenset({"tree", "parent", "author", "committer", "gpgsig", "gpgsig-sha256"})
"""The headers git's own ``commit`` writes (``encoding`` is taken for UTF-8 alone)."""
_PERSON: Final = re.compile(r"(?P<name>[^<>]*?) ?<(?P<email>[^<>]*)> \d+ [+-]\d{4}")
_TRAILER: Final = re.compile(r"[ \t]*(?P<key>[A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(?P<value>.*)")
_SLUG: Final = r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/(?!-/)[A-Za-z0-9._-]+)+"  # GitLab's: group/sub/…
_REFERENCE: Final = re.compile(
    r"(?:(?:https?://|www\.)[^\s/]+/(?P<url_slug>" + _SLUG + r")/(?:-/)?"
    r"(?:issues|pulls?|merge_requests)/(?P<url_n>\d+))"
    r"|(?<![\w/#.-])(?P<slug>" + _SLUG + r")[#!](?P<slug_n>\d+)"
    r"|(?<![\w/#.-])(?P<project>[A-Za-z0-9][A-Za-z0-9._-]*)[#!](?P<project_n>\d+)"
    r"|(?<![\w&#/])(?:[#!]|GH-)(?P<n>\d+)",
    re.IGNORECASE | re.ASCII,
)
"""A reference to an issue or a pull (merge) request: its address (GitHub's, Gitea's,
GitLab's ``/-/issues/N`` and ``/-/merge_requests/N``), ``owner/name#N`` (GitLab's
``group/sub/name!N`` too), GitLab's ``project#N`` (a project of the same group), or a
bare ``#N``, ``!N``, ``GH-N``."""
_LOOK_ALIKE: Final = re.compile(
    r"[ \t]*(?P<key>[^\s:]*[-\u2010-\u2015\u2212\ufe58\ufe63\uff0d][^\s:]*)[ \t]*[:\uff1a]"
)
"""A trailer-shaped line's key that is not plain ASCII (``Fleetwаrden-Run`` with a
Cyrillic a, a zero-width space, a Unicode hyphen): a reader takes it for the real one."""


@dataclass(frozen=True, slots=True)
class Breach:
    """One thing a commit says or is that the door refuses: ``kind`` (``identity``,
    ``header``, ``trailer``, ``reference``), and ``what`` in the agent's words, cut."""

    commit: str
    kind: str
    what: str


@dataclass(frozen=True, slots=True)
class Commit:
    """A commit object as the door reads it."""

    sha: str
    headers: list[tuple[str, str]]
    message: str

    def lines(self) -> list[Added]:
        """Every header and message line, as text the secret scan reads (no cut)."""
        out = [
            Added(self.sha, "(commit header)", n, f"{k} {v}")
            for n, (k, v) in enumerate(self.headers, start=1)
        ]
        out += [
            Added(self.sha, "(commit message)", n, line)
            for n, line in enumerate(self.message.split("\n"), start=1)
        ]
        return out


def read_commits(commits: Sequence[str]) -> Iterator[Commit]:
    """The objects of ``commits``, read with one ``git cat-file --batch``
    (:class:`TooBig` for one past :data:`MAX_COMMIT_BYTES`)."""
    if not commits:
        return
    out, at = fed(("cat-file", "--batch"), commits), 0
    for sha in commits:
        end = out.index(b"\n", at)
        parts = out[at:end].split()
        if len(parts) != 3 or parts[1] != b"commit":
            raise RuntimeError(f"{sha[:12]} is not a commit")
        size = int(parts[2])
        if size > MAX_COMMIT_BYTES:
            raise TooBig(
                f"commit {sha[:12]} is {size // 1024} KiB, more than the door reads of one "
                f"commit ({MAX_COMMIT_BYTES // 1024} KiB): write a shorter message"
            )
        yield parse(sha, out[end + 1 : end + 1 + size])
        at = end + 1 + size + 1


def parse(sha: str, raw: bytes) -> Commit:
    """A commit object's headers (continuation lines joined to theirs) and message."""
    text = raw.decode("utf-8", errors="replace")
    head, _, message = text.partition("\n\n")
    headers: list[tuple[str, str]] = []
    for line in head.split("\n"):
        if line.startswith(" ") and headers:
            key, value = headers[-1]
            headers[-1] = (key, value + "\n" + line[1:])
        else:
            key, _, value = line.partition(" ")
            headers.append((key, value))
    return Commit(sha, headers, message)


def breaches(commit: Commit, policy: Policy) -> list[Breach]:
    """What in ``commit`` the door refuses under ``policy`` (secrets aside)."""
    found: list[Breach] = []
    for key, value in commit.headers:
        if key in ("author", "committer"):
            found += _person(commit.sha, key, value, policy)
        elif key == "encoding":
            if value.strip().lower() not in ("utf-8", "utf8"):
                found.append(Breach(commit.sha, "header", f"a message in {value[:40]}"))
        elif key not in HEADERS:
            found.append(Breach(commit.sha, "header", f"an extra header {key[:40]!r}"))
    found += _trailers(commit, policy)
    found += _references(commit, policy)
    return found


def _person(sha: str, role: str, value: str, policy: Policy) -> list[Breach]:
    if policy.identity is None:
        return []
    match = _PERSON.fullmatch(value)
    who = (match["name"], match["email"]) if match else None
    if who == (policy.identity.name, policy.identity.email):
        return []
    said = f"{who[0]} <{who[1]}>" if who else value
    return [Breach(sha, "identity", f"its {role} is {said[:120]}")]


def _trailers(commit: Commit, policy: Policy) -> list[Breach]:
    found: list[Breach] = []
    for line in re.split(r"[\r\n\v\f\x85\u2028\u2029]", commit.message):
        odd = _LOOK_ALIKE.match(line)
        if odd is not None and not odd["key"].isascii():
            found.append(Breach(commit.sha, "trailer", f"a look-alike trailer {odd['key'][:40]!r}"))
            continue
        match = _TRAILER.fullmatch(line)
        if match is None:
            continue
        key, value = match["key"].lower(), match["value"].strip()
        if key == "co-authored-by":
            if value not in policy.co_authors:
                found.append(Breach(commit.sha, "trailer", f"Co-authored-by: {value[:120]}"))
        elif key == "fleetwarden-agent":
            if value != policy.agent or not policy.agent:
                found.append(Breach(commit.sha, "trailer", f"Fleetwarden-Agent: {value[:60]}"))
        elif key == "fleetwarden-run":
            if value not in policy.runs:
                found.append(Breach(commit.sha, "trailer", f"Fleetwarden-Run: {value[:60]}"))
        elif key.startswith("fleetwarden-"):
            found.append(Breach(commit.sha, "trailer", f"{match['key'][:40]}: {value[:60]}"))
    return found


def _references(commit: Commit, policy: Policy) -> list[Breach]:
    own = policy.own()
    return [
        Breach(commit.sha, "reference", f"names {match[0][:120]}")
        for match in _REFERENCE.finditer(commit.message)
        if not _is_own(match, own)
    ]


def _is_own(match: re.Match[str], own: Sequence[Issue]) -> bool:
    """Whether the reference ``match`` names one of ``own`` (a bare ``#N`` is the
    repository's own ``N``)."""
    slug = match["url_slug"] or match["slug"]
    number = int(match["url_n"] or match["slug_n"] or match["project_n"] or match["n"])
    project = match["project"]
    return any(
        number == mine.number
        and (slug is None or slug.lower() == mine.slug.lower())
        and (project is None or project.lower() == mine.slug.lower().rpartition("/")[2])
        for mine in own
    )


def _plain(match: re.Match[str]) -> str:
    """A reference said so that no forge links it: the number without ``#``, ``!`` or
    ``GH-``, an address as its repository and number."""
    if match["url_slug"]:
        return f"{match['url_slug']} issue {match['url_n']}"
    if match["slug"]:
        return f"{match['slug']} {match['slug_n']}"
    if match["project"]:
        return f"{match['project']} {match['project_n']}"
    bare = match[0]
    return bare[1:] if bare[0] in "#!" else f"{bare[:2]} {bare[3:]}"


def unreferenced(text: str, own: Sequence[Issue] = ()) -> str:
    """``text`` with every reference to an issue or pull request but ``own`` (the run's)
    made plain — ``Closes #12`` as ``Closes 12``, ``acme/other#3`` as ``acme/other 3`` —
    by the same rules the door refuses a commit by, so that nothing Fleetwarden writes on
    a base links, or on a merge closes, another issue."""
    for _ in range(4):  # a reference made plain cannot make another; checked regardless
        found = [m for m in _REFERENCE.finditer(text) if not _is_own(m, own)]
        if not found:
            return text
        for match in reversed(found):
            text = text[: match.start()] + _plain(match) + text[match.end() :]
    return text.replace("#", " ").replace("!", " ")
