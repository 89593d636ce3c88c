"""What the fake provider refuses in a request body, answered as the real APIs answer it.

Checked after the credential, before a turn is taken:

- Anthropic Messages (and ``count_tokens``): a body that is not a JSON object, or lacks
  ``model``, ``messages`` or ``max_tokens`` (``count_tokens``: ``model``, ``messages``),
  is 400 ``invalid_request_error``; a model the fake does not serve is 404
  ``not_found_error``. Shape: ``{"type":"error","error":{"type","message"}}``.
- OpenAI Responses and Chat Completions: 400 ``invalid_request_error`` for a body that is
  not JSON (no code) or lacks ``model`` / ``input`` / ``messages``
  (``missing_required_parameter``, ``param`` naming the field); 404 ``model_not_found``.
  Shape: ``{"error":{"message","type","param","code"}}``.
- ChatGPT's Codex backend: FastAPI's ``{"detail": "…"}``, 400 for all of it, an
  unsupported model included; ``input`` must be a list. (It has also been seen to require
  ``instructions`` of other clients, but Codex 0.169.0 sends none and is served: not
  checked.)
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from tests.fakes.provider import sse
from tests.fakes.provider.sse import Json

__all__ = ["Kind", "Refusal", "anthropic_refusal", "check_body", "check_codex_body"]

Kind = Literal["anthropic", "count_tokens", "responses", "chat"]

_REQUIRED: dict[Kind, tuple[str, ...]] = {
    "anthropic": ("model", "messages", "max_tokens"),
    "count_tokens": ("model", "messages"),
    "responses": ("model", "input"),
    "chat": ("model", "messages"),
}
_OPENAI_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
    "contact us through our help center at help.openai.com.)"
)
_NOT_JSON = object()  # what a body that does not parse reads as


@dataclass(frozen=True)
class Refusal:
    """A request turned away: its HTTP status and error body (request id added on send)."""

    status: int
    body: Json


def anthropic_refusal(status: int, message: str) -> Refusal:
    kind = sse.ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return Refusal(status, {"type": "error", "error": {"type": kind, "message": message}})


def _openai(status: int, message: str, param: str | None, code: str | None) -> Refusal:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return Refusal(status, {"error": error})


def _detail(message: str) -> Refusal:
    return Refusal(400, {"detail": message})


def _load(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _model_refusal(kind: Kind, model: str) -> Refusal:
    if kind in ("anthropic", "count_tokens"):
        return anthropic_refusal(404, f"model: {model}")
    message = f"The model `{model}` does not exist or you do not have access to it."
    return _openai(404, message, None, "model_not_found")


def check_body(
    kind: Kind, raw: bytes, models: Collection[str] | None, *, fields: bool = True
) -> Refusal | None:
    """The API's refusal of a request body, or None to serve it.

    ``models`` None serves any model; ``fields`` False skips the JSON and required-field
    checks (a body that does not parse is then served as ``{}``).
    """
    body = _load(raw)
    anthropic = kind in ("anthropic", "count_tokens")
    if not fields:
        model = body.get("model") if isinstance(body, dict) else None
        if models is None or not isinstance(model, str) or model in models:
            return None
        return _model_refusal(kind, model)
    if body is _NOT_JSON:
        if anthropic:
            return anthropic_refusal(400, "The request body is not valid JSON.")
        return _openai(400, _OPENAI_NOT_JSON, None, None)
    if not isinstance(body, dict):
        if anthropic:
            return anthropic_refusal(400, "Input should be an object.")
        message = f"Invalid type for request body: expected an object, but got {_kind(body)}."
        return _openai(400, message, None, "invalid_type")
    for name in _REQUIRED[kind]:
        if name not in body or body[name] is None:
            if anthropic:
                return anthropic_refusal(400, f"{name}: Field required")
            message = f"Missing required parameter: '{name}'."
            return _openai(400, message, name, "missing_required_parameter")
    model = body["model"]
    if not isinstance(model, str):
        if anthropic:
            return anthropic_refusal(400, "model: Input should be a valid string")
        message = f"Invalid type for 'model': expected a string, but got {_kind(model)}."
        return _openai(400, message, "model", "invalid_type")
    if models is not None and model not in models:
        return _model_refusal(kind, model)
    return None


def check_codex_body(raw: bytes, models: Collection[str] | None) -> Refusal | None:
    """ChatGPT's Codex backend's refusal of a responses body, or None to serve it."""
    body = _load(raw)
    if not isinstance(body, dict):
        return _detail("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _detail("Model is required")
    if models is not None and model not in models:
        return _detail(
            f"The '{model}' model is not supported when using Codex with a ChatGPT account."
        )
    if not isinstance(body.get("input"), list):
        return _detail("Input must be a list")
    return None


def _kind(value: Any) -> str:
    """How OpenAI names a JSON value's type in its ``invalid_type`` messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else "an object"
