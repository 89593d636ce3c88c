"""Config problems: what is wrong with a config file, said in plain words, and on which line.

:func:`compose` parses the YAML keeping PyYAML's node tree and reports keys set twice in
one mapping (which PyYAML would silently drop); a :class:`Locator` maps a place in the
data (``("agents", 1, "runtime")``) back to a line and a key path; :func:`translate`
rewrites one of pydantic's errors as a :class:`ConfigProblem` an operator can act on.
:class:`ConfigError` carries every problem found. The schema itself lives in
:mod:`bot.config`, which re-exports :class:`ConfigError` and :class:`ConfigProblem`.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.config.reading.yaml_hints import layout_hint, tight_colon
from fleet.errors import FleetwardenError
from fleet.redaction.shapes import credential_shaped, shown_key
from fleet.schema import looks_secret, unknown_value_message

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "Locator",
    "compose",
    "describe",
    "in_line_order",
    "translate",
]


# --- Problems ---------------------------------------------------------------------------


class ConfigProblem(NamedTuple):
    """One thing wrong with a config file, and where: ``file:line: key.path: message``."""

    file: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


_LOCATED = re.compile(r"(?P<file>[^\n]+?):(?P<line>\d+): ")


def in_line_order(lines: Iterable[str]) -> list[str]:
    """Problems as printed (``FILE:LINE: …``) in the order of the files they name (as each
    first appears) and by line within each; lines naming no line follow, as they came."""
    ranks: dict[str, int] = {}
    located: list[tuple[int, int, int, str]] = []
    rest: list[str] = []
    for n, text in enumerate(lines):
        where = _LOCATED.match(text)
        if where is None:
            rest.append(text)
            continue
        rank = ranks.setdefault(where["file"], len(ranks))
        located.append((rank, int(where["line"]), n, text))
    return [text for *_, text in sorted(located)] + rest


class ConfigError(FleetwardenError):
    """The configuration cannot be used. ``str()`` is one line per problem."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


# --- YAML: parsing, and mapping a location back to a line --------------------------------


def compose(text: str, file_name: str) -> tuple[Node | None, object, list[ConfigProblem]]:
    """The node tree, the data it constructs, and its duplicate keys."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters right away
        root = loader.get_single_node()
        if root is None:
            return None, None, []
        # Before constructing: construction flattens `<<` merges into the tree.
        duplicates = _duplicate_keys(root, file_name)
        return root, loader.construct_document(root), duplicates
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, text, file_name)]) from None
    except RecursionError:
        problem = ConfigProblem(file_name, None, "", "invalid YAML: nested too deeply")
        raise ConfigError([problem]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, text: str, file_name: str) -> ConfigProblem:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return ConfigProblem(
            file_name, line, "", f"invalid YAML: character #x{ord(char):04x} is not allowed"
        )
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        hint = layout_hint(exc, text)
        if hint is not None:
            line, what = hint
            return ConfigProblem(file_name, line, "", f"invalid YAML: {what}")
        mark = exc.problem_mark
        message = f"invalid YAML at column {mark.column + 1}: {exc.problem or 'malformed'}"
        if exc.context:
            context_mark = exc.context_mark
            on_line = f" on line {context_mark.line + 1}" if context_mark is not None else ""
            message += f" ({exc.context}{on_line})"
        if "'\\t'" in (exc.problem or ""):
            message += "; indent with spaces, not tabs"
        return ConfigProblem(file_name, mark.line + 1, "", message)
    return ConfigProblem(file_name, None, "", f"invalid YAML: {' '.join(str(exc).split())}")


def _duplicate_keys(root: Node, file_name: str) -> list[ConfigProblem]:
    """Keys set twice in one mapping. PyYAML silently keeps the last; we report the repeat."""
    problems: list[ConfigProblem] = []
    visited: set[int] = set()

    def walk(node: Node, path: str) -> None:
        if id(node) in visited:  # aliases share nodes, and may even form cycles
            return
        visited.add(id(node))
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")
        elif isinstance(node, MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag.endswith(":merge"):
                    walk(value_node, path)
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                shown = shown_key(key)
                key_path = f"{path}.{shown}" if path else shown
                if key in first_line:
                    message = (
                        f"duplicate key {shown!r}: already set on line {first_line[key]}; "
                        "YAML would silently keep only this last one, so remove one of them"
                    )
                    problems.append(ConfigProblem(file_name, line, key_path, message))
                else:
                    first_line[key] = line
                walk(value_node, key_path)

    walk(root, "")
    return problems


class Locator:
    """Maps a location in the data (``("agents", 1, "runtime")``) to a line and a key path."""

    def __init__(self, root: Node | None) -> None:
        self._root = root

    def __call__(self, loc: tuple[int | str, ...]) -> tuple[int | None, str, Node | None]:
        node = self._root
        line = node.start_mark.line + 1 if node is not None else None
        path = ""
        key_node: Node | None = None
        for part in loc:
            if part == "[key]":  # pydantic's marker: the problem is the key itself
                node = key_node
                continue
            if isinstance(node, SequenceNode) and isinstance(part, str):
                # A list of names read as a mapping (an agent's `mcp: [a, b]`): the item.
                part = next((n for n, item in enumerate(node.value) if _scalar(item) == part), part)
            shown = shown_key(part) if isinstance(part, str) else part  # a pasted secret
            if isinstance(node, SequenceNode) or (node is None and isinstance(part, int)):
                path += f"[{shown}]"
            else:
                path += f".{shown}" if path else str(shown)
            if isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            elif isinstance(node, MappingNode):
                # The last of equal keys: the value PyYAML kept.
                pairs = [
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, ScalarNode) and k.value == str(part)
                ]
                key_node, node = pairs[-1] if pairs else (None, None)
                if key_node is not None:
                    line = key_node.start_mark.line + 1
            else:
                node = None
        return line, path, node


def _scalar(node: Node) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


# --- Pydantic's errors, in plain words -----------------------------------------------------

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping (key: value)",
    "mapping_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "path_type": "a path",
    "invalid_key": "a string as the key",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def translate(
    error: ErrorDetails,
    locate: Locator,
    file_name: str,
    *,
    schema: type[BaseModel],
    key_nouns: Mapping[type[BaseModel], str],
) -> ConfigProblem:
    """One of pydantic's errors from validating against ``schema`` (the top-level model),
    as a problem on its line. ``key_nouns`` says what the keys of a section are called
    (``{ConnectorsSection: "connector"}``, subclasses included); by default, a "key"."""
    loc = tuple(error["loc"])
    line, path, node = locate(loc)
    return ConfigProblem(file_name, line, path, _message(error, loc, node, schema, key_nouns))


def _message(
    error: ErrorDetails,
    loc: tuple[int | str, ...],
    node: Node | None,
    schema: type[BaseModel],
    key_nouns: Mapping[type[BaseModel], str],
) -> str:
    kind, value = error["type"], error["input"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    # Never echo what sits under a *_env key: it may be a pasted secret.
    hide = any(isinstance(part, str) and part.endswith("_env") for part in loc)
    if kind == "extra_forbidden":
        return _unknown_key_message(loc, schema, key_nouns)
    if kind == "missing":
        return "required key is missing"
    if kind in ("literal_error", "enum"):
        return _bad_choice_message(loc, value, ctx, hide, schema)
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        limit = ctx.get(bound)
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)  # "at most 30", not "at most 30.0"
        return f"must be {words} {limit}, found {describe(value, hide)}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    expected = _EXPECTED.get(kind)
    if expected is None:
        return str(error["msg"]).removeprefix("Value error, ")
    message = f"expected {expected}, found {describe(value, hide)}"
    if expected.startswith("a mapping") and isinstance(value, str) and not hide:
        message += tight_colon(value)
    scalar = isinstance(value, bool | int | float | date)
    if kind == "string_type" and scalar and isinstance(node, ScalarNode) and not hide:
        message += f'; put it in quotes to keep it as text: "{node.value}"'
    return message


def _unknown_key_message(
    loc: tuple[int | str, ...], schema: type[BaseModel], key_nouns: Mapping[type[BaseModel], str]
) -> str:
    key = loc[-1]
    model = _model_at(loc[:-1], schema)
    if isinstance(key, str) and credential_shaped(key):
        return (
            "this key looks like a credential, and secrets never go in the config file: set "
            "an environment variable and name it with the *_env key of the section that "
            "needs it (the key is not shown)"
        )
    allowed = [f.alias or n for n, f in model.model_fields.items()] if model is not None else []
    if isinstance(key, str) and f"{key}_env" in allowed:
        return (
            "secrets never go in the config file: set an environment variable and name it "
            f"with {key}_env"
        )
    if isinstance(key, str) and key.endswith("_env") and loc[:1] == ("providers",):
        return (
            f"unknown key {key!r}: a provider holds no credential of its own — name the "
            "variable holding an API key in an account (`accounts: NAME: {kind: api_key, "
            f"provider: {loc[1] if len(loc) > 2 else 'anthropic'}, key_env: VAR}}`, see "
            "docs/accounts.md); allowed here: " + ", ".join(allowed)
        )
    misspelt = isinstance(key, str) and difflib.get_close_matches(key, allowed, 1, 0.85)
    if isinstance(key, str) and looks_secret(key) and not key.endswith("_env") and not misspelt:
        if "secret_env" in allowed:
            return (
                "secrets never go in the config file: set an environment variable and list "
                "its name in secret_env"
            )
        return (
            "secrets never go in the config file: set an environment variable and name it "
            "with the *_env key of the section that needs it; allowed here: " + ", ".join(allowed)
        )
    noun = "key"
    if model is not None:
        noun = next((n for section, n in key_nouns.items() if issubclass(model, section)), noun)
    return unknown_value_message(noun, key, allowed)


def _bad_choice_message(
    loc: tuple[int | str, ...],
    value: object,
    ctx: Mapping[str, Any],
    hide: bool,
    schema: type[BaseModel],
) -> str:
    annotation = _type_at(loc, schema)
    allowed: list[str] = []
    if get_origin(annotation) is Literal:
        allowed = [str(arg) for arg in get_args(annotation)]
    noun = str(loc[-1]).replace("_", " ") if loc and isinstance(loc[-1], str) else "value"
    if allowed and isinstance(value, str) and not hide:
        return unknown_value_message(noun, value, allowed)
    expected = ", ".join(allowed) if allowed else ctx.get("expected", "?")
    return f"expected one of {expected}; found {describe(value, hide)}"


def describe(value: object, hide: bool = False) -> str:
    """What YAML produced, in YAML's words: ``a string ('x')``, ``an empty value (null)``."""
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return "a boolean" if hide else f"a boolean ({str(value).lower()})"
    kinds: list[tuple[type, str]] = [
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (date, "a date"),
        (list, "a list"),
        (dict, "a mapping"),
    ]
    for kind, words in kinds:
        if isinstance(value, kind):
            if hide or isinstance(value, list | dict):
                return words
            if isinstance(value, str) and credential_shaped(value):
                return f"{words} (it looks like a credential: not shown)"
            shown = repr(value) if isinstance(value, str) else str(value)
            return f"{words} ({shown[:40] + '...' if len(shown) > 43 else shown})"
    return f"a {type(value).__name__}"


def _type_at(loc: tuple[int | str, ...], schema: type[BaseModel]) -> object:
    """The schema's type annotation at ``loc``, or ``None`` if the schema has no such place."""
    annotation: object = schema
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            by_key = {f.alias or n: f for n, f in annotation.model_fields.items()}
            field_info = by_key.get(str(part))
            if field_info is None:
                return None
            annotation = field_info.annotation
            continue
        origin, args = get_origin(annotation), get_args(annotation)
        if origin in (tuple, list) and isinstance(part, int) and args:
            annotation = args[0]
        elif origin in (dict, Mapping) and len(args) == 2:
            annotation = args[1]
        else:
            return None
    return _unwrap(annotation)


def _model_at(loc: tuple[int | str, ...], schema: type[BaseModel]) -> type[BaseModel] | None:
    annotation = _type_at(loc, schema)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _unwrap(annotation: object) -> object:
    """``X | None`` → ``X``, ``Annotated[X, ...]`` → ``X``."""
    while True:
        origin = get_origin(annotation)
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        optional = origin in (Union, types.UnionType) and len(args) == 1
        if optional or hasattr(annotation, "__metadata__"):  # X | None, or Annotated[X, ...]
            annotation = args[0]
        else:
            return annotation
