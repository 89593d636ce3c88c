"""Tests for bot.app.logs: secret redaction and the file/stderr logging setup."""

from __future__ import annotations

import io
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app.logs import RedactSecrets, setup_logging
from fleet.redaction.known import EnvSecrets
from fleet.redaction.redactor import Redactor

SECRET = "s3cr3t-token-value"
OTHER = "hunter2hunter2"


def redactor(*values: str) -> Redactor:
    """A redactor knowing ``values`` as the variables SECRET_1, SECRET_2…"""
    environ = {f"SECRET_{n}": value for n, value in enumerate(values, 1)}
    return Redactor([EnvSecrets(environ, environ)])


@pytest.fixture
def redacted() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger whose one handler redacts SECRET and OTHER, and the text it wrote."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactSecrets(redactor(SECRET, OTHER, "abc12")))
    logger = logging.getLogger("tests.unit.bot.app.test_logs.redacted")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, out
    logger.removeHandler(handler)
    handler.close()


def test_secret_in_the_message_is_replaced(
    redacted: tuple[logging.Logger, io.StringIO],
) -> None:
    """A secret value written into the message text is shown as its label."""
    logger, out = redacted
    logger.warning("connecting with %s now", "x")
    logger.warning(f"token={SECRET};other={OTHER}")  # noqa: G004 — the point of the test
    lines = out.getvalue().splitlines()
    assert lines == [
        "WARNING connecting with x now",
        "WARNING token=[redacted: SECRET_1];other=[redacted: SECRET_2]",
    ]


def test_secret_in_percent_args_is_replaced(
    redacted: tuple[logging.Logger, io.StringIO],
) -> None:
    """A secret passed as a %-style argument is redacted in the formatted message."""
    logger, out = redacted
    logger.info("login as %s with %r", "bot", SECRET)
    assert out.getvalue() == "INFO login as bot with '[redacted: SECRET_1]'\n"


def test_secret_in_an_exception_traceback_is_replaced(
    redacted: tuple[logging.Logger, io.StringIO],
) -> None:
    """A secret in an exception's message is redacted in the logged traceback too."""
    logger, out = redacted
    try:
        raise RuntimeError(f"server rejected {SECRET}")
    except RuntimeError:
        logger.exception("request failed")
    text = out.getvalue()
    assert SECRET not in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: server rejected [redacted: SECRET_1]" in text
    assert text.startswith("ERROR request failed\n")


def test_short_values_are_not_redacted(
    redacted: tuple[logging.Logger, io.StringIO],
) -> None:
    """Values under six characters are never redacted: they would match far too often."""
    logger, out = redacted
    logger.info("value abc12 stays")
    assert out.getvalue() == "INFO value abc12 stays\n"


def test_a_secret_containing_another_is_redacted_whole() -> None:
    """When one secret contains another, the longer one is replaced as a whole."""
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "key %s", ("abcdef-ghijkl",), None)
    RedactSecrets(redactor("abcdef", "abcdef-ghijkl")).filter(record)
    assert record.getMessage() == "key [redacted: SECRET_2]"


def test_without_secrets_records_pass_unchanged() -> None:
    """With nothing to redact the record keeps its msg, args and exc_info."""
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "n=%d", (3,), None)
    assert RedactSecrets(Redactor()).filter(record)
    assert (record.msg, record.args) == ("n=%d", (3,))


def test_credential_shapes_are_redacted_in_the_log_too() -> None:
    """The log's redactor is the chat's: a token no variable holds is taken out by its shape."""
    token = "gh" + "p_" + "0123456789abcdefghijABCDEFGHIJ012345"
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "pushed with %s", (token,), None)
    RedactSecrets(Redactor()).filter(record)
    assert record.getMessage() == "pushed with [redacted: GitHub Token]"


def test_setup_logging_writes_info_to_the_file_and_only_warnings_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    """INFO and up go to the log file; stderr gets only WARNING and up."""
    log_file = tmp_path / "logs" / "fleetwarden.log"
    setup_logging("info", log_file, Redactor())
    logger = logging.getLogger("fleetwarden.test")
    logger.debug("a debug line")
    logger.info("an info line")
    logger.warning("a warning line")

    written = log_file.read_text(encoding="utf-8")
    assert "a debug line" not in written
    assert "INFO fleetwarden.test: an info line" in written
    assert "WARNING fleetwarden.test: a warning line" in written
    assert capsys.readouterr().err == "fleetwarden: warning: a warning line\n"


def test_setup_logging_keeps_tracebacks_out_of_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    """An error with a traceback is one line on stderr; the traceback goes to the file only."""
    log_file = tmp_path / "fleetwarden.log"
    setup_logging("info", log_file, redactor(SECRET))
    try:
        raise ValueError(f"bad token {SECRET}")
    except ValueError:
        logging.getLogger("fleetwarden.test").exception("it broke\nacross lines")

    assert capsys.readouterr().err == "fleetwarden: error: it broke\n"
    written = log_file.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in written
    assert "ValueError: bad token [redacted: SECRET_1]" in written
    assert SECRET not in written


def test_setup_logging_redacts_secrets_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    """Secrets given to setup_logging are redacted on stderr as well as in the file."""
    setup_logging("info", tmp_path / "fleetwarden.log", redactor(SECRET))
    logging.getLogger("fleetwarden.test").warning("leaked %s", SECRET)
    assert capsys.readouterr().err == "fleetwarden: warning: leaked [redacted: SECRET_1]\n"


def test_setup_logging_without_a_file_logs_only_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    """With no log file, warnings still reach stderr and no file is created."""
    setup_logging("info", None, Redactor())
    logging.getLogger("fleetwarden.test").error("no file")
    assert capsys.readouterr().err == "fleetwarden: error: no file\n"
    assert list(tmp_path.iterdir()) == []


def test_the_log_file_rolls_over_at_its_size_each_file_private(
    tmp_path: Path, restore_root_logging: None
) -> None:
    """The log file is rolled over before a line would take it past its size, counting
    what it held when opened; every file is 0600, and no line is lost or cut."""
    log_file = tmp_path / "fleetwarden.log"
    log_file.write_text("x" * 60 + "\n", encoding="utf-8")
    setup_logging("info", log_file, Redactor())
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    handler.maxBytes = 200
    logger = logging.getLogger("fleetwarden.test")
    for n in range(6):
        logger.info("line %d %s", n, "y" * 40)
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == [
        "fleetwarden.log",
        *(f"fleetwarden.log.{n}" for n in (1, 2, 3)),
    ]
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert all(len(f.read_text(encoding="utf-8")) <= 200 for f in files)
    lines = [line for f in reversed(files) for line in f.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == "x" * 60
    assert [line.split("line ")[1][0] for line in lines[1:]] == list("012345")


def test_a_record_through_two_handlers_is_redacted_once_and_both_show_it_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    """A warning goes to stderr and the file: both show the label, neither the secret."""
    log_file = tmp_path / "fleetwarden.log"
    setup_logging("info", log_file, redactor(SECRET))
    logging.getLogger("fleetwarden.test").warning("sent %s twice", SECRET)
    assert capsys.readouterr().err == "fleetwarden: warning: sent [redacted: SECRET_1] twice\n"
    assert "sent [redacted: SECRET_1] twice" in log_file.read_text(encoding="utf-8")
