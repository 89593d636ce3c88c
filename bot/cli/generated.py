"""The code :mod:`dataclasses` generates for each class (its ``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, and a frozen one's ``__setattr__`` and ``__delattr__``), kept
between starts of the command as Python keeps a module's bytecode.

Python compiles that code from source text for every class at every start: for the ~500
classes ``fleetwarden run`` loads, about a fifth of its start (a quarter of a second of
CPU on a small machine). Once :func:`install` is called, each text is compiled once and its
code kept, keyed by the whole text, in one file beside the package's bytecode (its
``__pycache__``, or under ``sys.pycache_prefix``): the same place and the same trust as
its ``.pyc`` files. The file is written only where Python writes bytecode, and only when a
start compiled something new; it opens with Python's magic number, so another Python's
is never read, and what it holds is used only if it is code. Any trouble reading or
writing it, and the text is compiled as Python would compile it: the command goes on.

How: :mod:`dataclasses` calls ``exec`` by name, which Python looks up in the module's
globals before its builtins; :func:`install` puts :meth:`GeneratedCode.exec` there.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import marshal
import os
import sys
import tempfile
from collections.abc import Mapping
from importlib.util import MAGIC_NUMBER, cache_from_source
from pathlib import Path
from types import CodeType
from typing import Any, Final

MAX_ENTRIES: Final = 20_000
"""Past this many texts kept, a start keeps only the ones it used."""

_installed: GeneratedCode | None = None


class GeneratedCode:
    """Generated source texts and their code, read from ``path`` (None: kept in memory)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._kept: dict[str, bytes] | None = None  # read when first asked for
        self._new: dict[str, bytes] = {}
        self._used: set[str] = set()
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
        code = self._code(source)
        self._used.add(source)
        builtins.exec(code, globals, locals)

    def _code(self, source: str) -> CodeType:
        data = self._read().get(source) or self._new.get(source)
        if data is not None:
            with contextlib.suppress(EOFError, ValueError, TypeError):
                kept = marshal.loads(data)
                if isinstance(kept, CodeType):
                    return kept
        # As exec compiles a text: nothing inherited from this module (its
        # ``from __future__ import annotations`` would make every annotation a string).
        code = compile(source, "<string>", "exec", dont_inherit=True)
        self._new[source] = marshal.dumps(code)
        self.compiled += 1
        return code

    def _read(self) -> dict[str, bytes]:
        if self._kept is None:
            self._kept = _read(self.path) if self.path is not None else {}
        return self._kept

    def save(self) -> None:
        """Write what this process compiled, with what was kept, if Python writes
        bytecode here; nothing when it compiled nothing."""
        if not self._new or self.path is None or sys.dont_write_bytecode:
            return
        kept = {**self._read(), **self._new}
        if len(kept) > MAX_ENTRIES:
            kept = {source: kept[source] for source in list(self._used) if source in kept}
        with contextlib.suppress(OSError):
            _write(self.path, MAGIC_NUMBER + marshal.dumps(kept))
            self._kept, self._new = kept, {}


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
    """The file, beside this module's bytecode; None where Python keeps none."""
    try:
        pyc = Path(cache_from_source(__file__))
    except NotImplementedError:  # no cache tag: this Python keeps no bytecode
        return None
    return pyc.with_name(f"dataclass-code-2.{sys.implementation.cache_tag}.bin")


def _read(path: Path) -> dict[str, bytes]:
    """The texts and code kept in ``path``; none if it is missing, another Python's, or
    not what this module writes."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    if not data.startswith(MAGIC_NUMBER):
        return {}
    try:
        kept = marshal.loads(data[len(MAGIC_NUMBER) :])
    except (EOFError, ValueError, TypeError):
        return {}
    if not isinstance(kept, dict):
        return {}
    return {k: v for k, v in kept.items() if isinstance(k, str) and isinstance(v, bytes)}


def _write(path: Path, data: bytes) -> None:
    """``data`` into ``path`` whole, or not at all (another start may read it meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".dataclass-code.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(name, 0o644)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
