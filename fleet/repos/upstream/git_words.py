"""Git's refusals of an upstream, in Fleetwarden's own words: what went wrong, with which
repository and which credential, and the fix.

Git says "could not read Username for 'https://…': terminal prompts disabled" when the
upstream refused the token, and ends "…and the repository exists." when a path is wrong.
:func:`upstream_refused` reads git's stderr (:func:`kind_of`) and answers in one line that
names the repository, its url, the environment variable the config reads its credential
from — never the value — and what to do. :func:`no_branch` lists (a bounded number of) the
branches an upstream has when one named is not there, :func:`branch_not_ours` refuses to
reuse an upstream branch Fleetwarden did not push.

Everything here is pure: the caller says which upstream
(:class:`~fleet.repos.upstream.named.Upstream`) and what it was doing; git's words are the
upstream's (a remote's ``remote:`` lines are its text), quoted as another's
(:func:`fleet.redaction.guard.quote`: one line, :data:`QUOTED` characters at most, escaped
whole in chat) wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal
from urllib.parse import urlsplit

from fleet.redaction.guard import quote
from fleet.repos.upstream.named import Credential, Loc, Upstream
from fleet.repos.urls import url_kind

GUIDE: Final = "docs/repos.md"
QUOTED: Final = 200
"""Characters of git's (or the upstream's) own words quoted at most."""
BRANCHES_SHOWN: Final = 10
"""Branches an upstream has that a message lists at most (then how many more)."""

Doing = Literal["read", "fetch", "push"]


class Kind(Enum):
    """What git's refusal was about."""

    CREDENTIAL = "credential"  # 401, no or a wrong token, ssh publickey refused
    FORBIDDEN = "forbidden"  # 403: the credential may not do this
    NOT_FOUND = "not found"  # no repository there (or none this credential may see)
    UNREACHABLE = "unreachable"  # no name, no route, nothing listening
    TLS = "tls"  # a certificate this machine does not trust
    HOST_KEY = "host key"  # an ssh host key not known (or changed)
    SERVER = "server"  # a 5xx
    TIMEOUT = "timeout"  # Fleetwarden's own time limit
    NON_FAST_FORWARD = "non-fast-forward"  # the upstream's ref has commits the push lacks
    REMOTE_REJECTED = "remote rejected"  # the upstream's own rule (a hook, a protection)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Said:
    """A refusal in Fleetwarden's words: ``text``, the :class:`Kind`, and ``loc``, the
    config key the fix is about (for ``check-config``'s file:line)."""

    text: str
    kind: Kind
    loc: Loc


# --- Reading git's words -----------------------------------------------------------------

_PATTERNS: Final[tuple[tuple[Kind, re.Pattern[str]], ...]] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (Kind.NON_FAST_FORWARD, r"\[rejected\].*\((?:non-fast-forward|fetch first)\)"),
        (Kind.REMOTE_REJECTED, r"\[remote rejected\]"),
        (Kind.TIMEOUT, r"took longer than \d+ s"),
        (Kind.HOST_KEY, r"host key verification failed|remote host identification has changed"),
        (Kind.TLS, r"ssl certificate problem|certificate verification failed|"
                   r"certificate verify failed|gnutls_handshake|ssl_error|ssl routines"),
        (Kind.CREDENTIAL, r"could not read (?:username|password)|authentication failed|"
                          r"returned error: 401|permission denied \(publickey|"
                          r"permission denied, please try again|invalid username or password|"
                          r"http basic: access denied"),
        (Kind.FORBIDDEN, r"returned error: 403|permission to \S+ denied|"
                         r"write access to repository not granted"),
        (Kind.NOT_FOUND, r"repository '[^']*' not found|does not appear to be a git repository|"
                         r"repository not found|returned error: 404"),
        (Kind.UNREACHABLE, r"could not resolve host|failed to connect to|couldn't connect|"
                           r"connection refused|connection timed out|operation timed out|"
                           r"network is unreachable|no route to host|connection reset"),
        (Kind.SERVER, r"returned error: 5\d\d"),
    )
)  # fmt: skip
_ACCESS: Final = re.compile(r"unable to access '[^']*': (?P<why>.+)", re.IGNORECASE)
_SSH: Final = re.compile(r"^ssh: (?P<why>.+)$", re.IGNORECASE | re.MULTILINE)
_STATUS: Final = re.compile(r"returned error: (?P<code>\d{3})")
_REMOTE_REJECTED: Final = re.compile(r"\[remote rejected\]\s+\S+\s+->\s+\S+\s+\((?P<why>[^)]*)\)")
_BOILERPLATE: Final = (
    "please make sure you have the correct access rights",
    "and the repository exists.",
    "could not read from remote repository.",
    "error: failed to push some refs",
)
_PUSHED_TO: Final = re.compile(r"^to \S+$", re.IGNORECASE)  # "To https://…": where it went


def kind_of(stderr: str) -> Kind:
    """Which refusal git's ``stderr`` is."""
    for kind, pattern in _PATTERNS:
        if pattern.search(stderr):
            return kind
    return Kind.OTHER


def gist(stderr: str) -> str:
    """Git's own words that matter, on one line: the first ``fatal:`` or ``error:`` line
    (else the first line that is no hint and no boilerplate), its prefix dropped."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    kept = [
        line
        for line in lines
        if not line.lower().startswith(("hint:", "remote:"))
        and not line.lower().startswith(_BOILERPLATE)
        and not _PUSHED_TO.match(line)
        and "askpass" not in line.lower()
    ]
    chosen = next((line for line in kept if line.lower().startswith(("fatal:", "error:"))), None)
    if chosen is None:
        chosen = kept[0] if kept else (lines[0] if lines else "")
    for prefix in ("fatal: ", "error: "):
        if chosen.lower().startswith(prefix):
            chosen = chosen[len(prefix) :]
    return chosen


def _remote_words(stderr: str) -> str:
    """What the upstream itself said (its ``remote:`` lines), on one line."""
    said = [
        line.strip()[len("remote:") :].strip()
        for line in stderr.splitlines()
        if line.strip().lower().startswith("remote:")
    ]
    return " ".join(part for part in said if part)


def _reason(stderr: str) -> str:
    """Why an upstream could not be reached, as git or ssh said it."""
    found = _ACCESS.search(stderr) or _SSH.search(stderr)
    return quote(found["why"] if found else gist(stderr), QUOTED)


# --- Saying it -----------------------------------------------------------------------------


def upstream_refused(
    stderr: str,
    where: Upstream,
    *,
    doing: Doing,
    ref: str | None = None,
    agent: str | None = None,
    path_exists: bool | None = None,
) -> Said:
    """Git's refusal (``stderr``) of ``where`` while ``doing`` — reading its branches,
    fetching, or pushing ``ref`` (the branch of ``agent``'s line, or, without ``agent``,
    a base Fleetwarden merged into) — in Fleetwarden's words, with the fix.
    ``path_exists`` says whether a local upstream's path is there at all."""
    kind = kind_of(stderr)
    repo, url, credential = where.repo, where.url, where.credential
    them = f"the upstream of {repo} ({url})"
    branch = (ref or "").removeprefix("refs/heads/")
    url_loc: Loc = ("repos", repo, "url")
    if kind is Kind.CREDENTIAL:
        return Said(_credential_refused(them, where), kind, credential.loc)
    if kind is Kind.FORBIDDEN:
        if doing == "push":
            text = (
                f"{them} lets {credential.words} read it but not push to it: give that "
                "credential write access to the repository's contents, then restart "
                "Fleetwarden if it is a new one"
            )
        else:
            text = _credential_refused(them, where)
        return Said(text, kind, credential.loc)
    if kind is Kind.NOT_FOUND:
        return Said(_not_found(where, path_exists), kind, url_loc)
    if kind is Kind.UNREACHABLE:
        text = (
            f"cannot reach the upstream of {repo} at {url} (git says {_reason(stderr)}). "
            f"Check repos.{repo}.url, and that this machine reaches that host"
        )
        return Said(text, kind, url_loc)
    if kind is Kind.TLS:
        text = (
            f"{them} shows a TLS certificate this machine does not trust (git says "
            f"{_reason(stderr)}): fix the server's certificate, or add the CA that signed it "
            "to this machine's trust store"
        )
        return Said(text, kind, url_loc)
    if kind is Kind.HOST_KEY:
        host = _host(url)
        text = (
            f"the ssh host key of {host} is not known to Fleetwarden's user, or has changed "
            f"(git says {quote(gist(stderr), QUOTED)}): check it, then add it (ssh-keyscan "
            f"{host} >> ~/.ssh/known_hosts, as the user Fleetwarden runs as)"
        )
        return Said(text, kind, url_loc)
    if kind is Kind.SERVER:
        code = _STATUS.search(stderr)
        status = code["code"] if code else "5xx"
        text = f"{them} answered {status}, an error of its own: try again later"
        return Said(text, kind, url_loc)
    if kind is Kind.TIMEOUT:
        text = (
            f"{them} did not answer in time (git says {quote(gist(stderr), QUOTED)}): check "
            "the network, then try again"
        )
        return Said(text, kind, url_loc)
    if kind is Kind.NON_FAST_FORWARD:
        return Said(_not_fast_forward(where, branch, agent), kind, ("repos", repo))
    if kind is Kind.REMOTE_REJECTED:
        found = _REMOTE_REJECTED.search(stderr)
        checked_out = _checked_out(them, url, branch, found["why"] if found else "")
        if checked_out is not None:
            return Said(checked_out, kind, ("repos", repo))
        why = quote(found["why"] if found else "refused", QUOTED)
        said = _remote_words(stderr)
        upstream = f"; the upstream says {quote(said, QUOTED)}" if said else ""
        text = (
            f"{them} refused the push to {branch or 'its branch'} by a rule of its own "
            f"(git says {why}{upstream}): change that rule there (a protected branch, a "
            "hook), or land the change through a pull request"
        )
        return Said(text, kind, ("repos", repo))
    verb = {"read": "read", "fetch": "fetched", "push": "pushed to"}[doing]
    words = gist(stderr)
    said = f"git says {quote(words, QUOTED)}" if words else "git gave no reason"
    return Said(f"{them} could not be {verb}: {said}", kind, url_loc)


def _checked_out(them: str, url: str, branch: str, why: str) -> str | None:
    """The words for a push refused because the upstream is a repository with a working
    tree that has the branch checked out (``init``'s own, or one made by hand), with the
    fix that applies there; ``None`` for any other refusal."""
    branch = branch or "its branch"
    local = "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url)
    where = (
        f"`git -C {url} config receive.denyCurrentBranch updateInstead`"
        if local
        else ("`git config receive.denyCurrentBranch updateInstead` in it")
    )
    if why == "branch is currently checked out":
        return (
            f"{them} is a repository with a working tree that has {branch} checked out, and "
            f"git refuses a push to a checked-out branch: run {where} (a push then updates "
            "that working tree, while it has no uncommitted changes), or make the upstream a "
            "bare repository (`git clone --bare`)"
        )
    if why in ("Working directory has staged changes", "Working directory has unstaged changes"):
        state = why.removeprefix("Working directory has ")
        return (
            f"{them} has {branch} checked out with {state} in its working tree, so git will "
            f"not move it under them: commit or put those changes aside there (`git -C {url} "
            "status` shows them), then merge again"
        )
    return None


def _credential_refused(them: str, where: Upstream) -> str:
    credential = where.credential
    repo = where.repo
    if credential.kind == "token":
        return (
            f"{them} refused Fleetwarden's credential: {credential.words} is wrong, has "
            f"expired, or may not reach {repo}. Put a token that may read and push {repo} in "
            f"{credential.variable}, then restart Fleetwarden (it reads the variable at start)"
        )
    if credential.kind == "app":
        return (
            f"{them} refused {credential.words}: install the App on that repository with "
            "contents read and write"
        )
    if credential.kind in ("ssh_key", "ssh"):
        return (
            f"{them} refused {credential.words}: add its public key to the repository (a "
            f"deploy key with write access), or name another with repos.{repo}.ssh_key"
        )
    return (
        f"{them} asks for a credential, and the config gives it none: set "
        f"repos.{repo}.token_env to the name of a variable holding a token that may read and "
        f"push it (see {GUIDE})"
    )


def _not_found(where: Upstream, path_exists: bool | None) -> str:
    repo, url = where.repo, where.url
    if url_kind(url) == "local":
        if path_exists is False:
            return (
                f"the url of repository {repo}, {url}, does not exist on this machine: set "
                f"repos.{repo}.url to the path of a git repository (a relative path is read "
                "from the config file's directory)"
            )
        return (
            f"the url of repository {repo}, {url}, is not a git repository: set "
            f"repos.{repo}.url to the top of one (a bare repository, or a clone's top directory)"
        )
    hidden = ""
    if where.credential.kind in ("token", "app"):
        hidden = (
            f", or {where.credential.words} may not see it (a forge answers a private "
            "repository it may not see as not found)"
        )
    return (
        f"there is no repository at {url} (repos.{repo}.url){hidden}: check the url, and "
        "the repositories the credential reaches"
    )


def local_path_problem(repo: str, url: str, *, exists: bool, is_repository: bool) -> str | None:
    """What is wrong with a local upstream's path (read without git), or ``None``."""
    if url_kind(url) != "local" or (exists and is_repository):
        return None
    where = Upstream(repo, url, Credential("local", "", ("repos", repo, "url")))
    return _not_found(where, exists)


def _not_fast_forward(where: Upstream, branch: str, agent: str | None) -> str:
    repo = where.repo
    if agent is None:
        return (
            f"{branch or 'the branch'} moved on the upstream of {repo} while Fleetwarden "
            "was landing this: nothing was changed there; merge again, which fetches it anew"
        )
    return (
        f"the upstream of {repo} already has a branch {branch} with commits {agent}'s "
        "branch does not have: it is not Fleetwarden's to overwrite, and nothing was "
        f"pushed. `spawn {agent} --fresh` starts a new branch under a name the upstream does "
        f"not have; or, if that upstream branch is yours to drop, delete it there and "
        f"`push {agent}` again"
    )


def no_branch(where: Upstream, branch: str, have: Sequence[str], *, key: str) -> Said:
    """``where`` has no branch ``branch`` (named by the config's or a command's ``key``):
    the branches it has, :data:`BRANCHES_SHOWN` at most, and the fix."""
    listed = sorted(have)
    if not listed:
        has = "it has no branch at all yet (push one there first)"
    else:
        shown = quote(", ".join(listed[:BRANCHES_SHOWN]), 100 * BRANCHES_SHOWN)
        more = len(listed) - BRANCHES_SHOWN
        has = f"it has {shown}" + (f" and {more} more" if more > 0 else "")
    fix = (
        f"set repos.{where.repo}.default_branch to one it has"
        if key == "default_branch"
        else f"name one it has ({key})"
    )
    text = f"the upstream of {where.repo} ({where.url}) has no branch {branch}: {has}; {fix}"
    return Said(text, Kind.NOT_FOUND, ("repos", where.repo, "default_branch"))


def branch_not_ours(where: Upstream, branch: str, agent: str) -> str:
    """The upstream has ``branch`` already, at a commit that is not one of ``agent``'s
    line's: pushing there would take over a branch Fleetwarden did not make."""
    return (
        f"the upstream of {where.repo} already has a branch {branch} that Fleetwarden did "
        f"not push: it will not take it over, and nothing was pushed. `spawn {agent} --fresh` "
        "starts a new branch under a name the upstream does not have; or, if that upstream "
        f"branch is yours to drop, delete it there and `push {agent}` again"
    )


def sentences(note: str) -> str:
    """``note`` — Fleetwarden's words, a full stop, then one of this module's messages,
    which start in lower case to follow a colon (``app's behind counts are as of …. the
    upstream of app …``) — with that message begun as the sentence it is there. Only the
    first letter after the first full stop changes: git's quoted words stay as they were."""
    head, stop, rest = note.partition(". ")
    if not stop or not rest[:1].islower():
        return note
    return f"{head}{stop}{rest[:1].upper()}{rest[1:]}"


def _host(url: str) -> str:
    if "://" in url:
        return urlsplit(url).hostname or url
    return url.partition("@")[2].partition(":")[0] or url
