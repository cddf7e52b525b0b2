"""A tolerant JSON reader for the bodies RocketMQ brokers and name servers send.

The Java side writes bodies with fastjson, which prints a map key that is not a String as the
key's own JSON, unquoted: ``{0:"127.0.0.1:10911"}`` (broker ids) or
``{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":5}}`` (per-queue tables).
``json.loads`` rejects both, so :func:`loads` accepts any JSON value as an object key.

Objects whose keys are all strings or numbers come back as ``dict`` (a number key becomes its
source text, e.g. ``"0"``); any other object comes back as :class:`Pairs`, a list of
``(key, value)`` tuples in document order. Standard JSON goes through ``json.loads`` (C speed);
only bodies it rejects take the pure-Python path. Used by :mod:`agentprod_operator.rocketmq_models`.
"""

from __future__ import annotations

import json
import json.decoder
import re
from collections.abc import Callable
from typing import TypeAlias

__all__ = ["FastjsonError", "JsonValue", "Pairs", "loads"]


class Pairs(list[tuple["JsonValue", "JsonValue"]]):
    """An object with non-string keys: its ``(key, value)`` entries in document order."""


JsonValue: TypeAlias = (
    "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | Pairs | None"
)


class FastjsonError(ValueError):
    """The text is not JSON even by fastjson's relaxed rules; names the offset."""

    def __init__(self, message: str, *, pos: int) -> None:
        super().__init__(f"{message} at offset {pos}")
        self.pos = pos


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
# json.decoder.scanstring (C when available) is public but missing from typeshed.
_scanstring: Callable[[str, int, bool], tuple[str, int]] = vars(json.decoder)["scanstring"]
_CONSTANTS: dict[str, JsonValue] = {"true": True, "false": False, "null": None}


def loads(data: str | bytes) -> JsonValue:
    """Parse one JSON document that may use non-string object keys (see module docstring).

    Whatever the input, a document that cannot be parsed raises `FastjsonError` (bad UTF-8,
    nesting too deep for the parser, an integer too long to convert included).
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise FastjsonError(f"not UTF-8 ({exc.reason})", pos=exc.start) from None
    try:
        return _loads(text)
    except RecursionError:
        raise FastjsonError("nested too deeply", pos=0) from None


def _loads(text: str) -> JsonValue:
    try:
        value: JsonValue = json.loads(text)
    except json.JSONDecodeError:
        pass
    except ValueError as exc:  # an integer beyond sys.get_int_max_str_digits()
        raise FastjsonError(str(exc), pos=0) from None
    else:
        return value
    parser = _Parser(text)
    pos = parser.skip(0)
    value, pos = parser.value(pos)
    pos = parser.skip(pos)
    if pos != len(text):
        raise FastjsonError("extra data after the document", pos=pos)
    return value


class _Parser:
    """Recursive descent over ``text``; every method takes and returns a position."""

    def __init__(self, text: str) -> None:
        self.text = text

    def skip(self, pos: int) -> int:
        match = _WS.match(self.text, pos)
        return match.end() if match else pos

    def value(self, pos: int) -> tuple[JsonValue, int]:
        text = self.text
        if pos >= len(text):
            raise FastjsonError("unexpected end of input", pos=pos)
        char = text[pos]
        if char == '"':
            return self.string(pos)
        if char == "{":
            return self.object(pos)
        if char == "[":
            return self.array(pos)
        for word, constant in _CONSTANTS.items():
            if text.startswith(word, pos):
                return constant, pos + len(word)
        number, end = self.number(pos)
        if "." in number or "e" in number.lower():
            return float(number), end
        try:
            return int(number), end
        except ValueError:  # beyond sys.get_int_max_str_digits()
            raise FastjsonError(f"integer of {len(number)} digits is too long", pos=pos) from None

    def string(self, pos: int) -> tuple[str, int]:
        try:
            return _scanstring(self.text, pos + 1, True)
        except json.JSONDecodeError as exc:
            raise FastjsonError(f"bad string: {exc.msg}", pos=exc.pos) from None

    def number(self, pos: int) -> tuple[str, int]:
        match = _NUMBER.match(self.text, pos)
        if match is None:
            raise FastjsonError(f"unexpected character {self.text[pos]!r}", pos=pos)
        return match.group(), match.end()

    def key(self, pos: int) -> tuple[JsonValue, bool, int]:
        """An object key: (value, is_plain, end); numbers stay as their source text."""
        char = self.text[pos] if pos < len(self.text) else ""
        if char == "-" or char.isdigit():
            number, end = self.number(pos)
            return number, True, end
        key, end = self.value(pos)
        return key, isinstance(key, str), end

    def object(self, pos: int) -> tuple[JsonValue, int]:
        entries: list[tuple[JsonValue, JsonValue]] = []
        plain = True
        pos = self.skip(pos + 1)
        if self.text.startswith("}", pos):
            return {}, pos + 1
        while True:
            key, key_plain, pos = self.key(pos)
            plain = plain and key_plain
            pos = self.expect(":", self.skip(pos))
            item, pos = self.value(self.skip(pos))
            entries.append((key, item))
            pos = self.skip(pos)
            if self.text.startswith(",", pos):
                pos = self.skip(pos + 1)
                continue
            pos = self.expect("}", pos)
            if plain:
                return {str(k): v for k, v in entries}, pos
            return Pairs(entries), pos

    def array(self, pos: int) -> tuple[JsonValue, int]:
        items: list[JsonValue] = []
        pos = self.skip(pos + 1)
        if self.text.startswith("]", pos):
            return items, pos + 1
        while True:
            item, pos = self.value(pos)
            items.append(item)
            pos = self.skip(pos)
            if self.text.startswith(",", pos):
                pos = self.skip(pos + 1)
                continue
            return items, self.expect("]", pos)

    def expect(self, char: str, pos: int) -> int:
        if not self.text.startswith(char, pos):
            found = repr(self.text[pos]) if pos < len(self.text) else "end of input"
            raise FastjsonError(f"expected {char!r}, found {found}", pos=pos)
        return pos + 1
