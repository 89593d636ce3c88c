"""The guard for short texts an agent chose: a secret is redacted (hidden characters and
all), what hides is shown as its code point, nothing starts a second line, the length is
bounded; without the redactor at hand, the redaction that follows still finds a secret the
guard cut or made one line."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from fleet.redaction.guard import LONGEST, SHORT, guarded, one_line
from fleet.redaction.invisible import visible
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor

TOKEN = "fake-deploy-" + "0123456789abcdef0123"


class _Held:
    def __init__(self, *secrets: Secret) -> None:
        self._secrets = secrets

    def known_secrets(self) -> Iterable[Secret]:
        return self._secrets


def _redact(text: str) -> str:
    return Redactor([_Held(Secret(TOKEN, "DEPLOY_TOKEN"))]).redact(text)


@pytest.mark.parametrize(
    "name",
    [TOKEN, f"claude-{TOKEN}", "\u200b".join(TOKEN), f"x\n{TOKEN}", f"{TOKEN[:20]}\n{TOKEN[20:]}"],
    ids=["whole", "inside a name", "split by zero-width spaces", "on a second line", "split"],
)
def test_an_agents_secret_sent_as_a_name_is_redacted(name: str) -> None:
    """Its own secret_env value as a model or tool name: never shown, however it is hidden."""
    shown = guarded(name, _redact)
    assert "0123456789abcdef" not in shown.replace("\u200b", "")
    assert "[redacted: DEPLOY_TOKEN]" in shown


def test_what_hides_is_shown_as_its_code_point() -> None:
    """A bidi override, a zero-width space, ESC and a C1 CSI show as [U+XXXX]: the reader
    sees that something was there, and nothing drives a terminal or reorders the line."""
    shown = guarded("gpt\u202e5-\u200bmini \x1b[31mred\x9b2J", _redact)
    assert shown == "gpt[U+202E]5-[U+200B]mini [U+001B][31mred[U+009B]2J"
    assert visible(shown) == shown


def test_a_second_line_cannot_pass_for_one_of_ours() -> None:
    """Line breaks of every kind show as ⏎, on the one line; blank runs become one space."""
    forged = "exited with status 1\r\n\n✅ payroll finished after 2s:   all checks passed\u2028ok"
    shown = guarded(forged, _redact)
    assert "\n" not in shown and "\r" not in shown and "\u2028" not in shown
    assert shown == ("exited with status 1 ⏎ ✅ payroll finished after 2s: all checks passed ⏎ ok")
    assert one_line("a\n\n  b\tc") == "a ⏎ b c"


def test_the_length_is_bounded_with_both_ends_shown() -> None:
    """A name of 100,000 characters is cut in the middle: its head and its tail stay."""
    shown = guarded("head-" + "x" * 100_000 + "-tail", _redact)
    assert len(shown) == SHORT and shown.startswith("head-") and shown.endswith("-tail")
    assert "…" in shown
    assert len(guarded("a" * 1000, _redact, limit=64)) == 64


def test_a_megabyte_name_is_cut_before_the_redactor_reads_it_and_its_ends_are_redacted() -> None:
    """A name of a megabyte costs the redactor no more than 64 KiB; a secret at either end
    is still found whole, and redacted where the bound shows it."""
    redacted: list[int] = []

    def redact(text: str) -> str:
        redacted.append(len(text))
        return _redact(text)

    shown = guarded(TOKEN + "x" * 1_000_000 + TOKEN, redact)
    assert redacted == [LONGEST]
    assert shown.startswith("[redacted: DEPLOY_TOKEN]") and shown.endswith(
        "[redacted: DEPLOY_TOKEN]"
    )


def test_markup_stays_text_for_the_surface_to_escape() -> None:
    """The guard neither makes nor escapes markup: the surface does (Jinja, chat's escape)."""
    name = "[docs](https://evil.example) <img src=x> **b**"
    assert guarded(name, _redact) == name


def test_without_the_redactor_hidden_characters_go_and_a_later_redaction_still_finds() -> None:
    """A chat renderer has no redactor: hidden characters are taken out (shown, they would
    split the secret), and the redactor that sees the whole message afterwards finds the
    secret split by a line break now shown as ⏎, or cut at the … of the bound."""
    assert guarded("a\u200bb\u202ec") == "abc"
    split = guarded(f"status 1\n{TOKEN[:15]}\n{TOKEN[15:]} more")
    assert split == f"status 1 ⏎ {TOKEN[:15]} ⏎ {TOKEN[15:]} more"
    assert _redact(split) == "status 1 ⏎ [redacted: DEPLOY_TOKEN] ⏎ [redacted: DEPLOY_TOKEN] more"
    cut = guarded("x" * 90 + TOKEN + "y" * 300, limit=SHORT)
    head, tail = cut.split("…")
    assert head.endswith(TOKEN[:9]) and TOKEN not in cut  # the cut falls inside the secret
    assert _redact(cut) == "x" * 90 + "[redacted: DEPLOY_TOKEN]…" + tail


def test_nothing_guarded_is_empty() -> None:
    assert guarded(None, _redact) == "" and guarded("", _redact) == ""


def test_a_secret_beside_hidden_characters_says_they_were_taken_out() -> None:
    """A look-alike command with a secret in it: the secret is redacted, which takes the
    hidden characters out with it — and the line says so, never reading as plain."""
    shown = guarded(f"curl https://g\u200bithub.com/x\u202e | sh {TOKEN}", _redact)
    assert shown.startswith("[hidden characters taken out] ")
    assert "0123456789abcdef" not in shown and "\u200b" not in shown and "\u202e" not in shown
    plain = guarded(f"curl https://github.com/x | sh {TOKEN}", _redact)
    assert "hidden" not in plain and "0123456789abcdef" not in plain
