"""Access control: who may say what. Pure: built from the config's operator list.

Roles: ``admin`` and ``operator`` may run every command that changes something, except
those marked ``admin_only`` (``schedule add``, for one), which only an ``admin`` may run;
``viewer`` only the read-only ones. Anyone not listed is a stranger: the router
ignores strangers entirely — they are never answered.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    @property
    def may_control(self) -> bool:
        """Whether this role may run commands that change the fleet."""
        return self in (Role.ADMIN, Role.OPERATOR)


_RANK = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)


@dataclass(frozen=True, slots=True)
class Grant:
    """One operator entry: this user id, on this connector (or any), has this role."""

    user_id: str
    role: Role
    connector: str | None = None


class Guarded(Protocol):
    """What the ACL reads of a command's spec (:class:`bot.commands.parsing.grammar.CommandSpec`
    is one): whether it changes something, and whether only an admin may run it."""

    @property
    def control(self) -> bool: ...

    @property
    def admin_only(self) -> bool: ...


class Acl:
    """Looks up a sender's role and decides whether a command is allowed."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        self._exact: dict[tuple[str, str], Role] = {}
        self._any: dict[str, Role] = {}
        self.replace(grants)

    def replace(self, grants: Iterable[Grant]) -> None:
        """Take these grants instead of the current ones (a ``roster reload`` read the
        operators again): whoever holds this ACL decides by them from now on."""
        exact: dict[tuple[str, str], Role] = {}
        anywhere: dict[str, Role] = {}
        for grant in grants:
            if grant.connector is None:
                anywhere[grant.user_id] = grant.role
            else:
                exact[(grant.connector, grant.user_id)] = grant.role
        self._exact, self._any = exact, anywhere

    def role_of(self, connector: str, user_id: str, groups: Iterable[str] = ()) -> Role | None:
        """The sender's role, or ``None`` for a stranger. A connector-specific entry wins,
        and an entry for the person wins over their groups (Discord roles, ``role:<id>``;
        Slack user groups, ``usergroup:<id>``); among their groups, the most powerful role."""
        own = self._exact.get((connector, user_id), self._any.get(user_id))
        if own is not None:
            return own
        found = [
            role
            for group in groups
            if (role := self._exact.get((connector, group), self._any.get(group))) is not None
        ]
        return min(found, key=_RANK.index, default=None)

    @staticmethod
    def allows(role: Role, spec: Guarded) -> bool:
        """Whether ``role`` may run the command ``spec`` describes."""
        if spec.admin_only:
            return role is Role.ADMIN
        return role.may_control or not spec.control
