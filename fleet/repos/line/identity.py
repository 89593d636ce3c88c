"""Who a run's commits are by, and for whom: the agent's git identity and the requester's
``Co-authored-by:`` line.

An agent commits as the identity its config gives (``git_name`` and ``git_email``, on the
agent or in ``defaults``; each may say ``{agent}`` and ``{host}``), by default its own name
at an address under ``.invalid`` naming it and its host — an address no mail system or
forge account will ever own. The git door accepts commits by that identity exactly, so a
name or address git would write differently (git drops a leading or trailing space, ``.``,
``,``, ``:``, ``;``, quote or backslash) is refused at load, as is one that could not be
one line of a commit (a newline, ``<``, ``>``, a control character).

Whoever asked for a run is its co-author: an operator's configured ``git_name`` and
``git_email``; a chat user without them by their id, at an ``.invalid`` address naming
the chat; a forge user by the no-reply address their forge gives them. Every such line is
made here and nowhere else, one line with nothing that could start another trailer.
"""

from __future__ import annotations

import re
from typing import Final

from fleet.repos.hook.policy import Identity, agent_identity, host_label

NAME_MOST: Final = 100
EMAIL_MOST: Final = 254
_CRUD: Final = ".,:;\"'\\"
"""What git drops from either end of a name or an address (with spaces, ``<`` and ``>``)."""
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+")
_CO_AUTHOR = re.compile(r"(?P<name>[^<>]+?) <(?P<email>[^<>\s]+@[^<>\s]+)>")
_LOCAL = re.compile(r"[^A-Za-z0-9._+-]+")
_SAMPLE: Final = {"agent": "coder-1", "host": "local"}


def template_problem(value: str, *, email: bool) -> str | None:
    """Why ``value`` cannot be an agent's ``git_email`` (``email``) or ``git_name``, or
    ``None``; in words that name the fix (the loader puts the key before them)."""
    shown = repr(value[:60])
    if not value.strip():
        return "must not be empty: give one, or leave the key out for the default"
    if not value.isprintable() or "<" in value or ">" in value:
        return "must be one line, without '<', '>' or control characters (git writes those)"
    bare = value.replace("{agent}", "").replace("{host}", "")
    if "{" in bare or "}" in bare:
        return f"may name {{agent}} and {{host}} in braces, nothing else (found {shown})"
    made = expand(value, **_SAMPLE)
    most = EMAIL_MOST if email else NAME_MOST
    if len(made) > most:
        return f"must be at most {most} characters"
    if made != made.strip(" " + _CRUD):
        return (
            f"{shown} starts or ends with a space or one of . , : ; \" ' \\, which git drops "
            "from what it writes (the git door would then refuse every commit): remove it"
        )
    if email and not _EMAIL.fullmatch(made):
        return f"must look like an address: NAME@DOMAIN, no spaces (found {shown})"
    return None


def expand(template: str, *, agent: str, host: str) -> str:
    """``template`` with ``{agent}`` and ``{host}`` filled in (nothing else read)."""
    return template.replace("{agent}", agent).replace("{host}", host_label(host))


def identity_of(
    agent: str, host: str, name: str | None = None, email: str | None = None
) -> Identity:
    """The identity ``agent``'s commits on ``host`` carry: its ``git_name`` and
    ``git_email`` templates (checked at load by :func:`template_problem`) filled in, each
    by default Fleetwarden's (:func:`fleet.repos.hook.policy.agent_identity`)."""
    fallback = agent_identity(agent, host)
    return Identity(
        expand(name, agent=agent, host=host) if name else fallback.name,
        expand(email, agent=agent, host=host) if email else fallback.email,
    )


def co_author(name: str, email: str) -> str | None:
    """``NAME <EMAIL>`` for a ``Co-authored-by:`` trailer, or ``None`` when nothing of
    ``name`` is left or ``email`` is no address: every control character (a newline, a
    carriage return, a form feed) and ``<``/``>`` out of the name, its spaces folded."""
    shown = " ".join("".join(c if c.isprintable() else " " for c in name).split())
    shown = shown.replace("<", "").replace(">", "").strip()[:NAME_MOST].strip()
    if not shown or not _EMAIL.fullmatch(email) or not email.isprintable():
        return None
    if len(email) > EMAIL_MOST:
        return None
    return f"{shown} <{email}>"


def clean_co_author(text: str | None) -> str | None:
    """``text`` when it is one ``NAME <EMAIL>`` line as :func:`co_author` makes, else
    ``None``: what reaches a commit's trailers is checked where it goes in."""
    if not text:
        return None
    found = _CO_AUTHOR.fullmatch(text)
    if found is None:
        return None
    return co_author(found["name"], found["email"]) if text.isprintable() else None


def chat_co_author(connector: str, sender: str) -> str | None:
    """A chat user with no ``git_name``: their id as the name (a Matrix id's ``@`` left
    out, so that no forge reads it as a mention), at an address under ``.invalid`` naming
    the chat — honest that no mailbox is known."""
    name = sender.lstrip("@")
    local = _LOCAL.sub("-", name).strip("-.")[:64].strip("-.") or "someone"
    chat = host_label(connector)
    return co_author(f"{name} on {chat}", f"{local}@{chat}.fleetwarden.invalid")


def forge_co_author(login: str, address: str) -> str | None:
    """A forge user as co-author: their login at the address their forge credits their
    commits to (GitHub's documented no-reply ``ID+LOGIN@users.noreply.github.com``; the
    address a Gitea or Forgejo shows for the user, a hidden one's no-reply placeholder)."""
    if not login or _LOCAL.search(login) or "+" in login:
        return None  # a forge's logins are letters, digits, '.', '_' and '-'
    return co_author(login, address)
