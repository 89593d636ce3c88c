"""Invisible and bidi-control characters are taken out before redaction: a known secret
split by any of them is redacted, and what a reader sees is what was checked."""

from __future__ import annotations

import pytest

from fleet.redaction.invisible import visible
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor

TOKEN = "fake-deploy-" + "0123456789abcdef0123"

# One of each class the redactor must see through, by what it is.
HIDDEN = {
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "left-to-right embedding": "\u202a",
    "right-to-left override": "\u202e",
    "pop directional formatting": "\u202c",
    "left-to-right isolate": "\u2066",
    "pop directional isolate": "\u2069",
    "invisible separator": "\u2063",
    "Mongolian vowel separator": "\u180e",
    "tag character": "\U000e0041",
    "cancel tag": "\U000e007f",
    "variation selector after ASCII": "\ufe0f",
    "supplementary variation selector": "\U000e0100",
    "combining grapheme joiner": "\u034f",
    "Hangul filler": "\u3164",
    "braille blank": "\u2800",
    "escape (terminal control)": "\x1b",
    "NUL": "\x00",
    "DEL": "\x7f",
    "C1 control": "\x9b",
}


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_secret_split_by_an_invisible_character_is_redacted(char: str) -> None:
    """A ``secret_env`` value with the character between each of its letters is found."""
    redactor = Redactor([_Held(Secret(TOKEN, "DEPLOY_TOKEN"))])
    out = redactor.redact(f"deploying with {char.join(TOKEN)} now")
    assert out == "deploying with [redacted: DEPLOY_TOKEN] now"


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
def test_each_invisible_character_is_removed(char: str) -> None:
    """The character itself is gone from what is sent."""
    assert visible(f"a{char}b{char}{char}c") == "abc"


def test_a_credential_shape_split_by_zero_width_spaces_is_redacted() -> None:
    """A token found by its shape (no value known) is found through the characters too."""
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    out = Redactor().redact("\u200b".join(token))
    assert "A1b2C3d4" not in out and out == "[redacted: GitHub Token]"


def test_a_right_to_left_override_no_longer_reverses_a_line() -> None:
    """The bidi controls around text are dropped; the text stays."""
    assert visible("file \u202etxt.exe\u202c done") == "file txt.exe done"


def test_visible_text_is_left_as_it_is() -> None:
    """Emoji with their presentation selector, accents, CJK, tabs and line feeds stay."""
    text = "⚠\ufe0f café 漢字\tdone\n✅ ok — “quoted” …"
    assert visible(text) == text


def test_a_run_of_selectors_keeps_only_the_first() -> None:
    """After an emoji one selector is its presentation; more only hide data."""
    assert visible("⚠\ufe0f\ufe0e\U000e0101\U000e0102 x") == "⚠\ufe0f x"


def test_line_breaks_of_every_kind_become_line_feeds() -> None:
    """A lone carriage return cannot overwrite a terminal line; separators break lines."""
    assert visible("a\rb\r\nc\u2028d\u2029e\x85f") == "a\nb\nc\nd\ne\nf"


class _Held:
    def __init__(self, *secrets: Secret) -> None:
        self.secrets = secrets

    def known_secrets(self) -> tuple[Secret, ...]:
        return self.secrets
