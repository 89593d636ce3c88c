"""The hostile-JSON reader: what it takes as any JSON reader would, and each refusal, in
words that say what is wrong without repeating the sender's text."""

from __future__ import annotations

import json

import pytest

from fleet.hostile_json import FAST_AT_MOST, JsonRefused, read_json, read_object, size_words


def refusal(data: bytes | str, what: str = "the body", limit: int | None = None) -> JsonRefused:
    with pytest.raises(JsonRefused) as caught:
        read_json(data, what=what, limit=limit)
    return caught.value


def test_json_is_read_as_any_reader_reads_it() -> None:
    """Objects, lists, numbers, strings and escapes come back as json.loads gives them."""
    text = '{"a": [1, 2.5, -3e2, true, null], "b": "\\u00e9\\n", "c": {}}'
    expected = {"a": [1, 2.5, -300.0, True, None], "b": "é\n", "c": {}}
    assert read_json(text.encode()) == expected
    assert read_json(bytearray(text.encode())) == expected
    assert read_json(text) == expected
    assert read_json(b"  7 \n") == 7


def test_a_leading_byte_order_mark_is_passed_over() -> None:
    """A UTF-8 byte order mark before the JSON is not an error (RFC 8259 allows ignoring it)."""
    assert read_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_text_past_the_limit_is_refused_before_it_is_parsed() -> None:
    """Over ``limit`` bytes is ``size``, the limit said as people say sizes."""
    refused = refusal(b"[" + b"1," * 40_000 + b"1]", limit=64 * 1024)
    assert refused.kind == "size"
    assert str(refused) == "the body is over 64 KiB"
    assert read_json(b"[1, 2]", limit=6) == [1, 2]


def test_anything_but_utf8_is_refused() -> None:
    """Latin-1, UTF-16 and an encoded surrogate are ``encoding``, never guessed at."""
    for data in (b'{"a": "caf\xe9"}', '{"a": 1}'.encode("utf-16"), b'"\xed\xa0\x80"'):
        refused = refusal(data)
        assert refused.kind == "encoding"
        assert str(refused) == "the body is not UTF-8"


def test_text_that_is_not_json_is_refused() -> None:
    """Not JSON, cut short, or two values one after another: ``syntax``."""
    for data in (b"<html>oops</html>", b'{"a": 1', b"{} {}", b"", b"{'a': 1}"):
        refused = refusal(data)
        assert refused.kind == "syntax"
        assert str(refused) == "the body is not JSON"


def test_nesting_deeper_than_the_parser_goes_is_refused_not_a_crash() -> None:
    """A hundred thousand brackets are ``depth``, whether in a list or an object."""
    for data in (b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 100_000 + b"1" + b"}" * 100_000):
        refused = refusal(data)
        assert refused.kind == "depth"
        assert str(refused) == "the body is nested too deep to read"


def test_a_key_given_twice_is_refused_naming_it_anywhere_in_the_text() -> None:
    """A repeated key, at the top, nested, or written with an escape, is ``duplicate``."""
    for data, key in (
        (b'{"model": "a", "model": "b"}', "model"),
        (b'{"x": [{"y": 1, "y": 2}]}', "y"),
        (b'{"model": "a", "mod\\u0065l": "b"}', "model"),
    ):
        refused = refusal(data)
        assert refused.kind == "duplicate"
        assert refused.key == key
        assert str(refused) == f"the body has the key {key!r} twice; send each key once"


def test_a_repeated_key_is_shown_escaped_and_cut() -> None:
    """The key is the sender's text: its control characters escaped, at most 64 shown."""
    refused = refusal(b'{"\\u001b[2J": 1, "\\u001b[2J": 2}')
    assert "\x1b" not in str(refused) and "'\\x1b[2J'" in str(refused)
    long_key = "k" * 500
    refused = refusal(f'{{"{long_key}": 1, "{long_key}": 2}}'.encode())
    assert refused.key == long_key
    assert f"'{'k' * 64}'" in str(refused) and "k" * 65 not in str(refused)


def test_numbers_json_cannot_carry_are_refused() -> None:
    """NaN, the infinities and a number too large to be finite are ``number``."""
    for data, said in (
        (b'{"t": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"[-Infinity]", "-Infinity"),
        (b'{"t": 1e999}', "1e999"),
    ):
        refused = refusal(data)
        assert refused.kind == "number"
        assert str(refused) == f"the body has a number JSON cannot carry: {said}"


def test_an_integer_longer_than_python_reads_is_refused() -> None:
    """Five thousand digits (past ``sys.get_int_max_str_digits``) is ``number``."""
    refused = refusal(b"[" + b"9" * 5000 + b"]")
    assert refused.kind == "number"
    assert str(refused) == "the body has an integer too long to read"


def test_the_words_name_what_the_caller_calls_the_text() -> None:
    """``what`` starts every refusal."""
    assert str(refusal(b"nope", what="the request body")) == "the request body is not JSON"


def test_read_object_refuses_any_other_value() -> None:
    """A list, a string or a number where an object is wanted is ``shape``."""
    assert read_object(b'{"a": 1}') == {"a": 1}
    for data in (b"[]", b'"text"', b"3", b"null"):
        with pytest.raises(JsonRefused) as caught:
            read_object(data, what="the call")
        assert caught.value.kind == "shape"
        assert str(caught.value) == "the call is not a JSON object"


def test_read_object_refuses_what_read_json_refuses() -> None:
    """Every refusal of the value is also the object's."""
    with pytest.raises(JsonRefused) as caught:
        read_object(b'{"a": 1, "a": 2}')
    assert caught.value.kind == "duplicate"


def test_sizes_are_said_in_the_largest_whole_unit() -> None:
    """MiB and KiB when whole, else bytes."""
    assert size_words(5 * 1024 * 1024) == "5 MiB"
    assert size_words(16 * 1024) == "16 KiB"
    assert size_words(4096) == "4 KiB"
    assert size_words(1000) == "1000 bytes"
    assert size_words(1536 * 1024) == "1536 KiB"


def test_keys_given_twice_are_found_whatever_colons_the_strings_hold() -> None:
    """The fast reader counts colons: colons inside strings, escaped ones (``\\u003a``) and
    a backslash before a ``u003a`` never hide a key given twice, nor refuse a text that has
    none."""
    for data in (
        b'{"a:b": "c:d", "a:b": "e"}',
        b'{"a": "\\u003a\\u003A", "b": {"c": 1, "c": ":"}}',
        b'{"k": 1, "k": 2, "x": "\\u003a"}',
        b'{"k": {"n": 1, "m": 2}, "k": 3, "x": "\\u003a\\u003a\\u003a"}',
        b'{"\\\\u003a": 1, "\\\\u003a": 1}',
    ):
        assert refusal(data).kind == "duplicate", data
    for data, value in (
        (b'{"a:b": "\\u003a", "c": "\\\\u003a"}', {"a:b": ":", "c": "\\u003a"}),
        (b'{"t": "12:00:00", "u": [{"v": ":"}]}', {"t": "12:00:00", "u": [{"v": ":"}]}),
        (b'[{"x": 1}, {"x": 1}]', [{"x": 1}, {"x": 1}]),
    ):
        assert read_json(data) == value


def test_values_are_those_the_standard_library_reads() -> None:
    """Integers of any length below Python's limit, floats rounded as ``float`` rounds them,
    minus zero, and a lone escaped surrogate, read as ``json.loads`` reads them."""
    for text in (
        "123456789012345678901234567890",
        "-9223372036854775809",
        "[1.00000000000000011102230246251565404236316680908203125, 9007199254740993.0]",
        "[-0, -0.0, 1E5, 1e-400, 0.1]",
        '"\\ud800"',
        '{"\\udc00": "\\ud83d\\ude00"}',
    ):
        assert repr(read_json(text.encode())) == repr(json.loads(text)), text


def test_a_text_given_as_str_keeps_its_byte_order_mark_and_its_surrogates() -> None:
    """A str is read as it is: a leading U+FEFF is no JSON, a lone surrogate in it is a
    string's character."""
    assert refusal('\ufeff{"a": 1}').kind == "syntax"
    assert read_json('["\ud800"]') == ["\ud800"]
    assert refusal('{"a": 1, "a": "\ud800"}').kind == "duplicate"


def test_a_text_over_the_fast_size_is_read_alike_and_refused_alike() -> None:
    """Over ``FAST_AT_MOST`` the hooked reader alone reads (no second copy held): the same
    value, the same refusals."""
    big = "x" * FAST_AT_MOST
    assert read_json(json.dumps({"a": big, "b": 1}).encode()) == {"a": big, "b": 1}
    with pytest.raises(JsonRefused) as refused:
        read_json(('{"a": "' + big + '", "a": 2}').encode())
    assert refused.value.kind == "duplicate"
