"""asyncssh as the hosts and the remote backends use it, loaded at its first use: a start
with no SSH host configured (and every command-line verb) never pays its import (about a
tenth of a start's). Read ``from fleet.hosts.link import ssh as asyncssh``; its names are
asyncssh's own."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncssh import *  # noqa: F403


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # a module's own dunders (__path__, __all__) are never asyncssh's
        raise AttributeError(name)
    return getattr(importlib.import_module("asyncssh"), name)
