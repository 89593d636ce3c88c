"""GitHub's official REST description (``tests.forge_data.GITHUB_OPENAPI``, from
``@octokit/openapi``) as a judge of requests and answers, with ``openapi-core``.

The published file is 13 MB and describes some 800 paths. :func:`github_description`
keeps only the operations :data:`SERVED` names and the components they reference
(following every ``$ref``), checks that cut as an OpenAPI document, and builds it once
per process. Measured here (21 paths, 77 schemas kept): reading the JSON ~0.18 s,
cutting ~0.005 s, checking the cut as a document ~0.25 s — 0.45 to 0.65 s in all, once;
the first validation of each operation then compiles its schemas (a few ms), and a call
with its answer is judged in 2 to 5 ms after that.

Requests are judged by their path under the fake's root, against the description's own
server (``https://api.github.com``), with the route's template and parameters given (as
openapi-core's ``path_pattern`` protocol allows): GitHub's ``{path}`` and ``{ref}`` span
slashes, which openapi-core's own path matching does not take.

GitHub answers 401, 403, 404 and 422 on any call but documents them on few: an
operation that does not list one of those statuses gets GitHub's generic answer for it
(``requires_authentication``, ``forbidden``, ``not_found``, ``validation_failed``) from
the description's own components, so such answers are judged too. One defect of the
description is mended: the contents answer's ``discriminator`` maps a directory (an
array), which makes every directory listing invalid; it is dropped (``oneOf`` remains).
And a ``nullable`` schema with an ``enum`` gets ``null`` in its enum: under OpenAPI
3.0.3 (and openapi-core) an enum must list null itself, but GitHub sends null for such
fields (a queued check run's required ``conclusion``, an open issue's ``state_reason``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from jsonschema.exceptions import best_match  # type: ignore[import-untyped]
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.forge_data import GITHUB_OPENAPI

SERVER: Final = "https://api.github.com"
# Each path the fake serves and its methods, in the description's own spelling.
SERVED: Final[Mapping[str, tuple[str, ...]]] = {
    "/repos/{owner}/{repo}/issues": ("get",),
    "/repos/{owner}/{repo}/issues/{issue_number}": ("get",),
    "/repos/{owner}/{repo}/issues/{issue_number}/comments": ("get", "post"),
    "/repos/{owner}/{repo}/issues/{issue_number}/events": ("get",),
    "/repos/{owner}/{repo}/issues/comments/{comment_id}": ("patch",),
    "/repos/{owner}/{repo}/pulls": ("get", "post"),
    "/repos/{owner}/{repo}/pulls/{pull_number}": ("get", "patch"),
    "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers": ("post",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews": ("get", "post"),
    "/repos/{owner}/{repo}/pulls/{pull_number}/merge": ("put",),
    "/repos/{owner}/{repo}/contents/{path}": ("get",),
    "/repos/{owner}/{repo}/collaborators/{username}/permission": ("get",),
    "/repos/{owner}/{repo}/git/refs/{ref}": ("delete",),
    "/repos/{owner}/{repo}/check-runs": ("post",),
    "/repos/{owner}/{repo}/check-runs/{check_run_id}": ("patch",),
    "/repos/{owner}/{repo}/installation": ("get",),
    "/orgs/{org}/installation": ("get",),
    "/orgs/{org}/members/{username}": ("get",),
    "/orgs/{org}/teams/{team_slug}/memberships/{username}": ("get",),
    "/app/installations/{installation_id}/access_tokens": ("post",),
    "/user": ("get",),
    "/users/{username}": ("get",),
    "/app": ("get",),
}
_ANY_CALL: Final = {
    "401": "requires_authentication",
    "403": "forbidden",
    "404": "not_found",
    "422": "validation_failed",
}
_MEDIA_NOISE: Final = ("examples", "example")


def _tidy(node: Any) -> Any:
    """``node`` without the media types' examples (half the cut's size, no use to a
    validator), without a discriminator over an array, with null in a nullable enum;
    other schema keywords are left alone."""
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "content" and isinstance(value, dict):
            out[key] = {
                media: {k: _tidy(v) for k, v in body.items() if k not in _MEDIA_NOISE}
                for media, body in value.items()
            }
        elif key.startswith("x-github"):
            continue
        elif key == "discriminator" and "array" in value.get("mapping", {}):
            continue  # maps an array member (contents' directory): no validator takes it
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _tidy(schema) for name, schema in value.items()}
        else:
            out[key] = _tidy(value)
    enum = out.get("enum")
    if out.get("nullable") is True and isinstance(enum, list) and None not in enum:
        out["enum"] = [*enum, None]  # what "nullable" means here: GitHub sends null
    return out


def cut(full: Mapping[str, Any], served: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """The part of the description ``full`` that ``served`` needs: those operations, the
    path-level parameters, and every component reachable from them by ``$ref``."""
    paths: dict[str, Any] = {}
    for template, methods in served.items():
        item = full["paths"][template]
        kept = {method: _tidy(item[method]) for method in methods}
        for operation in kept.values():
            responses = operation["responses"]
            for status, name in _ANY_CALL.items():
                responses.setdefault(status, {"$ref": f"#/components/responses/{name}"})
        if "parameters" in item:
            kept["parameters"] = item["parameters"]
        paths[template] = kept
    components: dict[str, dict[str, Any]] = {}
    pending: list[Any] = [paths]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                kind, name = ref.removeprefix("#/components/").split("/", 1)
                section = components.setdefault(kind, {})
                if name not in section:
                    section[name] = _tidy(full["components"][kind][name])
                    pending.append(section[name])
            pending.extend(node.values())
    return {
        "openapi": full["openapi"],
        "info": full["info"],
        "servers": [{"url": SERVER}],
        "paths": paths,
        "components": components,
    }


@dataclass(frozen=True)
class Call:
    """One request as openapi-core reads it (``openapi_core.protocols.Request`` with
    ``path_pattern``)."""

    method: str
    path: str
    path_pattern: str
    path_params: Mapping[str, str]
    query: Iterable[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes | None
    content_type: str
    host_url: str = SERVER

    @property
    def parameters(self) -> RequestParameters:
        return RequestParameters(
            query=ImmutableMultiDict(list(self.query)),
            header=Headers(list(self.headers.items())),
            path=dict(self.path_params),
        )


@dataclass(frozen=True)
class Reply:
    """One answer as openapi-core reads it (``openapi_core.protocols.Response``)."""

    status_code: int
    data: bytes
    headers: Headers
    content_type: str = "application/json"


class _Request:
    """Adapts :class:`Call` (frozen) to the mutable attribute openapi-core writes."""

    def __init__(self, call: Call) -> None:
        self.method = call.method.lower()
        self.path = call.path
        self.path_pattern = call.path_pattern
        self.host_url = call.host_url
        self.body = call.body
        self.content_type = call.content_type
        self.parameters = call.parameters


def _reasons(error: Any) -> list[Any]:
    """The schema errors that say most: for a ``oneOf``/``anyOf`` that nothing matched,
    those of the branch of the right type that came closest."""
    if not error.context:
        return [error]
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    right_type = [
        found
        for found in branches.values()
        if not any(sub.validator == "type" and not sub.relative_path for sub in found)
    ]
    return min(right_type or [[best_match(error.context)]], key=len)


def describe(error: BaseException) -> str:
    """One readable line for an openapi-core error: its kind and the schema's reasons."""
    reasons: list[str] = []
    cause: BaseException | None = error
    while cause is not None:
        for found in getattr(cause, "schema_errors", ()) or ():
            for reason in _reasons(found):
                where = "/".join(str(part) for part in reason.absolute_path)
                reasons.append(reason.message[:200] + (f" at /{where}" if where else ""))
        cause = cause.__cause__
    if not reasons:
        return f"{type(error).__name__}: {str(error)[:300]}"
    return f"{type(error).__name__}: " + "; ".join(reasons[:6])


class Description:
    """A cut of GitHub's description, judging calls and answers."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.openapi = OpenAPI.from_dict(dict(spec))  # checks the cut is a valid document

    def request_errors(self, call: Call) -> list[str]:
        return [describe(e) for e in self.openapi.iter_request_errors(_Request(call))]

    def response_errors(self, call: Call, reply: Reply) -> list[str]:
        request = _Request(call)
        return [describe(e) for e in self.openapi.iter_response_errors(request, reply)]


@dataclass(frozen=True)
class Loaded:
    """The description and how long making it took (seconds)."""

    description: Description
    seconds: float


@cache
def github_description() -> Loaded:
    """The cut of GitHub's description for :data:`SERVED`, built once per process."""
    started = time.perf_counter()
    with GITHUB_OPENAPI.open("rb") as handle:
        full = json.load(handle)
    description = Description(cut(full, SERVED))
    return Loaded(description, time.perf_counter() - started)


def reply(status: int, body: bytes, headers: Mapping[str, str], content_type: str) -> Reply:
    """A :class:`Reply` from an aiohttp answer's parts."""
    return Reply(status, body, Headers(list(headers.items())), content_type)


def json_reply(status: int, data: Any) -> Reply:
    """A :class:`Reply` of ``data`` as JSON, for tests of the judge itself."""
    return Reply(status, json.dumps(data).encode(), Headers())
