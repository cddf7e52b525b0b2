"""Property tests (hypothesis) of the parsers that take bytes from the network.

- `remoting.decode_frame`: any bytes → a `Command` or `ValueError` (what the connection's
  reader catches to drop a bad connection) — never another exception, which would kill the
  reader silently and leave every pending request waiting for its timeout. Encoding then
  decoding a command gives it back.
- `fastjson.loads`: any bytes or text → a value or `FastjsonError`; standard JSON documents
  parse as `json.loads` parses them; fastjson's non-string keys round-trip through `Pairs`.

Example counts: `FUZZ_EXAMPLES` per test (hypothesis' `max_examples`), overridable through
AGENTPROD_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from typing import Any

from agentprod_operator.rocketmq import fastjson, remoting
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = int(os.environ.get("AGENTPROD_FUZZ_EXAMPLES", "100"))
fuzz = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# ------------------------------------------------------------------------------- remoting

_text = st.text(max_size=40)
_int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
commands = st.builds(
    remoting.Command,
    code=st.integers(min_value=-(2**15), max_value=2**15 - 1),
    opaque=_int32,
    flag=_int32,
    remark=_text,
    ext_fields=st.dictionaries(_text, _text, max_size=6),
    body=st.binary(max_size=64),
    language=st.sampled_from(["JAVA", "PYTHON", "GO"]),
    version=st.integers(min_value=0, max_value=2**15 - 1),
)


def _frame(ser_type: int, header: bytes, body: bytes) -> bytes:
    return struct.pack(">i", (ser_type << 24) | len(header)) + header + body


def _binary_header(command: remoting.Command, language: int) -> bytes:
    def text(size: str, value: str) -> bytes:
        raw = value.encode()
        return struct.pack(size, len(raw)) + raw

    ext = b"".join(text(">h", k) + text(">i", v) for k, v in command.ext_fields.items())
    fixed = struct.pack(
        ">hbhii", command.code, language, command.version, command.opaque, command.flag
    )
    return fixed + text(">i", command.remark) + struct.pack(">i", len(ext)) + ext


def _decodes_or_refuses(payload: bytes) -> None:
    try:
        command = remoting.decode_frame(payload)
    except ValueError:
        return
    assert isinstance(command, remoting.Command)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in command.ext_fields.items())
    for number in (command.code, command.opaque, command.flag, command.version):
        assert isinstance(number, int)


@fuzz
@given(st.binary(max_size=256))
def test_any_bytes_decode_or_raise_value_error(payload: bytes) -> None:
    _decodes_or_refuses(payload)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@fuzz
@given(json_values, st.binary(max_size=16))
def test_any_json_header_decodes_or_raises_value_error(header: Any, body: bytes) -> None:
    """Well-formed JSON of the wrong shape (a list, a string code, extFields: 3)."""
    _decodes_or_refuses(_frame(0, json.dumps(header).encode(), body))


@fuzz
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "code": json_values,
            "opaque": json_values,
            "flag": json_values,
            "remark": json_values,
            "extFields": json_values,
            "language": json_values,
            "version": json_values,
        },
    )
)
def test_a_header_with_odd_field_types_decodes_or_raises_value_error(
    header: dict[str, Any],
) -> None:
    _decodes_or_refuses(_frame(0, json.dumps(header).encode(), b""))


@fuzz
@given(commands, st.integers(min_value=0, max_value=13), st.binary(max_size=32))
def test_truncated_or_mangled_binary_headers_raise_value_error(
    command: remoting.Command, language: int, noise: bytes
) -> None:
    header = _binary_header(command, language)
    for cut in {0, 1, 12, 13, len(header) // 2, len(header) - 1}:
        _decodes_or_refuses(_frame(1, header[: max(cut, 0)], b""))
    _decodes_or_refuses(_frame(1, header[:13] + noise, b""))


@fuzz
@given(commands)
def test_json_frames_round_trip(command: remoting.Command) -> None:
    frame = remoting.encode_frame(command)
    (length,) = struct.unpack_from(">i", frame)
    assert length == len(frame) - 4
    assert remoting.decode_frame(frame[4:]) == command


@fuzz
@given(commands, st.integers(min_value=0, max_value=13))
def test_binary_headers_decode_to_the_command(command: remoting.Command, language: int) -> None:
    header = _binary_header(command, language)
    decoded = remoting.decode_frame(_frame(1, header, command.body))
    expected_language = remoting._LANGUAGES[language]
    assert decoded == remoting.Command(
        code=command.code,
        opaque=command.opaque,
        flag=command.flag,
        remark=command.remark,
        ext_fields=command.ext_fields,
        body=command.body,
        language=expected_language,
        version=command.version,
    )


# ------------------------------------------------------------------------------- fastjson


def _loads_or_refuses(data: str | bytes) -> None:
    with contextlib.suppress(fastjson.FastjsonError):
        fastjson.loads(data)


@fuzz
@given(st.binary(max_size=256))
def test_any_bytes_parse_or_raise_fastjson_error(data: bytes) -> None:
    _loads_or_refuses(data)


_json_alphabet = st.sampled_from(list('{}[]:,"0123456789-+.eE truefalsn\\u\t\n'))


@fuzz
@given(st.text(alphabet=_json_alphabet, max_size=120))
def test_json_like_text_parses_or_raises_fastjson_error(text: str) -> None:
    """Text made of JSON's own characters reaches deep into the pure-Python path."""
    _loads_or_refuses(text)


@fuzz
@given(st.integers(min_value=1, max_value=5000), st.sampled_from(["[", "{1:", '{"a":']))
def test_deep_nesting_is_an_error_not_a_crash(depth: int, opener: str) -> None:
    _loads_or_refuses(opener * depth)
    _loads_or_refuses(opener * depth + "1")


@fuzz
@given(st.integers(min_value=4000, max_value=6000))
def test_a_huge_integer_is_an_error_or_a_number(digits: int) -> None:
    _loads_or_refuses("{0:" + "9" * digits + "}")
    _loads_or_refuses("{" + "9" * digits + ":1}")


@fuzz
@given(json_values)
def test_standard_json_parses_like_json_loads(value: Any) -> None:
    text = json.dumps(value)
    assert fastjson.loads(text) == json.loads(text)
    assert fastjson.loads(text.encode()) == json.loads(text)


def _fastjson_text(value: Any) -> str:
    """fastjson's writing: a Pairs' keys unquoted as their own JSON."""
    if isinstance(value, fastjson.Pairs):
        inner = ",".join(f"{_fastjson_text(k)}:{_fastjson_text(v)}" for k, v in value)
        return "{" + inner + "}"
    if isinstance(value, dict):
        inner = ",".join(f"{json.dumps(k)}:{_fastjson_text(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ",".join(_fastjson_text(v) for v in value) + "]"
    return json.dumps(value)


object_keys = st.dictionaries(_text, st.integers(), min_size=1, max_size=3)
pairs = st.lists(st.tuples(object_keys, json_values), min_size=1, max_size=4).map(fastjson.Pairs)


@fuzz
@given(pairs)
def test_object_keys_round_trip_as_pairs(value: fastjson.Pairs) -> None:
    assert fastjson.loads(_fastjson_text(value)) == value


@fuzz
@given(st.dictionaries(st.integers(), json_values, min_size=1, max_size=5))
def test_number_keys_come_back_as_their_text(value: dict[int, Any]) -> None:
    text = "{" + ",".join(f"{k}:{json.dumps(v)}" for k, v in value.items()) + "}"
    assert fastjson.loads(text) == {str(k): json.loads(json.dumps(v)) for k, v in value.items()}
