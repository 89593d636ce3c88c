"""A held value in every form it may reach a text in: each character escaped as JSON
(``\\u0074``, either hex case) or not, every octet percent-encoded in either case or not,
escaped again (nested), in base64 at each alignment or hex; and a value too short to hunt
in free text, where it is named. Every secret here is fake and made at run time."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from functools import partial

import pytest

from fleet.mcp.model import HttpServer, McpServer, StdioServer
from fleet.mcp.upstream.credentials import Scrub, secrets_of
from fleet.redaction.decoded import Decoded
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor

TOKEN = "tk" + "Zr9/Q_w.4" + "-xP7mL2sV"
LABEL = "[redacted: TRACKER_TOKEN]"
ACCENTED = "pässwörd-" + "Ω9😀z"


def redact(text: str, *secrets: Secret) -> str:
    held = secrets or (Secret(TOKEN, "TRACKER_TOKEN", ("TRACKER_TOKEN",)),)
    return Redactor([Source(list(held))]).redact(text)


class Source:
    def __init__(self, secrets: list[Secret]) -> None:
        self._secrets = secrets

    def known_secrets(self) -> list[Secret]:
        return self._secrets


def each(value: str, escape: Callable[[str], str], every: int = 1) -> str:
    """``value`` with every ``every``-th character written by ``escape``, the rest as is."""
    return "".join(escape(c) if n % every == 0 else c for n, c in enumerate(value))


def u_lower(c: str) -> str:
    return "".join(f"\\u{unit:04x}" for unit in _units(c))


def u_upper(c: str) -> str:
    return "".join(f"\\u{unit:04X}" for unit in _units(c))


def _units(c: str) -> list[int]:
    code = ord(c)
    if code < 0x10000:
        return [code]
    code -= 0x10000
    return [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]


def nested(c: str) -> str:
    return "\\" + u_lower(c)


def pct_lower(c: str) -> str:
    return "".join(f"%{b:02x}" for b in c.encode())


def pct_upper(c: str) -> str:
    return "".join(f"%{b:02X}" for b in c.encode())


def b64_at(value: str, shift: int, encode: Callable[[bytes], bytes], pad: bool = True) -> str:
    shown = encode(b"u:x"[:shift] + value.encode() + b"!").decode()
    return shown if pad else shown.rstrip("=")


FORMS: dict[str, Callable[[str], str]] = {
    "json-u-every-lower": lambda v: each(v, u_lower),
    "json-u-every-upper": lambda v: each(v, u_upper),
    "json-u-every-other": lambda v: each(v, u_lower, 2),
    "json-u-mixed-case": lambda v: "".join(
        (u_lower(c) if n % 3 == 0 else u_upper(c) if n % 3 == 1 else c) for n, c in enumerate(v)
    ),
    "json-u-nested": lambda v: each(v, lambda c: "\\" + u_lower(c), 2),
    "percent-every-lower": lambda v: each(v, pct_lower),
    "percent-every-upper": lambda v: each(v, pct_upper),
    "percent-some-lower": lambda v: each(v, pct_lower, 3),
    "percent-of-percent": lambda v: each(v, lambda c: pct_lower(c).replace("%", "%25"), 2),
    "percent-of-json-u": lambda v: each(v, lambda c: pct_upper(u_lower(c)), 2),
    "json-u-of-percent": lambda v: each(v, lambda c: pct_lower(c).replace("%", "\\u0025")),
    "json-dumps": lambda v: json.dumps(v)[1:-1],
    "json-dumps-twice": lambda v: json.dumps(json.dumps(v))[1:-1],
    "hex": lambda v: v.encode().hex(),
    "HEX": lambda v: v.encode().hex().upper(),
}
for _shift in range(3):
    for _name, _encode in (("std", base64.b64encode), ("url", base64.urlsafe_b64encode)):
        for _pad in (True, False):
            FORMS[f"base64-{_name}-{_shift}{'' if _pad else '-unpadded'}"] = partial(
                b64_at, shift=_shift, encode=_encode, pad=_pad
            )


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("value", [TOKEN, ACCENTED], ids=["ascii", "accented"])
def test_every_form_of_a_held_value_is_taken_out(form: str, value: str) -> None:
    """The value in the form, inside JSON and prose, becomes the label: nothing of the
    form is left and nothing left reads back (decoded) as the value."""
    shown = FORMS[form](value)
    text = f'said {shown} then {{"echo": "{shown}"}} end'
    out = redact(text, Secret(value, "TRACKER_TOKEN"))
    assert shown not in out
    assert out.count(LABEL) == 2
    assert value not in Decoded(out).text
    assert out.startswith("said ") and out.endswith(" end")


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_door_scrubs_every_form_and_json_stays_json(form: str) -> None:
    """The door's scrub of a server's message holding the credential in the form leaves
    a message that parses, the label where the form was and nothing that reads back as
    the credential."""
    server = McpServer("t", HttpServer("https://t.example/mcp", headers_env={"X-Key": "T"}))
    scrub = Scrub(secrets_of([server], {"T": TOKEN}))
    shown = FORMS[form](TOKEN)
    raw = json.dumps({"result": {"text": f"x {shown} y"}}).encode()
    if form.startswith("json-u") or form.startswith("percent-of-json"):
        raw = b'{"result": {"text": "x ' + shown.encode() + b' y"}}'
    cleaned = scrub.json(raw)
    assert cleaned is not None
    said = json.loads(cleaned)["result"]["text"]
    assert said.startswith("x ") and said.endswith(" y")
    assert "[redacted: MCP credential T]" in said and shown not in said
    assert TOKEN not in Decoded(cleaned.decode()).text and TOKEN not in Decoded(said).text


def test_each_character_escaped_or_not_at_random_maps_back_whole() -> None:
    """A thousand mixes of escapes, one per character, each taken out exactly: the text
    before and after the value is left as it was."""
    chooser = random.Random(84)
    escapes: list[Callable[[str], str]] = [str, u_lower, u_upper, pct_lower, pct_upper, nested]
    for _ in range(1000):
        value = chooser.choice([TOKEN, ACCENTED])
        shown = "".join(chooser.choice(escapes)(c) for c in value)
        before, after = "a\\u0041%41 ", " \\u0042%42b"
        out = redact(before + shown + after, Secret(value, "TRACKER_TOKEN"))
        assert out == before + LABEL + after, shown


def test_a_form_with_plus_for_space_is_taken_out() -> None:
    """A value with a space, as a form carries it (``+``, the rest percent-encoded)."""
    value = 'p@ss w0rd!_"quoted"'
    out = redact("q=p%40ss+w0rd%21_%22quoted%22&x", Secret(value, "DB_PASSWORD"))
    assert out == "q=[redacted: DB_PASSWORD]&x"


@pytest.mark.parametrize(
    "text",
    [
        "my%20secret+value+1234",
        "my+secret%20value 1234",
        "my%20secret value+1234",
        "q=my%20secret+value+1234&x=%2B",
        "my%2520secret+value+1234",
    ],
)
def test_a_form_mixing_plus_and_percent_twenty_is_taken_out(text: str) -> None:
    """A form's text read as one decoding: ``+`` and ``%20`` for the spaces, in any mix."""
    out = redact(text, Secret("my secret value 1234", "DB_PASSWORD"))
    assert "secret" not in out and "[redacted: DB_PASSWORD]" in out


def test_a_plus_is_a_space_only_where_a_form_would_read_it() -> None:
    """A ``+`` of the value percent-encoded (``%2B``) is still the value's own ``+``."""
    held = Secret("a+b secret value", "DB_PASSWORD")
    assert redact("x a%2Bb+secret%20value y", held) == "x [redacted: DB_PASSWORD] y"
    assert redact("x a+b secret value y", held) == "x [redacted: DB_PASSWORD] y"


def test_escapes_of_other_text_are_left_as_written() -> None:
    """Only where a value was found is the text changed: escapes elsewhere stay."""
    text = 'path=%2Fsrv%2fdata "\\u00e9t\\u00E9" 100%zz \\\\ \\_x %E2%82'
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "X-Api-Key: k3y9",
        "x-api-key:k3y9\r\nnext",
        "Authorization: Bearer k3y9",
        "authorization=basic k3y9",
        "GET /v1?token=k3y9&page=2",
        '{"DEMO_KEY": "k3y9", "n": 1}',
        '{\\"X-Api-Key\\": \\"k3y9\\"}',
        "export DEMO_KEY='k3y9'",
        "password: k3y9",
        '{"X-Api-Key": ["k3y9"]}',
        "[('X-Api-Key', 'k3y9')]",
        "X-Api-Key => k3y9",
        "X-Api-Key k3y9",
        "headers = {'x-api-key' : ( 'k3y9' ,)}",
    ],
)
def test_a_short_value_is_taken_out_where_it_is_named(text: str) -> None:
    """A held value under six characters is found as the value of a header or key that
    names a secret, or of the names the config gives it."""
    held = Secret("k3y9", "MCP credential DEMO_KEY", ("DEMO_KEY", "X-Api-Key"))
    out = redact(text, held)
    assert "k3y9" not in out
    assert "[redacted: MCP credential DEMO_KEY]" in out


@pytest.mark.parametrize(
    "text",
    ["k3y9 is a word here", "token=k3y9x", "the key of k3y9", "mykey=k3y9"],
)
def test_a_short_value_elsewhere_is_left(text: str) -> None:
    """The short value in free text, as a part of a longer value, or after a name that
    does not end in a secret's word, is not taken for the secret."""
    held = Secret("k3y9", "MCP credential DEMO_KEY", ("DEMO_KEY",))
    assert redact(text, held) == text


def test_a_short_credential_a_server_echoes_in_its_header_is_scrubbed() -> None:
    """An HTTP server given a short key in ``X-Api-Key`` and a stdio server given one in
    ``API_PIN``: each echoed where it is named becomes the label."""
    http = McpServer("t", HttpServer("https://t.example/mcp", headers_env={"X-Api-Key": "T"}))
    stdio = McpServer("s", StdioServer("srv", env_env={"API_PIN": "PIN"}))
    scrub = Scrub(secrets_of([http, stdio], {"T": "k3y9", "PIN": "4821"}))
    said = scrub('you sent X-Api-Key: k3y9; env {"API_PIN": "4821"}')
    assert said == (
        "you sent X-Api-Key: [redacted: MCP credential T]; "
        'env {"API_PIN": "[redacted: MCP credential PIN]"}'
    )
