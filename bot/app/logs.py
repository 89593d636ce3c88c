"""Logging: a rotating file in the state dir, short warnings on stderr, secrets redacted.

Secrets never reach a log line by construction (they live only in the environment);
the redacting filter is the second line of defence, for a secret an agent or a
library might echo back. It is the same redactor as the chat services'
(:mod:`fleet.redaction.redactor`): the secrets Fleetwarden knows, and credential shapes.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import stat
import sys
from pathlib import Path
from typing import Final

from fleet.private_files import open_private, private_dir
from fleet.redaction.redactor import Redactor

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


_REDACTED_BY: Final = "fleetwarden_redacted_by"
"""The attribute a record redacted by a :class:`RedactSecrets` is marked with (the filter)."""


class RedactSecrets(logging.Filter):
    """Replaces every secret in a record's final message, and in its traceback, with the
    redactor's label. A record is redacted once: the next handler's filter (the same one)
    finds it done."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _REDACTED_BY, None) is self:
            return True
        setattr(record, _REDACTED_BY, self)
        redaction = self._redactor.snapshot()
        message = record.getMessage()
        redacted = redaction.apply(message)
        if redacted != message or record.exc_info:
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                redacted = f"{redacted}\n{redaction.apply(text)}"
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = redacted, None
        return True


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """The rotating log, each file created 0600 (rotation renames, keeping the mode).

    A record is formatted once, and whether it rolls the file over is judged from what
    this handler wrote since it opened the file, not asked of the file system at each
    record; a file that is not a regular one (``/dev/null``) is never rolled over."""

    _written = 0  # characters in the open file, as RotatingFileHandler counts them
    _regular = True

    def _open(self) -> io.TextIOWrapper:
        fd = open_private(Path(self.baseFilename), os.O_WRONLY | os.O_APPEND)
        os.fchmod(fd, 0o600)
        found = os.fstat(fd)
        self._written, self._regular = found.st_size, stat.S_ISREG(found.st_mode)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            if self._regular and 0 < self.maxBytes <= self._written + len(line):
                self.doRollover()
                if self.stream is None:  # opened when next written to (``delay``)
                    self.stream = self._open()
            self.stream.write(line)
            self.flush()
            self._written += len(line)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


class _NoTraceback(logging.Formatter):
    """One line per record on the terminal; tracebacks go only to the log file."""

    def format(self, record: logging.LogRecord) -> str:
        return f"fleetwarden: {record.levelname.lower()}: {record.getMessage().splitlines()[0]}"


def setup_logging(level: str, log_file: Path | None, redactor: Redactor) -> None:
    """Configure the root logger once, at the entry point."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    redact = RedactSecrets(redactor)

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(_NoTraceback())
    stderr.addFilter(redact)
    root.addHandler(stderr)

    if log_file is not None:
        private_dir(log_file.parent)
        file_handler = _PrivateRotatingFile(
            log_file, maxBytes=10 * 1024 * 1024, backupCount=3, encoding="utf-8"
        )
        file_handler.setLevel(level.upper())
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        file_handler.addFilter(redact)
        root.addHandler(file_handler)
    # asyncssh logs every remote command line at info, and those carry operator text.
    for noisy in ("aiosqlite", "asyncio", "nio", "markdown_it", "asyncssh", "psycopg"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Every request and answer body in full at debug: far more than a log can hold.
    logging.getLogger("discord.http").setLevel(logging.INFO)
