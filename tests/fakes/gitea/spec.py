"""Gitea's published API description, as the fake Gitea server checks what it is sent and
what it answers: the vendored subset ``gitea_swagger.json`` (see ``gitea_swagger.md``).

It is Swagger 2.0, so bodies are checked with ``jsonschema`` (draft 4, the dialect
Swagger 2.0's schemas are) against its ``definitions``, and parameters by hand from each
operation's ``parameters``. A request is held to the description strictly: an unknown
query parameter, a value of the wrong type, a body where none is taken or not of its
schema is a violation. An answer may carry ``null`` where the description names a value,
as Gitea's Go structs write a nil pointer or slice; anything else off its schema is a
violation too. Each check returns the violations it found, as sentences.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import jsonschema  # type: ignore[import-untyped]

SWAGGER: Final = Path(__file__).with_name("gitea_swagger.json")
BASE_PATH: Final = "/api/v1"
# Path parameters Gitea routes as ``/*``: they may hold ``/``.
_GREEDY: Final = frozenset({"filepath", "branch"})
# Gitea answers these to any operation (its token check, its permission checks, its
# binding of a body), whether or not the operation lists them.
_ALWAYS: Final = frozenset({401, 403, 404, 422})
# Where the description's schema says less than its own words: repoGetContents is
# "…, or a list of entries if a dir", but its schema names only the one entry.
_ALSO_ANSWERED: Final[Mapping[tuple[str, int], Mapping[str, Any]]] = {
    ("repoGetContents", 200): {
        "type": "array",
        "items": {"$ref": "#/definitions/ContentsResponse"},
    },
}
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
# What Go's strconv.ParseBool takes.
_TRUE_FALSE: Final = frozenset(
    ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"]
)

_FORMATS = jsonschema.FormatChecker(formats=())


def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or _RFC3339.fullmatch(value) is not None


_FORMATS.checks("date-time")(_is_datetime)


@dataclass(frozen=True, slots=True)
class Operation:
    """One described operation: ``method`` on the path ``template``."""

    template: str
    method: str
    spec: Mapping[str, Any]
    pattern: re.Pattern[str]

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId", f"{self.method} {self.template}"))

    def parameters(self, where: str) -> list[Mapping[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == where]


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        else:
            regex += f"(?P<{part}>.+)" if part in _GREEDY else f"(?P<{part}>[^/]+)"
    return re.compile(regex)


def _nullable(node: Any) -> Any:
    """``node`` with every object property also allowing ``null``."""
    if isinstance(node, dict):
        out = {key: _nullable(value) for key, value in node.items()}
        if isinstance(out.get("properties"), dict):
            out["properties"] = {
                name: {"anyOf": [schema, {"type": "null"}]}
                for name, schema in out["properties"].items()
            }
        return out
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    return node


def _scalar_problem(param: Mapping[str, Any], value: str) -> str | None:
    kind = param.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value) is None:
        return "is not an integer"
    if kind == "boolean" and value not in _TRUE_FALSE:
        return "is not a boolean"
    if "enum" in param and value not in param["enum"]:
        return f"is not one of {param['enum']}"
    if param.get("format") == "date-time" and _RFC3339.fullmatch(value) is None:
        return "is not an RFC 3339 date-time"
    return None


class GiteaSpec:
    """The vendored description, loaded once per process (:meth:`load`)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        operations = [
            Operation(template, method.upper(), spec, _pattern(template))
            for template, item in document["paths"].items()
            for method, spec in item.items()
        ]
        # Literal segments first: ``issues/comments/{id}`` before ``issues/{index}``.
        self.operations = sorted(
            operations, key=lambda op: -len(re.sub(r"\{\w+\}", "", op.template))
        )
        self._strict = {"definitions": document["definitions"]}
        self._lenient = {"definitions": _nullable(copy.deepcopy(document["definitions"]))}
        self._validators: dict[tuple[bool, str], jsonschema.Draft4Validator] = {}

    @classmethod
    @functools.cache
    def load(cls) -> GiteaSpec:
        return cls(json.loads(SWAGGER.read_text(encoding="utf-8")))

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation ``method`` ``raw_path`` (still percent-encoded, under
        :data:`BASE_PATH`) is, with its path parameters decoded; None if undescribed."""
        if not raw_path.startswith(BASE_PATH + "/"):
            return None
        rest = raw_path[len(BASE_PATH) :]
        for op in self.operations:
            found = op.pattern.fullmatch(rest)
            if found is not None and op.method == method:
                return op, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def check_parameters(
        self, op: Operation, path: Mapping[str, str], query: Iterable[tuple[str, str]]
    ) -> list[str]:
        """Violations among the path parameters and the query of a request."""
        where = op.operation_id
        problems: list[str] = []
        for param in op.parameters("path"):
            value = path.get(param["name"])
            if value is None:
                problems.append(f"{where}: path parameter {param['name']!r} missing")
            elif (why := _scalar_problem(param, value)) is not None:
                problems.append(f"{where}: path parameter {param['name']}={value!r} {why}")
        described = {p["name"]: p for p in op.parameters("query")}
        seen: dict[str, int] = {}
        for name, value in query:
            seen[name] = seen.get(name, 0) + 1
            found = described.get(name)
            if found is None:
                problems.append(f"{where}: undescribed query parameter {name!r}")
                continue
            item = found.get("items", {}) if found.get("type") == "array" else found
            if (why := _scalar_problem(item, value)) is not None:
                problems.append(f"{where}: query parameter {name}={value!r} {why}")
        for name, count in seen.items():
            multi = described.get(name, {}).get("collectionFormat") == "multi"
            if name in described and count > 1 and not multi:
                problems.append(f"{where}: query parameter {name!r} given {count} times")
        for name, spec in described.items():
            if spec.get("required") and name not in seen:
                problems.append(f"{where}: required query parameter {name!r} missing")
        return problems

    def check_body(self, op: Operation, content_type: str, raw: bytes) -> tuple[Any, list[str]]:
        """The request body parsed, and its violations."""
        where = op.operation_id
        params = op.parameters("body")
        if not params:
            return None, ([f"{where}: a body sent where none is taken"] if raw.strip() else [])
        param = params[0]
        if not raw.strip():
            missing = [f"{where}: required body missing"] if param.get("required") else []
            return None, missing
        consumes = op.spec.get("consumes", self.document.get("consumes", []))
        media = content_type.split(";")[0].strip().lower()
        if media not in consumes:
            return None, [f"{where}: body of type {media!r}, not one of {consumes}"]
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None, [f"{where}: body is not JSON"]
        return body, self._validate(where + " body", param["schema"], body, strict=True)

    def check_answer(self, op: Operation, status: int, body: Any, raw: bytes) -> list[str]:
        """Violations in an answer the fake gives to ``op``."""
        where = f"{op.operation_id} answer {status}"
        responses: Mapping[str, Any] = op.spec.get("responses", {})
        response: Mapping[str, Any] | None = responses.get(str(status))
        if response is None:
            if status not in _ALWAYS:
                return [f"{where}: status not described"]
            response = {}
        if "$ref" in response:
            response = self.document["responses"][response["$ref"].rsplit("/", 1)[1]]
        if status == 204 or (300 <= status < 400):
            return [f"{where}: a body on an answer without one"] if raw.strip() else []
        if "schema" in response:
            schema = response["schema"]
            also = _ALSO_ANSWERED.get((op.operation_id, status))
            if also is not None and isinstance(body, list):
                schema = also
            return self._validate(where, schema, body, strict=False)
        if status >= 400 and raw.strip():
            # Gitea's error answers are its APIError (message, url), not in the description.
            ok = isinstance(body, dict) and isinstance(body.get("message"), str)
            return [] if ok and isinstance(body.get("url"), str) else [f"{where}: not APIError"]
        return [f"{where}: a body where the description has none"] if raw.strip() else []

    def _validate(
        self, where: str, schema: Mapping[str, Any], value: Any, *, strict: bool
    ) -> list[str]:
        key = (strict, json.dumps(schema, sort_keys=True))
        validator = self._validators.get(key)
        if validator is None:
            root = self._strict if strict else self._lenient
            validator = jsonschema.Draft4Validator({**root, **schema}, format_checker=_FORMATS)
            self._validators[key] = validator
        return [
            f"{where}: {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(value)
        ]
