"""Tests for fleet.redaction: known secrets by value, credential shapes, and the redactor.

Every secret here is fake and made at run time from pieces, so the repository holds none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from fleet.placeholders import placeholder_jwt, placeholder_token
from fleet.redaction.known import EnvSecrets, Secret
from fleet.redaction.redactor import Redactor, label
from fleet.redaction.values import KnownValues

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HB = "hb" + "Q3v9xZr1_kLm-0aTy8WcPd7uNe2sHjF4"  # shaped like a token_urlsafe(24)
KEY = "mk" + "Zt5Rq-Lp2Vx_9NcBw3Yh8DsKa7Ue1Gj0"
PASSWORD = "p@ss" + ' w0rd!_"quoted"'


class Held:
    """A source whose secrets a test changes."""

    def __init__(self, *secrets: Secret) -> None:
        self.secrets = list(secrets)
        self.asked = 0

    def known_secrets(self) -> Iterable[Secret]:
        self.asked += 1
        return self.secrets


def redactor(*secrets: Secret) -> Redactor:
    return Redactor([Held(*secrets)])


def known() -> Redactor:
    return redactor(
        Secret(HB, "heartbeat token"),
        Secret(KEY, "metering key"),
        Secret(PASSWORD, "MATRIX_PASSWORD"),
    )


def alnum(n: int, seed: str = "x") -> str:
    """``n`` letters and digits, fixed by ``seed``."""
    alphabet = string.ascii_letters + string.digits
    digest = hashlib.sha512(seed.encode()).digest() * (n // 64 + 1)
    return "".join(alphabet[b % len(alphabet)] for b in digest[:n])


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# -- known values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"FLEETWARDEN_HEARTBEAT_TOKEN={HB}",
        f"token{HB}glued",
        f"curl -H 'X-Token: {HB}' http://127.0.0.1:4000/heartbeat/c1",
        f"http://127.0.0.1:41234/a/c1/anthropic/{KEY}/v1/messages",
        f"https://example.com/cb?next={quote(PASSWORD, safe='')}&x=1",
        json.dumps({"env": {"TOKEN": HB, "PW": PASSWORD}}),
        json.dumps({"nested": json.dumps({"pw": PASSWORD})}),  # escaped twice
        'said: p@ss w0rd\\!\\_\\"quoted\\"',  # as markdown escapes it
        f"```\n{HB}\n```",
    ],
)
def test_a_known_value_is_redacted_wherever_it_is(text: str) -> None:
    """A secret the sources hold is taken out as written, inside URLs, JSON (even escaped
    twice), URL-encoded and markdown-escaped."""
    out = known().redact(text)
    for secret in (HB, KEY, PASSWORD, quote(PASSWORD, safe=""), json.dumps(PASSWORD)[1:-1]):
        assert secret not in out
    assert "[redacted: " in out


def test_the_label_says_what_it_was_not_its_value_or_length() -> None:
    """The label names the kind of secret only."""
    out = known().redact(f"a {HB} b {KEY} c")
    assert out == "a [redacted: heartbeat token] b [redacted: metering key] c"
    assert label("") == "[redacted]"


def test_the_sources_are_asked_at_each_redaction() -> None:
    """A token issued after the redactor was made is redacted; the matcher follows changes."""
    source = Held()
    redactor = Redactor([source])
    assert redactor.redact(f"x {HB}") == f"x {HB}"
    source.secrets.append(Secret(HB, "heartbeat token"))
    assert redactor.redact(f"x {HB}") == "x [redacted: heartbeat token]"
    assert source.asked == 2


def test_a_snapshot_keeps_the_secrets_it_was_made_with() -> None:
    """A snapshot (used off the event loop) is not changed by its sources changing."""
    source = Held(Secret(HB, "heartbeat token"))
    snapshot = Redactor([source]).snapshot()
    source.secrets.clear()
    assert snapshot.apply(HB) == "[redacted: heartbeat token]"


def test_sources_added_later_are_asked_too() -> None:
    """A server started after the redactor was made is added as a source."""
    redactor = Redactor()
    redactor.add_source(Held(Secret(KEY, "metering key")))
    assert redactor.redact(KEY) == "[redacted: metering key]"


def test_short_values_are_not_redacted() -> None:
    """Values under six characters would match ordinary words: in free text they are left."""
    assert redactor(Secret("abc12", "short")).redact("abc12 x abc12") == "abc12 x abc12"


def test_environment_secrets_are_labelled_with_their_variable() -> None:
    """Variables the config names are read once; unset or empty ones are skipped."""
    environ = {"DISCORD_TOKEN": "discord-" + alnum(20), "EMPTY": "", "OTHER": "not-a-secret"}
    source = EnvSecrets(["DISCORD_TOKEN", "EMPTY", "UNSET"], environ)
    assert list(source.known_secrets()) == [
        Secret(environ["DISCORD_TOKEN"], "DISCORD_TOKEN", ("DISCORD_TOKEN",))
    ]
    out = Redactor([source]).redact(f"bot {environ['DISCORD_TOKEN']} not-a-secret")
    assert out == "bot [redacted: DISCORD_TOKEN] not-a-secret"


def test_each_line_of_a_multi_line_value_is_a_value() -> None:
    """A PEM key in a variable is found a line at a time too."""
    lines = [alnum(64, str(n)) for n in range(3)]
    out = redactor(Secret("\n".join(lines) + "\n", "SSH_KEY")).redact(f"cat: {lines[1]}")
    assert out == "cat: [redacted: SSH_KEY]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{HB[7:]} and more", "{} and more"),  # the tail of a line cut at its start
        (f"    {HB[3:]}\nnext", "    {}\nnext"),
        (f"head {HB[:-6]}…", "head {}…"),  # a line cut at its end
        (f"head {HB[:-6]}", "head {}"),
        (f"see …{HB[10:]} after", "see …{} after"),  # beside an ellipsis mid-line
        (f"from {HB[:20]}... to", "from {}... to"),
    ],
)
def test_a_secret_cut_by_truncation_is_redacted(text: str, expected: str) -> None:
    """A piece of 8+ characters of a secret at a line's edge or beside an ellipsis, where a
    line or a message was cut, is taken out."""
    assert known().redact(text) == expected.format("[redacted: heartbeat token]")


def test_a_short_piece_or_a_piece_inside_a_line_is_left() -> None:
    """Pieces shorter than 8 characters, or not at an edge, are not taken for secrets."""
    text = f"{HB[-7:]} mid {HB[4:20]} mid"
    assert known().redact(text) == text


def test_overlapping_secrets_become_one_label() -> None:
    """One secret inside another, or two overlapping, leave no piece of either visible."""
    inner = HB[4:20]
    overlap = HB[-10:] + "zzzz-more-of-it"
    r = redactor(Secret(HB, "heartbeat token"), Secret(inner, "inner"), Secret(overlap, "other"))
    out = r.redact(f"[{HB + overlap[10:]}] [{inner}]")
    assert out == "[[redacted: heartbeat token]] [[redacted: inner]]"


def test_redacting_twice_changes_nothing_more() -> None:
    """A label is never taken for a secret: redaction is idempotent."""
    text = f'PASSWORD={HB}\n"password": "{alnum(12)}"\nAuthorization: Bearer {alnum(30)}'
    once = known().redact(text)
    assert known().redact(once) == once


def test_a_huge_text_is_redacted_whole() -> None:
    """A megabyte of log with secrets at its start, middle and end, and a 4 MB single line."""
    filler = "\n".join(f"{n:06d} compiling module_{n}.py ... ok" for n in range(30_000))
    text = f"{HB}\n{filler}\n{KEY}\n{filler}\nend {HB}"
    out = known().redact(text)
    assert HB not in out and KEY not in out
    assert out.count("[redacted: ") == 3
    line = "x" * 2_000_000 + HB + "y" * 2_000_000
    assert known().redact(line) == "x" * 2_000_000 + "[redacted: heartbeat token]" + "y" * 2_000_000


def test_known_values_match_nothing_when_empty() -> None:
    """No secrets, no finds (and no work)."""
    assert KnownValues(()).spans(f"{HB} {KEY}") == []
    assert not KnownValues(())


# -- credential shapes ------------------------------------------------------------------


def _pem() -> str:
    body = "\n".join(alnum(64, str(n)) for n in range(4))
    kind = "RSA " + "PRIVATE KEY"
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


SHAPES: list[tuple[str, str, str]] = [
    # (what, the text around {} it appears in, the secret)
    ("AWS Access Key", "key id {} in config", "AK" + "IA" + "IOSFODNN7" + "EXAMPLQ"),
    (
        "AWS Access Key",
        'aws_secret_access_key = "{}"',
        alnum(20, "aws") + "/" + alnum(19, "aws2"),
    ),
    ("GitHub Token", "push with {} to origin", "gh" + "p_" + alnum(36)),
    ("GitHub Token", "GH={} done", "gh" + "s_" + alnum(36, "s")),
    ("GitLab Token", "token {} here", "gl" + "pat-" + alnum(20)),
    ("Slack Token", "slack {} ok", "xo" + "xb-" + "1234567890-9876543210-" + alnum(24).lower()),
    ("Stripe Access Key", "stripe {} ok", "sk" + "_live_" + alnum(24) + alnum(40, "more")),
    (
        "OpenAI Token",
        "OPENAI {} ok",
        "sk-" + "proj-" + alnum(20) + "T3Blbk" + "FJ" + alnum(20, "o"),
    ),
    (
        "JSON Web Token",
        "jwt {} ok",
        f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': 'u1'})}.{alnum(43)}",
    ),
    ("Private Key", "key:\n{}\nafter", _pem()),
    (
        "Discord Bot Token",
        "bot {} ok",
        "MT" + alnum(22, "d") + "." + alnum(6, "e") + "." + alnum(27, "f"),
    ),
    ("Basic Auth Credentials", "clone https://deploy:{}@git.example.com/r", "pw-" + alnum(12)),
    ("Secret Keyword", 'db_password = "{}"', "hunter-" + alnum(10)),
    ("Secret Keyword", '{{"password": "{}"}}', "hunter-" + alnum(10, "k")),
    ("NPM tokens", "//registry.npmjs.org/:_authToken={}", "np" + "m_" + alnum(36)),
    ("PyPI Token", "pw {} ok", "py" + "pi-AgEIcHlwaS5vcmc" + alnum(72)),
    ("SendGrid API Key", "sg {} ok", "S" + "G." + alnum(22) + "." + alnum(43, "g")),
    ("Telegram Bot Token", "bot {} ok", "123456789:" + alnum(35)),
    ("Twilio API Key", "twilio {} ok", "S" + "K" + hashlib.md5(b"t").hexdigest()),
    ("Mailchimp Access Key", "mc {} ok", hashlib.md5(b"m").hexdigest() + "-us12"),
    ("Square OAuth Secret", "sq {} ok", "sq0" + "csp-" + alnum(43)),
    (
        "Azure Storage Account access key",
        "DefaultEndpointsProtocol=https;{};EndpointSuffix=core.windows.net",
        "Account" + "Key=" + alnum(86) + "==",
    ),
    ("Anthropic Key", "key {} ok", "sk-" + "ant-" + "api03-" + alnum(80) + "AA"),
    ("Anthropic Key", "CLAUDE_CODE_OAUTH {} ok", "sk-" + "ant-" + "oat01-" + alnum(60)),
    ("Fleetwarden Placeholder", "ANTHROPIC_API_KEY {}", placeholder_token("c1")),
    ("Metering Key", "http://127.0.0.1:41234/a/c1/anthropic/{}/v1", alnum(32)),
    ("HTTP Credential", "> Authorization: Bearer {}", alnum(40)),
    ("HTTP Credential", "-H 'x-api-key: {}'", alnum(40, "k")),
    ("HTTP Credential", "X-Fleetwarden-Token: {}", alnum(32, "h")),
    ("Secret Assignment", "GITHUB_TOKEN={}", alnum(40, "g")),
    ("Secret Assignment", "export DB_PASSWORD='{}'", "pw" + alnum(12)),
    ("Secret Assignment", "SMTP_PASS={}", alnum(12, "smtp")),
    ("Token", '{{"refresh_token": "{}"}}', alnum(40, "r")),
]


@pytest.mark.parametrize(("what", "around", "secret"), SHAPES, ids=[s[0] for s in SHAPES])
def test_each_credential_shape_is_redacted(what: str, around: str, secret: str) -> None:
    """Each shape is found with nothing Fleetwarden knows, and labelled by its detector;
    the text around it stays."""
    text = around.format(secret)
    out = Redactor().redact(text)
    for piece in (secret[:12], secret[-12:]):
        assert piece not in out, out
    assert f"[redacted: {what}]" in out, out
    before, _, after = around.replace("{{", "{").replace("}}", "}").partition("{}")
    assert out.startswith(before.split("\n")[0])
    if len(after) > 2:  # a closing quote may go with the value
        assert out.endswith(after)


def test_a_shape_names_its_detector() -> None:
    """The label says which kind of credential it was."""
    token = "gh" + "p_" + alnum(36)
    assert Redactor().redact(f"t {token}") == "t [redacted: GitHub Token]"


def test_a_private_key_is_taken_out_whole_even_cut() -> None:
    """From its BEGIN line to its END line, or to the end of the text when cut."""
    pem = _pem()
    assert Redactor().redact(f"a\n{pem}\nb") == "a\n[redacted: Private Key]\nb"
    cut = pem[: len(pem) // 2]
    assert Redactor().redact(f"a\n{cut}") == "a\n[redacted: Private Key]"


def test_the_placeholder_jwt_is_redacted() -> None:
    """The ChatGPT-login look-alike an agent holds is a JWT, signature and all."""
    token = placeholder_jwt("c1", T0)
    out = Redactor().redact(f'{{"access_token": "{token}"}}')
    assert token.split(".")[0] not in out and "placeholder" not in out


def test_an_env_dump_keeps_its_harmless_lines() -> None:
    """Of an ``env`` listing only the secret-named values go; paths and names stay."""
    token = alnum(40, "t")
    env = "\n".join(
        [
            "HOME=/home/dev",
            "PWD=/home/dev/project",
            "OLDPWD=/home/dev",
            "SSH_AUTH_SOCK=/tmp/ssh-XXXXabc/agent.42",
            "GPG_KEY_ID=ABCDEF0123456789",
            "MATRIX_ACCESS_TOKEN_ENV=FW_MATRIX_TOKEN",
            f"GITHUB_TOKEN={token}",
            "FLEETWARDEN_HEARTBEAT_URL=http://127.0.0.1:4000/heartbeat/c1",
            "GIT_AUTHOR_NAME=Dev",
            "TOKEN_URL=https://auth.example.com/token",
            "API_KEY=$API_KEY_FROM_VAULT",
        ]
    )
    out = Redactor().redact(env)
    assert out == env.replace(token, "[redacted: Secret Assignment]")


# -- ordinary agent output: no false positives -----------------------------------------


def _ordinary() -> str:
    shas = [hashlib.sha1(str(n).encode()).hexdigest() for n in range(20)]
    sha256 = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(5)]
    uuids = [str(uuid.UUID(bytes=hashlib.md5(str(n).encode()).digest())) for n in range(10)]
    integrity = base64.b64encode(hashlib.sha512(b"pkg").digest()).decode()
    stream = {
        "type": "system",
        "subtype": "init",
        "session_id": uuids[0],
        "uuid": uuids[1],
        "apiKeySource": "ANTHROPIC_API_KEY",
        "model": "claude-sonnet-4-5",
        "cwd": "/home/dev/project",
    }
    result = {
        "type": "result",
        "usage": {"input_tokens": 1234, "output_tokens": 56, "cache_read_input_tokens": 0},
        "total_cost_usd": 0.0123,
        "session_id": uuids[2],
    }
    lines = [
        *(f"commit {sha}" for sha in shas[:5]),
        "Author: Dev <dev@example.com>",
        f"Merge: {shas[5][:7]} {shas[6][:7]}",
        f"index {shas[7][:12]}..{shas[8][:12]} 100644",
        f'{{"sha": "{shas[9]}", "parents": ["{shas[10]}"], "tree": "{shas[11]}"}}',
        *(f"{digest}  dist/pkg-{n}.tar.gz" for n, digest in enumerate(sha256)),
        *(f"run {u} finished" for u in uuids[3:]),
        f'"{shas[12]}"',
        f"'{sha256[0]}'",
        f'      "integrity": "sha512-{integrity}",',
        "drwxr-xr-x  5 dev dev 4096 Mar  1 12:00 /home/dev/project/.git",
        "-rw-r--r--  1 dev dev  812 Mar  1 12:00 src/secrets_manager.py",
        "def login(user: str, password: str) -> Token:",
        "    token_urls=token_urls,",
        "    secret_env: tuple[str, ...] = ()",
        "    password = getpass.getpass()",
        '    api_key = os.environ["ANTHROPIC_API_KEY"]',
        '    token = request.headers["Authorization"]',
        "Tokens are secrets: they are never logged.",
        "Secret: the answer is 42",
        "Password: ",
        "Authorization: Bearer $TOKEN",
        "3 passed, 1 skipped in 0.42s",
        "https://github.com/org/repo/pull/123/files#diff-" + shas[13],
        "https://example.com/a/b/c/" + shas[14],
        f"docker: {shas[15][:12]}   postgres:16   Up 2 hours",
        "2025-03-01T12:00:00.123456Z INFO request id " + uuids[4],
        "key=lambda item: item.name",
        json.dumps(stream),
        json.dumps(result),
        "Traceback (most recent call last):",
        '  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode',
    ]
    return "\n".join(lines)


def test_ordinary_agent_output_is_left_alone() -> None:
    """Git SHAs (bare and quoted), digests, UUIDs, paths, code naming secrets, prose,
    test output and a CLI's JSON stream pass unchanged."""
    text = _ordinary()
    out = Redactor().redact(text)
    assert out == text


def test_a_known_set_finds_what_one_matcher_finds_and_rebuilds_little() -> None:
    """Secrets added one by one (a token per spawn) are found as one matcher finds them;
    most segments are reused from one set to the next, and a removed secret is forgotten."""
    from fleet.redaction.values import KnownSet

    values = [Secret(f"tok-{i:04d}-" + "x" * 20 + f"{i:04d}", f"token {i}") for i in range(40)]
    text = "\n".join(v.value for v in values[::3]) + f"\n…{values[5].value[-10:]}"
    known = KnownSet()
    for i in range(len(values)):
        before = known
        known = known.updated(frozenset(values[: i + 1]))
        reused = sum(1 for seg in known._segments if seg in before._segments)
        assert reused >= len(known._segments) - 2  # at most the newest two were built
    assert sorted(known.spans(text)) == sorted(KnownValues(values).spans(text))
    assert len(known._segments) <= 7  # log2(40) + 1
    fewer = known.updated(frozenset(values[1:]))
    assert not any(span.what == "token 0" for span in fewer.spans(values[0].value))
    assert any(span.what == "token 3" for span in fewer.spans(values[3].value))
    assert not KnownSet() and KnownSet().updated(frozenset()) is not None


def test_long_secrets_are_found_by_their_pieces_wherever_they_stand() -> None:
    """A secret long enough to be found by its pieces is found at every place in a text
    (whatever the place's remainder by the stride), twice where it stands twice, beside
    one found one by one; a text that holds neither is left alone."""
    from fleet.redaction.known import Span
    from fleet.redaction.values import LONG, STRIDE

    long = Secret("Lk" + "q7Zr" * (LONG // 4), "heartbeat token")
    short = Secret("s3cr3t-pw", "password")
    known = KnownValues([long, short])
    size = len(long.value)
    for lead in range(STRIDE + 2):
        text = "x " * lead + long.value + " | " + short.value + " y " + long.value + " z"
        second = text.rindex(long.value)
        assert sorted(set(known.spans(text))) == [
            Span(2 * lead, 2 * lead + size, "heartbeat token"),
            Span(2 * lead + size + 3, 2 * lead + size + 3 + len(short.value), "password"),
            Span(second, second + size, "heartbeat token"),
        ]
        assert Redactor([EnvSecretsOf([long, short])]).redact(text).count("[redacted") == 3
    assert known.spans("x " * 50 + long.value[1:-1] + " y") == []  # no whole one, no edge


class EnvSecretsOf:
    """A source holding the given secrets."""

    def __init__(self, secrets: list[Secret]) -> None:
        self._secrets = secrets

    def known_secrets(self) -> list[Secret]:
        return self._secrets
