"""The refusals of an MCP server's entry (:mod:`fleet.mcp.config.schema`), each a
:class:`~pydantic_core.PydanticCustomError` said at its own key or item
(:func:`raise_each`), never with the offending value (a secret may be among them)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


def twice(kind: str, key: str) -> PydanticCustomError:
    return PydanticCustomError(
        "mcp_twice",
        "{kind} {name} is given plain and from a variable: keep it in one of them",
        {"kind": kind, "name": key},
    )


def oauth_twice(key: str) -> PydanticCustomError:
    return PydanticCustomError(
        "mcp_oauth_twice",
        "header {key} is the OAuth token Fleetwarden gets with oauth: remove it here, or "
        "remove oauth",
        {"key": key},
    )


def spelled_twice(key: str, first: str) -> PydanticCustomError:
    return PydanticCustomError(
        "header_twice",
        "header {key} is {first} again (HTTP header names are the same in any case): keep one",
        {"key": key, "first": first},
    )


def misplaced(key: str, kind: str, other: str) -> PydanticCustomError:
    return PydanticCustomError(
        "mcp_misplaced",
        "{key} is for a server with {other}; this is a{n} {kind} server: remove it",
        {"key": key, "other": other, "n": "n" if kind == "HTTP" else "", "kind": kind},
    )


def raise_at_keys(found: Sequence[tuple[str | int, PydanticCustomError]]) -> None:
    """:func:`raise_each` at a model's keys (``headers.X-Team``: a key under a field)."""
    if found:
        raise ValidationError.from_exception_data(
            "McpServerEntry",
            [
                InitErrorDetails(type=error, loc=tuple(str(where).split(".", 1)), input="")
                for where, error in found
            ],
        )


def raise_each(title: str, found: Sequence[tuple[str | int, PydanticCustomError]]) -> None:
    """Raise every problem of ``found``, each at its own key or item (so each is said at
    its own line, all in one pass); nothing when it is empty. The offending values are
    never passed on (a secret may be among them)."""
    if found:
        raise ValidationError.from_exception_data(
            title,
            [InitErrorDetails(type=error, loc=(where,), input="") for where, error in found],
        )


def control_in(what: str) -> PydanticCustomError:
    return PydanticCustomError(
        "control_character",
        "{what} holds a line break or another control character, which could split the "
        "request it is sent in: write it on one line (the value is not shown)",
        {"what": what},
    )


def secret_header_error(name: str) -> PydanticCustomError:
    return PydanticCustomError(
        "secret_header",
        "header {name} looks like it carries a credential, and secrets never go in the config "
        "file: set a variable in Fleetwarden's environment to the header's whole value and "
        "name it in headers_env: {example} (the value is not shown)",
        {"name": name, "example": f"{{{name}: VARIABLE}}"},
    )


def secret_env_error(name: str) -> PydanticCustomError:
    return PydanticCustomError(
        "secret_in_env",
        "{name} looks like a secret, and secrets never go in the config file: set a variable "
        "in Fleetwarden's environment and name it in env_env: {example} (the value is not "
        "shown)",
        {"name": name, "example": f"{{{name}: VARIABLE}}"},
    )


def secret_arg_error(index: int) -> PydanticCustomError:
    return PydanticCustomError(
        "secret_in_args",
        "args[{index}] looks like a credential, and secrets never go in the config file: give "
        "it to the server in a variable (env_env: {example}); the value is not shown",
        {"index": index, "example": "{NAME: VARIABLE}"},
    )
