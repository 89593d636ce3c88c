"""The schema judge: every request, answer and event of the fake Slack held to the JSON
Schema built from Slack's own TypeScript types (``tests/slack_data.sh`` writes
``.cache/slack-data/schemas/<Type>.json`` from npm ``@slack/web-api`` and ``@slack/types``).

- :func:`argument_problems` — what is wrong with a request's arguments (the fake answers
  ``invalid_arguments`` naming them);
- :func:`check_answer` / :func:`check_event` — the fake's own answer or event breaks
  Slack's types: :class:`SchemaBreach` is raised, failing the test (the fake is wrong);
- :func:`block_problems` — blocks that are no ``KnownBlock`` (``invalid_blocks``);
- :func:`typed_arguments` — form or query arguments (all strings on the wire) read as the
  types the method's schema gives them (``"true"`` a boolean, ``"[...]"`` a list).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator  # type: ignore[import-untyped]

__all__ = [
    "SCHEMAS",
    "SchemaBreach",
    "argument_names",
    "argument_problems",
    "block_problems",
    "check_answer",
    "check_event",
    "have_schemas",
    "typed_arguments",
]

SCHEMAS = Path(__file__).resolve().parents[3] / ".cache" / "slack-data" / "schemas"

# The events the world sends, by their `type`, and the type that describes each.
EVENT_TYPES = {
    "message": "GenericMessageEvent",
    "app_mention": "AppMentionEvent",
    "reaction_added": "ReactionAddedEvent",
    "agent_session_stopped": "AgentSessionStoppedEvent",
    "subteam_members_changed": "SubteamMembersChangedEvent",
    "subteam_updated": "SubteamUpdatedEvent",
}


class SchemaBreach(AssertionError):
    """The fake was about to send what Slack's own types do not allow: a defect in the fake."""


def have_schemas() -> bool:
    """Whether ``tests/slack_data.sh`` has built the schemas."""
    return (SCHEMAS / "KnownBlock.json").is_file()


@cache
def _schema(type_name: str) -> dict[str, Any]:
    path = SCHEMAS / f"{type_name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `bash tests/slack_data.sh` first")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@cache
def _validator(type_name: str) -> Draft7Validator:
    return Draft7Validator(_schema(type_name))


def _problems(type_name: str, value: object) -> list[str]:
    found: list[str] = []
    for error in _validator(type_name).iter_errors(value):
        where = "/".join(str(part) for part in error.absolute_path) or "(top)"
        best = error
        if error.context:  # anyOf: the branch that came closest says the most
            best = min(error.context, key=lambda e: (len(e.context), -len(e.absolute_path)))
        found.append(f"{where}: {best.message[:300]}")
    return found


def argument_problems(method_type: str, arguments: Mapping[str, object]) -> list[str]:
    """Why ``arguments`` are no ``<method_type>Arguments`` (empty when they are)."""
    return _problems(f"{method_type}Arguments", dict(arguments))


def check_answer(method_type: str, answer: Mapping[str, object]) -> None:
    """Raise :class:`SchemaBreach` if ``answer`` is no ``<method_type>Response``."""
    problems = _problems(f"{method_type}Response", dict(answer))
    if problems:
        raise SchemaBreach(f"the fake's {method_type}Response breaks Slack's types: {problems}")


def check_event(event: Mapping[str, object]) -> None:
    """Raise :class:`SchemaBreach` if ``event`` breaks the type of its ``type``."""
    type_name = EVENT_TYPES.get(str(event.get("type")))
    if type_name is None:
        raise SchemaBreach(f"the fake has no schema for the event {event.get('type')!r}")
    problems = _problems(type_name, dict(event))
    if problems:
        raise SchemaBreach(f"the fake's {type_name} breaks Slack's types: {problems}")


def block_problems(blocks: object) -> list[str]:
    """Why ``blocks`` is no list of ``KnownBlock`` (empty when it is one)."""
    if not isinstance(blocks, list):
        return ["blocks must be a list of blocks"]
    found: list[str] = []
    for index, block in enumerate(blocks):
        found.extend(f"[{index}] {problem}" for problem in _problems("KnownBlock", block))
    return found


@cache
def _wire_types(method_type: str) -> dict[str, frozenset[str]]:
    """Each argument's JSON types, over every branch of the method's arguments schema."""
    schema = _schema(f"{method_type}Arguments")
    definitions = schema.get("definitions", {})
    types: dict[str, set[str]] = {}
    for branch in _branches(schema, definitions):
        for name, spec in branch.get("properties", {}).items():
            types.setdefault(name, set()).update(_types_of(spec, definitions))
    return {name: frozenset(found) for name, found in types.items()}


def _branches(spec: Mapping[str, Any], definitions: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The object schemas ``spec`` may be, through ``$ref``, ``anyOf`` and ``allOf``."""
    if "$ref" in spec:
        return _branches(_resolve(spec["$ref"], definitions), definitions)
    found: list[Mapping[str, Any]] = [spec] if "properties" in spec else []
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in spec.get(key, []):
            found.extend(_branches(branch, definitions))
    return found


def _resolve(ref: str, definitions: Mapping[str, Any]) -> Mapping[str, Any]:
    name = urllib.parse.unquote(ref.rsplit("/", 1)[1])
    resolved: Mapping[str, Any] = definitions[name]
    return resolved


def _types_of(spec: Mapping[str, Any], definitions: Mapping[str, Any]) -> set[str]:
    if "$ref" in spec:
        return _types_of(_resolve(spec["$ref"], definitions), definitions)
    kind = spec.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    found: set[str] = set()
    for branch in spec.get("anyOf", []):
        found |= _types_of(branch, definitions)
    return found or {"object"}


def argument_names(method_type: str) -> frozenset[str]:
    """Every argument ``<method_type>Arguments`` names, in any of its branches."""
    return frozenset(_wire_types(method_type))


def typed_arguments(method_type: str, raw: Mapping[str, str]) -> dict[str, object]:
    """Form or query arguments as the types the schema gives them: Slack reads
    ``"true"``/``"1"`` as true, numbers as numbers, JSON in a string as its value."""
    types = _wire_types(method_type)
    typed: dict[str, object] = {}
    for name, value in raw.items():
        allowed = types.get(name, frozenset())
        typed[name] = _read(value, allowed)
    return typed


def _read(value: str, allowed: frozenset[str]) -> object:
    if "string" in allowed or not allowed:
        return value
    if "boolean" in allowed and value in ("true", "false", "1", "0"):
        return value in ("true", "1")
    if allowed & {"number", "integer"}:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "integer" in allowed else number
    if allowed & {"array", "object"}:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
