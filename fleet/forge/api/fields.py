"""The reading of a forge's JSON answer that every client shares: a field of the wanted
type or :class:`Malformed`, which the client's :class:`~fleet.forge.api.client.Rest`
turns into a :class:`~fleet.forge.model.ForgeApiError` naming the call and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Malformed(Exception):
    """An answer lacked a field or held one of the wrong type."""


def as_object(data: Any, what: str) -> Mapping[str, Any]:
    """``data`` itself, an object (``what`` names it when it is none)."""
    if not isinstance(data, Mapping):
        raise Malformed(what)
    return data


def field_obj(data: Any, key: str) -> Mapping[str, Any]:
    """The object under ``key`` of ``data`` (an object too)."""
    value = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(value, Mapping):
        raise Malformed(key)
    return value


def field_str(data: Mapping[str, Any], key: str, *, default: str | None = None) -> str:
    """The string under ``key`` (``default`` for one missing or null, when given)."""
    value = data.get(key, default)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise Malformed(key)
    return value


def field_int(data: Mapping[str, Any], key: str) -> int:
    """The integer under ``key`` (a boolean is none)."""
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(key)
    return value
