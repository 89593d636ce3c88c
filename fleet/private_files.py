"""Files only Fleetwarden's own user may read: written whole or not at all.

Secrets at rest (the proxy's per-agent keys, a ChatGPT login) live in the state dir. Each
write goes to a temporary file created with mode 0600 in the same directory, is flushed to
disk, and replaces the old file in one ``rename``: a reader sees the old contents or the
new, never half of either, and a crash mid-write leaves the old file in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (0600); its
    directory is created 0700 when missing. Raises ``OSError``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600, and os.replace keeps that mode.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
