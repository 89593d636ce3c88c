"""GitLab's published API description, as the fake GitLab server checks what it is sent and
what it answers: the subset ``gitlab_openapi.json`` (see ``gitlab_openapi.md``), OpenAPI
3.0 as GitLab's ``doc/api/openapi/openapi_v3.yaml`` writes it, and the few operations the
description lacks, written by hand from GitLab's REST docs (``x-fleetwarden-handwritten``).

GitLab's description is generated from its Grape endpoints and says less than it seems:
a listing's answer names one entity, not a list of them (``x-fleetwarden-list`` marks the
listings); an entity field exposed without a documented type is written ``string`` (a
note's ``id``, a member's ``access_level``, which GitLab sends as numbers); types are
spelled ``Boolean``, ``DateTime`` and ``Array``. So requests are held to it strictly (an
undescribed path, query parameter or body field, a value of the wrong type, a missing
required one is a violation), and answers by their field names (a field the description
does not name is a violation) and by every type it states but ``string``; any value may
be ``null``. Each check returns the violations it found, as sentences.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

DESCRIPTION: Final = Path(__file__).with_name("gitlab_openapi.json")
BASE_PATH: Final = "/api/v4"
# GitLab answers these to any operation (its authentication, its finders), listed or not.
_ALWAYS: Final = frozenset({400, 401, 403, 404})
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
_TRUE_FALSE: Final = frozenset({"true", "false", "1", "0"})  # what Grape's Boolean takes


@dataclass(frozen=True, slots=True)
class Operation:
    """One described operation: ``method`` on the path ``template`` (under /api/v4)."""

    template: str
    method: str
    spec: Mapping[str, Any]
    pattern: re.Pattern[str]

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId", f"{self.method} {self.template}"))

    @property
    def is_list(self) -> bool:
        return bool(self.spec.get("x-fleetwarden-list"))

    def parameters(self, where: str) -> list[Mapping[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == where]


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template.removeprefix(BASE_PATH))
    regex = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    )
    return re.compile(regex)


def _scalar_problem(schema: Mapping[str, Any], value: str) -> str | None:
    kinds = {s.get("type") for s in schema.get("oneOf", [])} or {schema.get("type")}
    if "string" not in kinds and None not in kinds:
        if "integer" in kinds and re.fullmatch(r"-?\d+", value) is None:
            return "is not an integer"
        if kinds == {"boolean"} and value not in _TRUE_FALSE:
            return "is not a boolean"
    if "enum" in schema and value not in schema["enum"]:
        return f"is not one of {schema['enum']}"
    if schema.get("format") == "date-time" and _RFC3339.fullmatch(value) is None:
        return "is not an ISO 8601 date-time"
    return None


class GitLabSpec:
    """The vendored subset, loaded once per process (:meth:`load`)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        hand = document.get("x-fleetwarden-handwritten", {})
        every = {**document["paths"], **hand.get("paths", {})}
        operations = [
            Operation(template, method.upper(), spec, _pattern(template))
            for template, item in every.items()
            for method, spec in item.items()
        ]
        # Literal segments first: ``members/all/{user_id}`` before anything looser.
        self.operations = sorted(
            operations, key=lambda op: -len(re.sub(r"\{\w+\}", "", op.template))
        )

    @classmethod
    @functools.cache
    def load(cls) -> GitLabSpec:
        return cls(json.loads(DESCRIPTION.read_text(encoding="utf-8")))

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation ``method`` ``raw_path`` (still percent-encoded) is, with its path
        parameters decoded; None if undescribed."""
        if not raw_path.startswith(BASE_PATH + "/"):
            return None
        rest = raw_path[len(BASE_PATH) :]
        for op in self.operations:
            found = op.pattern.fullmatch(rest)
            if found is not None and op.method == method:
                return op, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def resolve(self, ref: str) -> Mapping[str, Any]:
        """The schema a local ``$ref`` names."""
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node  # type: ignore[no-any-return]

    # -- requests ---------------------------------------------------------------------

    def check_parameters(
        self, op: Operation, path: Mapping[str, str], query: Iterable[tuple[str, str]]
    ) -> list[str]:
        """Violations among the path parameters and the query of a request."""
        where = op.operation_id
        problems: list[str] = []
        for param in op.parameters("path"):
            value = path.get(param["name"])
            if value is not None and (why := _scalar_problem(param["schema"], value)):
                problems.append(f"{where}: path parameter {param['name']}={value!r} {why}")
        described = {p["name"]: p for p in op.parameters("query")}
        seen: dict[str, int] = {}
        for name, value in query:
            seen[name] = seen.get(name, 0) + 1
            found = described.get(name)
            if found is None:
                problems.append(f"{where}: undescribed query parameter {name!r}")
            elif (why := _scalar_problem(found["schema"], value)) is not None:
                problems.append(f"{where}: query parameter {name}={value!r} {why}")
        for name, count in seen.items():
            if name in described and count > 1 and not name.endswith("[]"):
                problems.append(f"{where}: query parameter {name!r} given {count} times")
        for name, spec in described.items():
            if spec.get("required") and name not in seen:
                problems.append(f"{where}: required query parameter {name!r} missing")
        return problems

    def check_body(self, op: Operation, content_type: str, raw: bytes) -> tuple[Any, list[str]]:
        """The request body parsed, and its violations (every field must be described)."""
        where = op.operation_id
        spec = op.spec.get("requestBody")
        if spec is None:
            return None, ([f"{where}: a body sent where none is taken"] if raw.strip() else [])
        if not raw.strip():
            return None, ([f"{where}: required body missing"] if spec.get("required") else [])
        media = content_type.split(";")[0].strip().lower()
        if media not in spec["content"]:
            return None, [f"{where}: body of type {media!r}, not one of {list(spec['content'])}"]
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None, [f"{where}: body is not JSON"]
        schema = spec["content"][media]["schema"]
        return body, self._request_value(f"{where} body", schema, body)

    def _request_value(self, where: str, schema: Mapping[str, Any], value: Any) -> list[str]:
        kind = schema.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: not an object"]
            props: Mapping[str, Any] = schema.get("properties", {})
            out = [f"{where}: undescribed field {k!r}" for k in value if k not in props]
            out += [f"{where}: required field {k!r} missing" for k in schema.get("required", [])
                    if k not in value]  # fmt: skip
            for key, sub in value.items():
                if key in props:
                    out += self._request_value(f"{where}/{key}", props[key], sub)
            return out
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: not an array"]
            items = schema.get("items", {})
            return [
                p
                for i, v in enumerate(value)
                for p in self._request_value(f"{where}/{i}", items, v)
            ]
        return _typed(where, kind, schema, value, loose_strings=False)

    # -- answers ----------------------------------------------------------------------

    def check_answer(self, op: Operation, status: int, body: Any, raw: bytes) -> list[str]:
        """Violations in an answer the fake gives to ``op``."""
        where = f"{op.operation_id} answer {status}"
        responses: Mapping[str, Any] = op.spec.get("responses", {})
        response = responses.get(str(status))
        if response is None and status not in _ALWAYS:
            return [f"{where}: status not described"]
        if status == 204:
            return [f"{where}: a body on an answer without one"] if raw.strip() else []
        if status >= 400:
            ok = isinstance(body, dict) and set(body) <= {"message", "error"} and body
            return [] if ok else [f"{where}: not GitLab's error shape ({{'message': …}})"]
        content = (response or {}).get("content", {}).get("application/json")
        if content is None:
            return [f"{where}: a body where the description has none"] if raw.strip() else []
        schema = content["schema"]
        if op.is_list:
            if not isinstance(body, list):
                return [f"{where}: a listing answered with no list"]
            return [
                p for i, item in enumerate(body) for p in self._answer(f"{where}/{i}", schema, item)
            ]
        return self._answer(where, schema, body)

    def _answer(
        self, where: str, schema: Mapping[str, Any], value: Any, depth: int = 0
    ) -> list[str]:
        if value is None or depth > 6:
            return []
        if "$ref" in schema:
            target = self.resolve(schema["$ref"])
            if isinstance(value, list):  # the description drops Grape's is_array
                return [
                    p
                    for i, v in enumerate(value)
                    for p in self._answer(f"{where}/{i}", target, v, depth + 1)
                ]
            return self._answer(where, target, value, depth + 1)
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            if not isinstance(value, dict):
                return [f"{where}: not an object"]
            props = dict(schema.get("properties", {}))
            for name in schema.get("x-fleetwarden-merged", []):  # Grape's ``merge: true``
                props.update(self.resolve(props[name]["$ref"]).get("properties", {}))
            out = [
                f"{where}: field {k!r} is not in the description" for k in value if k not in props
            ]
            out += [f"{where}: required field {k!r} missing" for k in schema.get("required", [])
                    if k not in value]  # fmt: skip
            for key, sub in value.items():
                if key in props:
                    out += self._answer(f"{where}/{key}", props[key], sub, depth + 1)
            return out
        if kind in ("array", "Array"):
            if not isinstance(value, list):
                return [f"{where}: not an array"]
            items = schema.get("items", {})
            return [
                p
                for i, v in enumerate(value)
                for p in self._answer(f"{where}/{i}", items, v, depth + 1)
            ]
        return _typed(where, kind, schema, value, loose_strings=True)


def _typed(
    where: str, kind: Any, schema: Mapping[str, Any], value: Any, *, loose_strings: bool
) -> list[str]:
    """A scalar against its type; ``loose_strings``: a ``string`` is any value (an
    answer's field of no documented type)."""
    if kind in ("Boolean", "boolean"):
        ok = isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "DateTime":
        ok = isinstance(value, str) and _RFC3339.fullmatch(value) is not None
    elif kind == "string" and not loose_strings:
        ok = isinstance(value, str)
        if ok and "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} is not one of {schema['enum']}"]
    elif kind == "string":
        ok = True  # Grape-swagger's word for a field exposed with no documented type
    else:
        ok = True  # no type stated
    return [] if ok else [f"{where}: {value!r} is not of type {kind}"]
