"""The code :mod:`dataclasses` generates for each class (its ``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, and a frozen one's ``__setattr__`` and ``__delattr__``), kept
between starts of the command as Python keeps a module's bytecode.

Python compiles that code from source text for every class at every start: for the ~500
classes ``fleetwarden run`` loads, about a fifth of its start (a quarter of a second of
CPU on a small machine). Once :func:`install` is called, each text is compiled once and its
code kept, keyed by the whole text, in one file beside the package's bytecode
(:mod:`bot.cli.kept` says where, when it is written and what is never read). What it
holds is used only if it is code; any trouble, and the text is compiled as Python would
compile it: the command goes on.

How: :mod:`dataclasses` calls ``exec`` by name, which Python looks up in the module's
globals before its builtins; :func:`install` puts :meth:`GeneratedCode.exec` there.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import marshal
from collections.abc import Mapping
from pathlib import Path
from types import CodeType
from typing import Any, Final

from bot.cli.kept import KeptFile
from bot.cli.kept import where as kept_where

NAME: Final = "dataclass-code-2"
"""The file's name, before this Python's cache tag."""

_installed: GeneratedCode | None = None


class GeneratedCode:
    """Generated source texts and their code, read from ``path`` (None: kept in memory)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._kept = KeptFile(path)
        self.compiled = 0  # texts this process compiled

    def exec(
        self,
        source: Any,
        globals: dict[str, Any] | None = None,
        locals: Mapping[str, object] | None = None,
    ) -> None:
        """``exec(source, globals, locals)``, with a source text's code kept."""
        if not isinstance(source, str):
            builtins.exec(source, globals, locals)
            return
        builtins.exec(self._code(source), globals, locals)

    def _code(self, source: str) -> CodeType:
        data = self._kept.get(source)
        if data is not None:
            with contextlib.suppress(EOFError, ValueError, TypeError):
                kept = marshal.loads(data)
                if isinstance(kept, CodeType):
                    return kept
        # As exec compiles a text: nothing inherited from this module (its
        # ``from __future__ import annotations`` would make every annotation a string).
        code = compile(source, "<string>", "exec", dont_inherit=True)
        self._kept.put(source, marshal.dumps(code))
        self.compiled += 1
        return code

    def save(self) -> None:
        """Write what this process compiled, with what was kept (:meth:`KeptFile.save`)."""
        self._kept.save()


def install() -> GeneratedCode | None:
    """Keep what :mod:`dataclasses` generates from here on (saved at exit, and by
    :func:`save`); None where it is kept already, or Python keeps no bytecode."""
    global _installed
    if _installed is not None or "exec" in vars(dataclasses):
        return None
    path = where()
    if path is None:
        return None
    _installed = GeneratedCode(path)
    vars(dataclasses)["exec"] = _installed.exec  # a module global, found before the builtin
    atexit.register(_installed.save)
    return _installed


def save() -> None:
    """Write what was compiled so far, if :func:`install` was called."""
    if _installed is not None:
        _installed.save()


def where() -> Path | None:
    """The file, beside this package's bytecode; None where Python keeps none."""
    return kept_where(NAME)
