"""The credential formats agents meet every day are redacted (gitleaks' rules and ours),
gitleaks' rule file loads with every rule accounted for, and RE2 patterns translate.

Every secret here is fake and made at run time from pieces, so the repository holds none.
"""

from __future__ import annotations

import base64
import hashlib
import re
import string
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from fleet.redaction.gitleaks import GitleaksRules, entropy
from fleet.redaction.re2 import compile_re2, translate
from fleet.redaction.redactor import Redactor


def rnd(n: int, seed: str, alphabet: str = string.ascii_letters + string.digits) -> str:
    """``n`` characters of ``alphabet``, fixed by ``seed``."""
    digest = hashlib.sha512(seed.encode()).digest() * (n // 64 + 1)
    return "".join(alphabet[b % len(alphabet)] for b in digest[:n])


B64 = string.ascii_letters + string.digits + "/+"
URLSAFE = string.ascii_letters + string.digits + "_-"
AWS_SECRET = rnd(40, "aws", B64)
NETRC_PW = rnd(18, "netrc")
PYPI = "pypi-" + "AgEIcHlwaS5vcmc" + rnd(70, "pypi", URLSAFE)
PYPI_SHORT = "pypi-" + "AgEIcHlwaS5vcmc" + rnd(56, "pypi2", URLSAFE)
DOCKER = base64.b64encode(f"dev:{rnd(24, 'docker')}".encode()).decode()
GH_PAT = "github" + "_pat_" + rnd(22, "pat1") + "_" + rnd(59, "pat2")
OPENAI = "sk-" + "proj-" + rnd(58, "oa1", URLSAFE) + "T3Blbk" + "FJ" + rnd(58, "oa2", URLSAFE)
OPENAI_NEW = "sk-" + "proj-" + rnd(120, "oa3", URLSAFE)
YAML_TOKEN = rnd(32, "yaml")

FORMATS = [
    ("AWS credentials file", f"[default]\naws_secret_access_key = {AWS_SECRET}\n", AWS_SECRET),
    ("AWS, no spaces", f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET),
    (".netrc, one line", f"machine api.example.com login dev password {NETRC_PW}", NETRC_PW),
    (".netrc, a line each", f"machine x\n  login dev\n  password {NETRC_PW}\n", NETRC_PW),
    (".pypirc", f"[pypi]\n  username = __token__\n  password = {PYPI}\n", PYPI),
    (".pypirc, a shorter token", f"password: {PYPI_SHORT}", PYPI_SHORT),
    ("Docker config", f'{{"auths": {{"ghcr.io": {{"auth": "{DOCKER}"}}}}}}', DOCKER),
    ("GitHub fine-grained PAT", f"GH_PAT is {GH_PAT} here", GH_PAT),
    ("OpenAI project key", f"client = OpenAI(api_key={OPENAI})", OPENAI),
    ("OpenAI project key, no marker", f"using {OPENAI_NEW}", OPENAI_NEW),
    ("YAML api_token", f"service:\n  api_token: {YAML_TOKEN}\n", YAML_TOKEN),
]


@pytest.mark.parametrize(("text", "secret"), [f[1:] for f in FORMATS], ids=[f[0] for f in FORMATS])
def test_a_daily_credential_format_is_redacted(text: str, secret: str) -> None:
    """No piece of the secret is left, and it becomes a label."""
    out = Redactor().redact(text)
    for piece in (secret[:10], secret[-10:]):
        assert piece not in out, out
    assert "[redacted" in out


@pytest.mark.parametrize(("text", "secret"), [f[1:] for f in FORMATS], ids=[f[0] for f in FORMATS])
def test_a_credential_escaped_as_markdown_is_redacted(text: str, secret: str) -> None:
    """As agent text reaches chat, with a backslash before its markdown characters."""
    escaped = re.sub(r"([_\\*`\[\]<>&|~])", r"\\\1", text)
    out = Redactor().redact(escaped)
    plain = out.replace("\\", "")
    assert secret[:10] not in plain and secret[-10:] not in plain, out


@pytest.mark.parametrize(
    "text",
    [
        "token_url: https://auth.example.com/token",
        "secret_name: db2-credentials",
        "api_key_file: /run/secrets/api2",
        "password reset for user 42 failed",
        "passwords: 3 rotated",
        "Secret: the answer is 42",
        'auth: "required"',
        "machine learning login page",
        "max_tokens: 4096",
        "aws_access_key_id = $AWS_KEY_ID",
        "    inject(headers, credential, anthropic_api=route.api is ProviderApi.ANTHROPIC)",
    ],
)
def test_names_and_prose_near_these_formats_are_left(text: str) -> None:
    """What only names a secret, or talks about one, passes unchanged."""
    assert Redactor().redact(text) == text


def test_the_gitleaks_rules_load_and_every_left_out_rule_says_why() -> None:
    """All ~220 rules compile, Python's warnings about a pattern taken for errors (the
    rules carried compile when first needed, without that filter), or are listed with why;
    only path rules are left out."""
    rules = GitleaksRules()
    assert len(rules.rules) >= 200
    assert rules.compile_all() is rules.refused
    assert rules.refused, "the file has rules that find files by path"
    assert all("path" in why for why in rules.refused.values()), rules.refused
    assert {r.id for r in rules.rules} >= {"aws-access-token", "github-fine-grained-pat"}


def test_a_rule_that_does_not_compile_is_listed_not_fatal() -> None:
    """A pattern Python's re refuses after translation is reported with the error."""
    rules = GitleaksRules(
        {"rules": [{"id": "bad", "regex": r"(?P<x>a)(?P<x>b)", "keywords": ["a"]}]}
    )
    assert rules.rules == [] and "cannot compile" in rules.refused["bad"]


def test_rules_compiled_in_threads_as_texts_need_them_leave_the_warnings_filter_alone() -> None:
    """The rules carried compile in whichever thread first redacts a text naming them: no
    warnings filter is set on the way (it is the process's), and each thread finds what one
    finds alone."""
    rules = GitleaksRules()
    text = f"{GH_PAT} and ghp_{rnd(36, 'ghp')} and {OPENAI} and SG.{rnd(66, 'sg')} done"
    alone = list(GitleaksRules().spans(text, text.lower()))
    filters = list(warnings.filters)
    barrier = threading.Barrier(8)

    def redact() -> list[object]:
        barrier.wait()
        return list(rules.spans(text, text.lower()))

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: redact(), range(8)))
    assert alone and all(each == alone for each in found)
    assert warnings.filters == filters


def test_keywords_gate_a_rule_and_entropy_and_allowlists_drop_finds() -> None:
    """A rule runs only where its keyword is; low entropy and allow-listed values pass."""
    config = {
        "rules": [
            {
                "id": "demo",
                "regex": r"demo_([a-z0-9]{12})",
                "keywords": ["demo_"],
                "entropy": 2.5,
                "allowlists": [{"stopwords": ["sample"]}],
            }
        ]
    }
    rules = GitleaksRules(config)
    text = "demo_a1b2c3d4e5f6 demo_aaaaaaaaaaaa demo_sample123456"
    found = [text[s.start : s.end] for s in rules.spans(text, text.lower())]
    assert found == ["a1b2c3d4e5f6"]
    assert list(rules.spans("DEMO_A1B2C3D4E5F6", "x" * 17)) == []  # no keyword: not run


@pytest.mark.parametrize(
    ("re2", "python"),
    [
        (r"p8e-(?i)[a-z0-9]{32}", r"p8e-(?i:[a-z0-9]{32})"),
        (r"(a(?i)b|c)d", r"(a(?i:b)|(?i:c))d"),
        (r"(?i)x(?i)y", r"(?i)x(?i:y)"),
        (r"[[:alnum:]]{3}\z", r"[a-zA-Z0-9]{3}\Z"),
        (r"[\z(?i)]", r"[\z(?i)]"),
    ],
)
def test_re2_syntax_is_translated(re2: str, python: str) -> None:
    """Mid-pattern flags become scoped groups, ``\\z`` and POSIX classes Python's own."""
    assert translate(re2) == python


def test_a_translated_flag_applies_as_re2_applies_it() -> None:
    """From the flag to the end of its group, across that group's alternatives only."""
    pattern = compile_re2(r"(a(?i)b|c)D")
    assert pattern.fullmatch("aBD") and pattern.fullmatch("CD")
    assert not pattern.fullmatch("Abd") and not pattern.fullmatch("cd")


def test_entropy_is_gitleaks_shannon_entropy() -> None:
    """Bits per character: 0 for a repeated letter, 2 for four equally common ones."""
    assert entropy("aaaa") == 0.0 and entropy("abcd") == 2.0 and entropy("") == 0.0
