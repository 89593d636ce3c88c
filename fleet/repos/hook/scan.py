"""What the new commits of a push add, as the git door's hook reads them: the paths they
touch and the lines they add, from git's own diffs of them, and which of those lines the
redactor's credential shapes take for a secret.

git runs here as Fleetwarden's hook runs it, in the door repo with the pushed objects in
quarantine (the environment git gave the hook is passed on), with no attributes (so no
pushed ``.gitattributes`` can hide a file from the diff), no external diff and no textconv.
A merge's lines are those of its combined diff: what it adds beyond its parents, so content
it brings from an upstream branch is not taken for the agent's. Every read is capped — in
commits, in bytes of diff and in bytes scanned — and a push past a cap raises
:class:`TooBig`, never passes unscanned.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Final

from fleet.redaction.known import Span

MAX_COMMITS: Final = 5000
"""New commits one push may bring; past it the push is refused."""
MAX_PATCH_BYTES: Final = 128 * 1024 * 1024
"""Bytes of git's diff of the new commits read at most."""
MAX_SCAN_BYTES: Final = 32 * 1024 * 1024
"""Bytes of added lines scanned at most (code is scanned at some 3 MB a second)."""
SCAN_SECONDS: Final = 120.0
"""Seconds the secret scan of one push may take (text dense with secret-named keys is
scanned at some 0.5 MB a second)."""
BATCH_BYTES: Final = 1024 * 1024
GIT_TIMEOUT: Final = 300.0
_SHA: Final = re.compile(rb"[0-9a-f]{40}")
_HUNK: Final = re.compile(rb"^(@@+) (?:-\d+(?:,\d+)? )+\+(\d+)(?:,\d+)? @@")
_EMPTY_TREE: Final = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_DIFF: Final = (
    "-r",
    "--root",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)
NAMES_ARGS: Final = ("diff-tree", "--stdin", "-z", "-c", "--name-only", "--no-renames", *_DIFF)
PATCH_ARGS: Final = ("diff-tree", "--stdin", "-p", "-U0", "--cc", "-M", "--text", *_DIFF)
SpansOf = Callable[[str], Sequence[Span]]


@dataclass(frozen=True, slots=True)
class Added:
    """A line a new commit adds: where it is, and its text."""

    commit: str
    path: str
    line: int
    text: str


class TooBig(Exception):
    """A push past the scan's caps; the message says which."""


def added_lines(stream: Iterable[bytes], commits: frozenset[str]) -> Iterator[Added]:
    """The lines the commits add, read from ``git diff-tree --stdin -p -U0 --cc`` output:
    a merge's lines are those of its combined diff (what differs from every parent)."""
    commit = path = ""
    line = 0
    parents = 1
    in_hunk = False
    for raw in stream:
        if _SHA.fullmatch(raw.rstrip(b"\n")) and raw[:40].decode() in commits:
            commit, path, in_hunk = raw[:40].decode(), "", False
            continue
        if raw.startswith(b"diff "):
            path, in_hunk = "", False
            continue
        if not in_hunk:
            if raw.startswith(b"+++ "):
                path = _path(raw[4:])
            elif raw.startswith(b"@@"):
                in_hunk, line, parents = _hunk(raw)
            continue
        if raw.startswith(b"@@"):
            in_hunk, line, parents = _hunk(raw)
            continue
        marks = raw[:parents]
        if b"-" in marks or raw.startswith(b"\\"):
            continue
        if b"+" in marks and path:
            text = raw[parents:].rstrip(b"\n").decode("utf-8", errors="replace")
            yield Added(commit, path, line, text)
        line += 1


def _hunk(raw: bytes) -> tuple[bool, int, int]:
    match = _HUNK.match(raw)
    if match is None:
        return False, 0, 1
    return True, int(match[2]), len(match[1]) - 1


def _path(raw: bytes) -> str:
    name = raw.rstrip(b"\n").rstrip(b"\t").decode("utf-8", errors="replace")
    if name == "/dev/null":
        return ""
    if name.startswith('"b/'):
        return '"' + name[3:]
    return name.removeprefix("b/")


def find_secrets(added: Iterable[Added], spans_of: SpansOf) -> list[tuple[Added, str]]:
    """Each added line holding a credential, with the rule that found it (once per line),
    scanning at most :data:`MAX_SCAN_BYTES` for :data:`SCAN_SECONDS` (:class:`TooBig` past
    either)."""
    found: list[tuple[Added, str]] = []
    batch: list[Added] = []
    size = total = 0
    started = time.monotonic()
    for item in added:
        batch.append(item)
        size += len(item.text) + 1
        total += len(item.text) + 1
        if total > MAX_SCAN_BYTES:
            raise TooBig(
                f"it adds more than {MAX_SCAN_BYTES // 2**20} MiB of text, more than the "
                "door checks for secrets in one push"
            )
        if size >= BATCH_BYTES:
            found += _scan(batch, spans_of)
            batch, size = [], 0
            if time.monotonic() - started > SCAN_SECONDS:
                raise TooBig(f"checking it for secrets took over {SCAN_SECONDS:.0f} s")
    if batch:
        found += _scan(batch, spans_of)
    return found


def _scan(batch: list[Added], spans_of: SpansOf) -> list[tuple[Added, str]]:
    from fleet.redaction.invisible import visible

    texts = [
        a.text if a.text.isascii() and a.text.isprintable() else visible(a.text) for a in batch
    ]
    texts = [t.replace("\n", " ") for t in texts]
    starts: list[int] = []
    at = 0
    for text in texts:
        starts.append(at)
        at += len(text) + 1
    seen: set[int] = set()
    found: list[tuple[Added, str]] = []
    for span in sorted(spans_of("\n".join(texts))):
        index = bisect.bisect_right(starts, span.start) - 1
        if index not in seen:
            seen.add(index)
            found.append((batch[index], span.what))
    return found


def git_argv(*args: str) -> list[str]:
    """``git ARGS`` with no attributes read from anywhere."""
    program = shutil.which("git") or "/usr/bin/git"
    return [
        program,
        "--no-pager",
        "-c",
        "core.attributesFile=/dev/null",
        "-c",
        f"attr.tree={_EMPTY_TREE}",
        *args,
    ]


def run_git(*args: str, ok: Sequence[int] = (0,)) -> tuple[int, str]:
    """What ``git ARGS`` exits with and prints (``RuntimeError`` on a status not in ``ok``)."""
    ran = subprocess.run(git_argv(*args), capture_output=True, timeout=GIT_TIMEOUT, check=False)
    if ran.returncode not in ok:
        raise RuntimeError(f"git {args[0]} exited {ran.returncode}")
    return ran.returncode, ran.stdout.decode("utf-8", errors="replace")


def streamed(args: Sequence[str], stdin: IO[bytes], cap: int) -> Iterator[bytes]:
    """The lines ``git ARGS`` prints, at most ``cap`` bytes of them (:class:`TooBig`)."""
    proc = subprocess.Popen(git_argv(*args), stdin=stdin, stdout=subprocess.PIPE)
    timer = threading.Timer(GIT_TIMEOUT, proc.kill)
    timer.start()
    read = 0
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            read += len(raw)
            if read > cap:
                raise TooBig(f"its diff is over {cap // 2**20} MiB, more than the door checks")
            yield raw
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"git {args[0]} exited {proc.returncode}")


def new_commits(new: str) -> list[str]:
    """The commits ``new`` brings that no ref of this repo or of the mirror reaches."""
    _, out = run_git(
        "rev-list", "--max-count", str(MAX_COMMITS + 1), new, "--not", "--all", "--alternate-refs"
    )
    commits = out.split()
    if len(commits) > MAX_COMMITS:
        raise TooBig(f"it brings more than {MAX_COMMITS} new commits")
    return commits


def scan(
    commits: Sequence[str], ci: Callable[[str], bool] | None
) -> tuple[list[tuple[str, str]], list[tuple[Added, str]]]:
    """What ``commits`` do that the door refuses: the CI paths (those ``ci`` takes for CI)
    they touch (as ``(commit, path)``; none looked for when ``ci`` is None: the repository
    lets runs change CI), and their added lines that hold a secret, with the rule that
    found it."""
    if not commits:
        return [], []
    known = frozenset(commits)
    touched: list[tuple[str, str]] = []
    with tempfile.TemporaryFile() as listing:
        listing.write("".join(f"{c}\n" for c in commits).encode())
        if ci is not None:
            listing.seek(0)
            names = b"".join(streamed(NAMES_ARGS, listing, MAX_PATCH_BYTES))
            touched = _ci_touched(names, known, ci)
        listing.seek(0)
        patch = streamed(PATCH_ARGS, listing, MAX_PATCH_BYTES)
        finds = find_secrets(added_lines(patch, known), shapes())
    return touched, finds


def sent_before(commits: Sequence[str]) -> list[str]:
    """Those of ``commits`` this push did not bring: already in the repository's objects or
    the mirror's (outside the push's quarantine) though no branch of the line reaches them
    — the mirror's other branches, which a line may not merge."""
    if not commits:
        return []
    out = fed(
        ("cat-file", "--batch-check=%(objectname) %(objecttype)"), commits, without_quarantine()
    )
    there = out.decode("ascii", errors="replace").splitlines()
    return [line.split()[0] for line in there if line.endswith(" commit")]


def fed(args: Sequence[str], lines: Iterable[str], env: Mapping[str, str] | None = None) -> bytes:
    """What ``git ARGS`` prints with ``lines`` on its standard input, one a line
    (``RuntimeError`` when it fails); ``env``: another environment than this process's."""
    ran = subprocess.run(
        git_argv(*args),
        input="".join(f"{line}\n" for line in lines).encode(),
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=False,
        env=None if env is None else dict(env),
    )
    if ran.returncode != 0:
        raise RuntimeError(f"git {args[0]} exited {ran.returncode}")
    return ran.stdout


def without_quarantine() -> dict[str, str]:
    """The hook's environment as git sees objects outside the push's quarantine: the
    repository's own and the mirror's it borrows."""
    hidden = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")
    return {k: v for k, v in os.environ.items() if k not in hidden}


def foreign_parents(commits: Sequence[str]) -> list[tuple[str, str]]:
    """``(commit, parent)`` for each parent of the new ``commits`` that is neither one of
    them nor reached by this repository's own branches, and ``(commit, commit)`` for each
    of them this push did not bring (:func:`sent_before`): a merge with a commit the line
    never had — another branch's, the mirror's."""
    if not commits:
        return []
    old = sent_before(commits)
    if old:
        return [(commit, commit) for commit in old]
    new = set(commits)
    _, out = run_git("rev-list", "--no-walk", "--parents", *commits)
    found: list[tuple[str, str]] = []
    for line in out.splitlines():
        commit, *parents = line.split()
        for parent in parents:
            if parent in new:
                continue
            _, beyond = run_git("rev-list", "--max-count=1", parent, "--not", "--branches")
            if beyond.strip():
                found.append((commit, parent))
    return found


@functools.cache
def shapes() -> SpansOf:
    """The redactor's credential shapes (made once a process: the hook's is short-lived)."""
    from fleet.redaction.shapes import Shapes

    return Shapes().spans


def masked(text: str) -> str:
    """``text`` with every span the credential shapes take for a secret replaced by
    ``[secret]``: what the door says of a push never repeats one."""
    spans = sorted(shapes()(text), key=lambda s: s.start)
    out, at = [], 0
    for span in spans:
        if span.start >= at:
            out += [text[at : span.start], "[secret]"]
            at = span.end
    return "".join(out) + text[at:]


def _ci_touched(
    names: bytes, commits: frozenset[str], ci: Callable[[str], bool]
) -> list[tuple[str, str]]:
    commit = ""
    found: list[tuple[str, str]] = []
    for raw in names.split(b"\0"):
        text = raw.decode("utf-8", errors="replace")
        if text in commits:
            commit = text
        elif text and ci(text):
            found.append((commit, text))
    return found
