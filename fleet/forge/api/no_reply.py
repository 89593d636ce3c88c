"""The addresses forges credit commits to without showing a user's own: each forge has a
no-reply form of a user's address that it matches back to the user. A commit Fleetwarden
makes for a person (a co-author) names them at that address, never at one they show."""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

NO_REPLY_FALLBACK: Final = "noreply.gitea.invalid"
"""The no-reply domain of a Gitea reached at an IP address, whose ``DOMAIN`` is unknown."""
_LOGIN: Final = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # Gitea's user names
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")  # a host name, as DNS spells it


def no_reply_address(login: str, api_url: str) -> str | None:
    """The address Gitea credits ``login``'s commits to without showing theirs:
    ``login@NO_REPLY_ADDRESS``, which Gitea matches to the user by their login. Its
    ``NO_REPLY_ADDRESS`` is ``noreply.`` and the server's ``DOMAIN`` unless set otherwise;
    the domain taken here is the host ``api_url`` names (``git.example.com``). A host that is
    an IP address names no domain: the address is then one no one has
    (``login@noreply.gitea.invalid``), crediting no one rather than a guess. None for a
    login Gitea would not have."""
    if not _LOGIN.fullmatch(login):
        return None
    host = (urlsplit(api_url).hostname or "").rstrip(".").lower()
    if not _DOMAIN.fullmatch(host) or _is_ip(host):
        return f"{login.lower()}@{NO_REPLY_FALLBACK}"
    return f"{login.lower()}@noreply.{host}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


GITLAB_COM_NO_REPLY: Final = "users.noreply.gitlab.com"
_GITLAB_LOGIN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")  # GitLab's usernames


def gitlab_no_reply_address(user_id: int, username: str, api_url: str) -> str | None:
    """The address GitLab credits ``username``'s commits to without showing theirs (its
    "private commit email"): ``ID-username@users.noreply.HOST``, where the host is the
    instance's own (``users.noreply.gitlab.com`` on gitlab.com; on a self-managed one
    ``users.noreply.`` and its host, GitLab's default ``commit_email_hostname``). A host
    that is an IP address names no domain: the address is then one no one has, crediting
    no one rather than a guess. None for a username GitLab would not have."""
    if user_id <= 0 or not _GITLAB_LOGIN.fullmatch(username):
        return None
    host = (urlsplit(api_url).hostname or "").rstrip(".").lower()
    if host in ("gitlab.com", "www.gitlab.com"):
        return f"{user_id}-{username}@{GITLAB_COM_NO_REPLY}"
    if not _DOMAIN.fullmatch(host) or _is_ip(host):
        return f"{user_id}-{username}@users.noreply.gitlab.invalid"
    return f"{user_id}-{username}@users.noreply.{host}"
