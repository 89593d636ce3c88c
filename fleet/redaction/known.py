"""Secrets Fleetwarden knows by value: what one is (:class:`Secret`), where one is in a
text (:class:`Span`), and whatever holds them (:class:`SecretSource`).

A :class:`SecretSource` is whatever holds secrets and can list them now: the heartbeat
endpoint's tokens, the metering proxy's keys, the accounts' credentials, the environment
variables the config names (:class:`EnvSecrets`), a chat login. The redactor asks its
sources at each redaction, so a token issued a moment ago is known; where their values
are in a text is :mod:`fleet.redaction.values`' to find. This module is a leaf (it imports
nothing of Fleetwarden's), so a connector may be a source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Secret:
    """One secret value, and what it is in words (``heartbeat token``): the label it is
    replaced by. The label never says anything of the value. ``places``: the names the
    config gives it (its variable, the header a server is sent it in), where it is found
    even when too short to look for anywhere else."""

    value: str
    what: str
    places: tuple[str, ...] = ()


class Span(NamedTuple):
    """Where a secret is in a text: ``text[start:end]``, and what it is."""

    start: int
    end: int
    what: str


@runtime_checkable
class SecretSource(Protocol):
    """Anything holding secrets that must never be shown."""

    def known_secrets(self) -> Iterable[Secret]:
        """The secrets held now (cheap: asked at every redaction)."""
        ...


class EnvSecrets:
    """The values of the environment variables the config names as secrets, each labelled
    with its variable's name (the environment is read once: it does not change)."""

    def __init__(self, names: Iterable[str], environ: Mapping[str, str]) -> None:
        self._secrets = tuple(
            Secret(environ[name], name, (name,)) for name in sorted(names) if environ.get(name)
        )

    def known_secrets(self) -> Iterable[Secret]:
        return self._secrets
