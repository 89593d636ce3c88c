"""Logging: a rotating file in the state dir, short warnings on stderr, secrets redacted.

Secrets never reach a log line by construction (they live only in the environment);
the redacting filter is the second line of defence, for a secret an agent or a
library might echo back.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from fleet.private_files import open_private, private_dir

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MIN_SECRET_LEN = 6


class RedactSecrets(logging.Filter):
    """Replaces every known secret value in a record's final message with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted(
            {s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message or record.exc_info:
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                for secret in self._secrets:
                    text = text.replace(secret, "***")
                redacted = f"{redacted}\n{text}"
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = redacted, None
        return True


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """The rotating log, each file created 0600 (rotation renames, keeping the mode)."""

    def _open(self) -> io.TextIOWrapper:
        fd = open_private(Path(self.baseFilename), os.O_WRONLY | os.O_APPEND)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


class _NoTraceback(logging.Formatter):
    """One line per record on the terminal; tracebacks go only to the log file."""

    def format(self, record: logging.LogRecord) -> str:
        return f"fleetwarden: {record.levelname.lower()}: {record.getMessage().splitlines()[0]}"


def setup_logging(level: str, log_file: Path | None, secrets: Iterable[str]) -> None:
    """Configure the root logger once, at the entry point."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    redact = RedactSecrets(secrets)

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
    for noisy in ("aiosqlite", "asyncio", "nio", "markdown_it"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Every request and answer body in full at debug: far more than a log can hold.
    logging.getLogger("discord.http").setLevel(logging.INFO)
