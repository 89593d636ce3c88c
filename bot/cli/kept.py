"""What one start of the command computes that the next would compute the same, kept between
starts as Python keeps a module's bytecode: :class:`KeptFile`, a table of keys and bytes in
one file beside the package's bytecode (its ``__pycache__``, or under
``sys.pycache_prefix``), the same place and the same trust as its ``.pyc`` files.

Two tables are kept: the code :mod:`dataclasses` generates (:mod:`bot.cli.generated`) and
the compiled regular expressions (:mod:`bot.cli.patterns`). A file is read when first asked
for, and written only where Python writes bytecode and only when a start added something;
it opens with Python's magic number, so another Python's is never read, then a digest of
the rest, so a file damaged since it was written is never read either. Any trouble reading
or writing it, and the command computes what it would have read, as it would without.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
import tempfile
from importlib.util import MAGIC_NUMBER, cache_from_source
from pathlib import Path
from typing import Final

MAX_ENTRIES: Final = 20_000
"""Past this many entries kept, a start keeps only the ones it used."""
_DIGEST: Final = 16  # bytes of BLAKE2b over the table


class KeptFile:
    """Keys and their bytes, read from ``path`` when first asked for (None: kept in
    memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._kept: dict[str, bytes] | None = None
        self._new: dict[str, bytes] = {}
        self._used: set[str] = set()

    def get(self, key: str) -> bytes | None:
        """What is kept for ``key``, if anything (it counts as used)."""
        self._used.add(key)
        return self.peek(key)

    def peek(self, key: str) -> bytes | None:
        """What is kept for ``key``, if anything, without counting it as used."""
        found = self._read().get(key)
        return found if found is not None else self._new.get(key)

    def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` for ``key`` (written by :meth:`save`)."""
        self._used.add(key)
        self._new[key] = data

    def _read(self) -> dict[str, bytes]:
        if self._kept is None:
            self._kept = read(self.path) if self.path is not None else {}
        return self._kept

    def save(self) -> None:
        """Write what this process added, with what was kept, if Python writes bytecode
        here; nothing when it added nothing."""
        if not self._new or self.path is None or sys.dont_write_bytecode:
            return
        kept = {**self._read(), **self._new}
        if len(kept) > MAX_ENTRIES:
            kept = {key: kept[key] for key in list(self._used) if key in kept}
        with contextlib.suppress(OSError):
            write(self.path, encoded(kept))
            self._kept, self._new = kept, {}


def where(name: str) -> Path | None:
    """The file ``name``, beside this package's bytecode, for this Python (its cache tag
    in the name); None where Python keeps no bytecode."""
    try:
        pyc = Path(cache_from_source(__file__))
    except NotImplementedError:  # no cache tag: this Python keeps no bytecode
        return None
    return pyc.with_name(f"{name}.{sys.implementation.cache_tag}.bin")


def encoded(table: dict[str, bytes]) -> bytes:
    """``table`` as :func:`read` reads it: Python's magic number, the digest of the
    rest, the table."""
    payload = marshal.dumps(table)
    return MAGIC_NUMBER + hashlib.blake2b(payload, digest_size=_DIGEST).digest() + payload


def read(path: Path) -> dict[str, bytes]:
    """The keys and bytes kept in ``path``; none if it is missing, another Python's,
    damaged, or not what this module writes."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    if not data.startswith(MAGIC_NUMBER):
        return {}
    digest = data[len(MAGIC_NUMBER) : len(MAGIC_NUMBER) + _DIGEST]
    payload = data[len(MAGIC_NUMBER) + _DIGEST :]
    if hashlib.blake2b(payload, digest_size=_DIGEST).digest() != digest:
        return {}
    try:
        kept = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return {}
    if not isinstance(kept, dict):
        return {}
    return {k: v for k, v in kept.items() if isinstance(k, str) and isinstance(v, bytes)}


def write(path: Path, data: bytes) -> None:
    """``data`` into ``path`` whole, or not at all (another start may read it meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(name, 0o644)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
