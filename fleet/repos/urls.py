"""An upstream's url as Fleetwarden reads it: what kind it is (:func:`url_kind`: https,
http, ssh or a path on this machine), why one is refused (:func:`url_problem`), and which
credential each kind takes (:func:`credential_problem`). A credential written in a url is
never taken: it belongs in the variable ``token_env`` names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from fleet.redaction.shapes import credential_shaped

_NOT_A_PATH = re.compile(r"[^/]*:")  # a scheme, or git's host:path
#: git's scp-like ``USER@HOST:PATH``
SCP_URL = re.compile(r"(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^\s]+)")


def is_relative_path(url: str) -> bool:
    """Whether ``url`` is a relative path (or ``~/…``) as git reads one: no scheme, and no
    ``:`` before its first ``/`` (``host:path`` is ssh to git)."""
    return bool(url) and not url.startswith("/") and _NOT_A_PATH.match(url) is None


def split_problem(url: str, what: str) -> tuple[SplitResult | None, str | None]:
    """``url`` split, or why it is refused whatever its kind: a netloc that is not plain
    ASCII (``＠`` reads as ``@`` once normalised, as the resolver would read it) or any
    part shaped like a credential (a token in the path, the query or the fragment), in
    words that never repeat it. ``what``: the url as the message names it."""
    try:
        parts = urlsplit(url)
        ascii_netloc = parts.netloc.isascii()
    except ValueError:
        parts, ascii_netloc = None, False
    if not ascii_netloc:
        return None, (
            f"{what}'s host part holds characters that are not plain ASCII (a full-width @ "
            "or :, a look-alike letter): write it in ASCII, with the host's punycode form "
            "(xn--…) for an international name"
        )
    return parts, None


def shaped_problem(url: str, what: str) -> str | None:
    """Why ``url`` is refused when any part of it is shaped like a credential (a token in
    its path, query or fragment, as the log redactor finds them), in words that never
    repeat it; ``None`` otherwise."""
    if not credential_shaped(url):
        return None
    return (
        f"{what} holds something shaped like a credential: take it out, and name the "
        "variable holding it in token_env"
    )


def url_problem(url: str) -> str:
    """Why ``url`` is no upstream Fleetwarden takes (for one :func:`url_kind` refuses)."""
    parts, problem = split_problem(url, "the url")
    if problem is not None or parts is None:
        return problem or ""
    if parts.scheme in ("https", "http") and parts.hostname and (parts.password or parts.username):
        return (
            "the url holds a credential: take it out, and name the variable holding it "
            "in token_env (or use ssh_key)"
        )
    if shaped := shaped_problem(url, "the url"):
        return shaped
    if (
        parts.scheme in ("https", "http", "ssh")
        and parts.hostname
        and (parts.query or parts.fragment or url.endswith(("?", "#")))
    ):
        return (
            "the url has a query or fragment (?… or #…), which git never needs: take it "
            "out, and name any credential it held in token_env"
        )
    if parts.scheme in ("https", "http", "ssh") and parts.hostname:
        # The credential first: the port's message shows the host, never what is before @.
        if parts.password is not None or (parts.scheme != "ssh" and parts.username):
            return (
                "the url holds a credential: take it out, and name the variable holding it "
                "in token_env (or use ssh_key)"
            )
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            return f"the url's port is not a number from 1 to 65535: {parts.netloc}"
    return (
        "a repository url is https://HOST/PATH, ssh://USER@HOST/PATH, USER@HOST:PATH or a "
        "path on this machine (a relative one is read from the config file's directory), "
        "with no credential in it (use token_env or ssh_key)"
    )


def url_kind(url: str) -> Literal["https", "http", "ssh", "local"] | None:
    """What kind of upstream ``url`` is, or ``None`` when it is none Fleetwarden takes."""
    parts, problem = split_problem(url, "the url")
    if problem is not None or parts is None or credential_shaped(url):
        return None
    if url.startswith("/"):
        return "local"
    if SCP_URL.fullmatch(url) and "://" not in url:
        return "ssh"
    if parts.scheme in ("https", "http", "ssh") and parts.hostname:
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            return None  # git needs neither; a token hides there
        if parts.password is not None or (parts.scheme != "ssh" and parts.username):
            return None  # a credential in the URL: it belongs in token_env
        try:
            if parts.port == 0:
                return None
        except ValueError:  # out of 0-65535, or not a number
            return None
        return parts.scheme  # type: ignore[return-value]
    return None


URL_WORDS: dict[str, str] = {
    "local": "a path on this machine",
    "ssh": "an ssh url",
    "https": "an https url",
    "http": "an http url",
}
"""Each kind of url (:func:`url_kind`), as a message names it."""


def credential_problem(url: str, *, token_env: str | None, ssh_key: Path | None) -> str | None:
    """Why ``url``'s kind takes no such credential (one of ``token_env`` and ``ssh_key``
    given), naming the kind of url it is and what it takes; ``None`` when it fits."""
    kind = url_kind(url)
    if kind is None:
        return None
    seen = f"url {url} is {URL_WORDS[kind]}"
    if token_env is not None and kind not in ("https", "http"):
        if kind == "local":
            return (
                f"token_env is for an https url, and {seen}, which git reads with no "
                "credential: remove token_env"
            )
        return (
            f"token_env is for an https url, and {seen}, which takes ssh_key (or the ssh "
            "keys of Fleetwarden's own user): remove token_env, or give an https url"
        )
    if ssh_key is not None and kind != "ssh":
        if kind == "local":
            return (
                f"ssh_key is for an ssh url, and {seen}, which git reads with no credential: "
                "remove ssh_key"
            )
        return (
            f"ssh_key is for an ssh url, and {seen}, which takes token_env: use token_env "
            "instead, or give an ssh url (git@HOST:PATH)"
        )
    return None
