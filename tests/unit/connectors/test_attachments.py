"""Files a message carries: only safe names Fleetwarden made, only UTF-8 text, never past
the size limit (a longer text is cut at a line's end with a note)."""

from __future__ import annotations

import pytest

from connectors.base import MAX_FILE_BYTES, Attachment, safe_file_name


@pytest.mark.parametrize(
    "name",
    ["", ".env", "../x.diff", "a/b.diff", "a..diff", "<img src=x>.js", "a b", "x" * 101, "é.txt"],
)
def test_an_unsafe_name_is_refused(name: str) -> None:
    """Only ASCII letters, digits, ``.``, ``_`` and ``-``, from a letter or digit, no ``..``."""
    with pytest.raises(ValueError, match="safe file name"):
        Attachment(name, "text/plain", b"x")


def test_only_utf8_text_within_the_limit_is_a_file() -> None:
    """The redactor reads every byte: a binary type, bytes that are not UTF-8 and a file
    past the limit are refused."""
    with pytest.raises(ValueError, match="text type"):
        Attachment("a.png", "image/png", b"x")
    with pytest.raises(ValueError):
        Attachment("a.txt", "text/plain", b"\xff\xfe")
    with pytest.raises(ValueError, match="over"):
        Attachment("a.txt", "text/plain", b"x" * (MAX_FILE_BYTES + 1))
    assert Attachment("a.diff", "text/x-diff", "ü\n".encode()).data == "ü\n".encode()


def test_a_long_text_is_cut_at_a_line_end_with_a_note() -> None:
    """Past the limit the text is cut after a whole line and a last line says how many
    bytes are missing; a text that fits is kept whole."""
    line = "+" + "é" * 40 + "\n"
    text = line * (MAX_FILE_BYTES // len(line.encode()) + 100)
    file = Attachment.of_text("big.diff", text, "text/x-diff")
    data = file.data.decode()
    kept, note = data.rsplit("\n[cut here: ", 1)
    assert len(file.data) <= MAX_FILE_BYTES and kept.endswith(line) and text.startswith(kept)
    missing = len(text.encode()) - len(kept.encode())
    assert note == f"{missing} of {len(text.encode())} bytes not included]\n"
    assert Attachment.of_text("small.diff", "a\n").data == b"a\n"


@pytest.mark.parametrize(
    ("words", "suffix", "made"),
    [
        ("coder-1", ".diff", "coder-1.diff"),
        ("<img src=x onerror=alert(1)>", ".js", "img-src-x-onerror-alert-1-.js"),
        ("../../etc/passwd", "", "etc-passwd"),
        ("...", ".diff", "file.diff"),
        ("a" * 200, ".diff", "a" * 95 + ".diff"),
    ],
)
def test_safe_file_name_makes_a_name_of_any_words(words: str, suffix: str, made: str) -> None:
    """Runs of other characters become ``-``; leading dots go; it is cut to 100."""
    assert safe_file_name(words, suffix) == made
    Attachment(made, "text/plain", b"")  # accepted as it is
