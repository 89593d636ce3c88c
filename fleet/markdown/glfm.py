"""GitLab Flavored Markdown's references as GitLab finds them in a text: :func:`references`
says where a text names an issue, a merge request, a label, a milestone, a snippet, an
epic, an iteration, a vulnerability (and the other ``[kind:…]`` forms) or a project, but
the run's own issue and merge request; :func:`live` lists what a text node of rendered
HTML holds that GitLab would link or notify.

GitLab applies each model's ``reference_pattern`` (gitlabhq's ``app/models/*``, through
``lib/banzai/filter/references/*``) to every text node outside ``pre``, ``code`` and
``a``. Unlike GitHub's, its patterns need no word boundary: ``x#5`` names issue 5 of the
project ``x`` beside this one (the shortcut inside a namespace), ``group/sub/project!5`` a
merge request of another project, ``~bug`` a label, ``%v1.2`` and ``%"next release"`` a
milestone, ``$5`` a snippet, ``&5`` an epic, ``^alert#5`` an alert, ``*iteration:5`` an
iteration, ``[vulnerability:5]`` a vulnerability, ``GL-5`` an issue, ``group/project>`` a
project. Each starts at a sigil; the sigil and what follows it is what :func:`references`
reports, with the path before it (``acme/app#7``), so that the whole reads as one code
span once defused. A reference is only as live as its sigil: one in a code span leaves
the words around it plain text, whatever they are.

The run's own numbers: ``own`` for the issue namespace (``#N``, ``GL-N``), ``pulls`` for
the merge requests' (``!N``; GitLab numbers them apart from issues). Only a bare reference
is the run's own: ``x#5`` is another project's. Mentions (``@user``, ``@group/sub``,
``@all``) are :func:`fleet.markdown.live_markdown.mentions`'s.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final, NamedTuple

REFERENCE_CHARS: Final = frozenset("$%#&@!~^:")
"""The characters GitLab keeps apart when they are escaped (``\\#5`` names nothing):
``REFERENCE_CHARS`` of gitlabhq's ``lib/banzai/filter/markdown_engines/glfm_markdown.rb``,
its ``only_escape_chars``."""
KINDS: Final = (
    "vulnerability", "feature_flag", "work_item", "issue", "epic", "cadence", "contact",
    "wiki_page", "iteration",
)  # fmt: skip
"""The ``[kind:…]`` references GitLab links (its docs' table of references)."""
_SIGIL: Final = re.compile(
    r"(?P<number>[#!$&])[0-9]"  # an issue, a merge request, a snippet, an epic (^alert#N)
    r"|~"  # a label
    r"|%"  # a milestone
    r"|\*iteration:"
    r"|\[(?:" + "|".join(KINDS) + r"):"
    r"|(?<![A-Za-z0-9])GL-(?=[0-9])"  # an issue, GitLab's other way to write it
    r"|(?<=[\w.-])>",  # a project: group/project>
    re.ASCII | re.IGNORECASE,
)
_DIGITS: Final = re.compile(r"[0-9]+")
_LABEL: Final = re.compile(r"[\w?.&-][\w?.&:-]*", re.ASCII)
_MILESTONE: Final = re.compile(r"[^\s\"<]+", re.ASCII)  # Ruby's \s: ASCII spaces only
_SHOWN: Final = re.compile(r"[^\s\"<>`*_~\[\]()!\\]*")  # of a name, what reads as it
_WORD: Final = re.compile(r"\w")  # any letter: Ruby's word boundary is no wider
_NUMBER: Final = re.compile(r"[0-9]{1,18}")
_PATH_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_PATH_ROOM: Final = 100  # characters of a project's path looked back at
MENTION: Final = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_.]", re.ASCII)
"""Where GitLab's user pattern starts a mention (``(?<!\\w)@`` and a path's first
character)."""


class Found(NamedTuple):
    """A reference in a text: where it starts (its path's start), where its sigil is (the
    character that makes it one: ``#``, ``~``, ``[``…), where it ends."""

    start: int
    sigil: int
    end: int


def references(
    text: str,
    own: Collection[int] = (),
    pulls: Collection[int] | None = None,
    *,
    written: bool = False,
) -> list[Found]:
    """Where ``text`` holds a GitLab reference, but a bare one to ``own`` (``#N``,
    ``GL-N``) or to ``pulls`` (``!N``; ``None``: ``own`` again, one namespace), its path
    and its name with it, in order. ``written``: ``text`` is markdown as written, where two
    tildes (``~~gone~~``) strike through rather than name a label (if they do not, the
    rendered check finds it)."""
    mine = own if pulls is None else pulls
    found: list[Found] = []
    at = 0
    while (sigil := _SIGIL.search(text, at)) is not None:
        at = sigil.end()
        if written and sigil[0] == "~" and _struck(text, sigil.start()):
            continue
        end = _end(text, sigil)
        if end is None:
            continue
        start, qualified = _path(text, sigil.start())
        if sigil[0] == ">" and "/" not in text[start : sigil.start()]:
            continue
        if not qualified and _own(text, sigil, end, own, mine):
            continue
        if found and start < found[-1].end:
            found[-1] = found[-1]._replace(end=max(found[-1].end, end))
        else:
            found.append(Found(start, sigil.start(), end))
        at = max(at, end)
    return found


def live(node: str, own: Collection[int] = (), pulls: Collection[int] | None = None) -> list[str]:
    """What in ``node`` (the text of one rendered HTML text node, outside code and links)
    GitLab would link or notify: its references but the run's own, its mentions."""
    found = [node[ref.start : ref.end][:40] for ref in references(node, own, pulls)]
    return found + [f"a mention ({m[0]})" for m in MENTION.finditer(node)]


def names_one(address: str) -> bool:
    """Whether ``address`` (a link's, unquoted) is one reference as a whole: GitLab makes
    a link to ``#5`` or ``~bug`` a reference."""
    found = references(address)
    whole = bool(found) and (found[0].start, found[0].end) == (0, len(address))
    return whole or MENTION.match(address) is not None


def _struck(text: str, at: int) -> bool:
    """Whether the ``~`` at ``at`` ends a run of exactly two (``~~gone~~``): strikethrough's."""
    return text[at - 1 : at] == "~" and text[at - 2 : at - 1] != "~"


def _end(text: str, sigil: re.Match[str]) -> int | None:
    """Where the reference whose sigil ``sigil`` found ends (its name shown with it); None
    when what follows names nothing."""
    mark, end = sigil[0], sigil.end()
    if sigil["number"] is not None or mark.upper() == "GL-":
        digits = _DIGITS.match(text, end if mark.upper() == "GL-" else sigil.start() + 1)
        return None if digits is None else digits.end()
    if mark == "~":  # ~bug, ~"feature request", ~"scope::value", ~5
        if text.startswith('"', end):  # on its line
            close = text.find('"', end + 2, _line_end(text, end))
            return close + 1 if close >= 0 else None
        label = _LABEL.match(text, end)
        name = "" if label is None else label[0].rstrip(".?:")
        return end + len(name) if name else None
    if mark == "%" or mark.startswith("*"):  # %5, %v1.2, %"next release", *iteration:5
        if text.startswith('"', end):  # a quoted name may run over lines
            close = text.find('"', end + 2)
            return close + 1 if close >= 0 else None
        run = _MILESTONE.match(text, end)
        if mark.startswith("*"):
            return end if run is None else end + len(run[0])
        if run is None or not _WORD.search(run[0]):
            return None
        shown = _SHOWN.match(text, end)
        return end + len(shown[0].rstrip(".,:;?")) if shown else end
    if mark.startswith("["):  # [vulnerability:5]: the words inside the brackets
        close = text.find("]", end, _line_end(text, end))
        return close if close >= 0 else None
    return end  # a project: group/project>


def _line_end(text: str, at: int) -> int:
    """Where the line holding ``at`` ends."""
    end = text.find("\n", at)
    return len(text) if end < 0 else end


def _path(text: str, at: int) -> tuple[int, bool]:
    """Where the path of a project or group before the sigil at ``at`` starts (``at``:
    none), and whether there is one — then the reference is another project's. A
    project's own reference (``group/project>``) is its path: it starts there too."""
    start = at
    floor = max(at - _PATH_ROOM, 0)
    while start > floor and (text[start - 1] in _PATH_CHARS or text[start - 1] == "/"):
        start -= 1
    while start < at and text[start] in "/_":  # "_" may be emphasis there: it stays out
        start += 1
    if text.startswith("[", at):  # [kind:…]: the words inside, the brackets outside
        return at + 1, False
    qualified = at > 0 and text[at - 1] in _PATH_CHARS
    return (start if qualified else at), qualified


def _own(
    text: str, sigil: re.Match[str], end: int, own: Collection[int], pulls: Collection[int]
) -> bool:
    """Whether the bare reference at ``sigil`` is to the run's own issue or merge request."""
    if sigil[0][0] in "#!":
        first = sigil.start() + 1
    elif sigil[0].upper() == "GL-":
        first = sigil.end()
    else:
        return False
    digits = _NUMBER.fullmatch(text, first, end)
    return digits is not None and int(digits[0]) in (pulls if sigil[0][0] == "!" else own)
