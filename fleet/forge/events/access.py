"""Who may start, steer and stop a forge run: asked of the forge when each event comes,
never trusted from the event itself — people with write access to the repository, or
members of the configured org (or of its team)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fleet.forge.model import ForgeApi, ForgeApiError
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug

log = logging.getLogger(__name__)


class Access:
    """The forges' answers on who may act."""

    def __init__(self, forges: Mapping[str, ForgeEntry], apis: Mapping[str, ForgeApi]) -> None:
        self._forges = forges
        self._apis = apis

    async def refusal(self, forge: str, repo: Slug, login: str) -> str | None:
        """Why ``login`` may not act on ``repo`` of ``forge`` (None: they may). A forge
        that cannot be asked refuses: nobody is let in on a guess."""
        entry, api = self._forges[forge], self._apis[forge]
        allow = entry.allow
        try:
            if allow.write_access and await api.permission(repo, login) in ("admin", "write"):
                return None
            if allow.org is not None:
                if allow.team is not None:
                    if await api.in_team(allow.org, allow.team, login):
                        return None
                elif await api.in_org(allow.org, login):
                    return None
        except ForgeApiError as exc:
            log.warning("could not ask %s who %s is: %s", forge, login, exc)
            return f"could not be checked ({exc.status or 'no answer'}): refused"
        wanted = []
        if allow.write_access:
            wanted.append(f"write access to {repo}")
        if allow.org is not None:
            wanted.append(
                f"membership of {allow.org}/{allow.team}"
                if allow.team
                else f"membership of {allow.org}"
            )
        return "may not start or steer runs here (needs " + " or ".join(wanted) + ")"
