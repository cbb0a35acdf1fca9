"""JSON text: a large one read a slice at a time (where its values begin and end), and
how deeply a text or a parsed value nests."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from watchkeeper.errors import InputError


@dataclass(frozen=True)
class Deep:
    """What _Text.value gives for a value nested beyond Python's parser: the start of its
    text, to stand for it when it is rejected."""

    text: str


_JSON_READ_BYTES = 1 << 20  # the slice of a large JSON array read and decoded at a time


class _Text:
    """The text of a binary stream, decoded a slice at a time: ``text`` holds what is not
    yet consumed, ``base`` the number of characters before it."""

    def __init__(self, fh: BinaryIO, name: str) -> None:
        self.fh = fh
        self.name = name
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text = ""
        self.base = 0
        self.eof = False

    def more(self) -> bool:
        """Read the next slice; False at the end of the stream."""
        if self.eof:
            return False
        data = self.fh.read(_JSON_READ_BYTES)
        try:
            self.text += self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.name}: not valid JSON: {exc}") from exc
        self.eof = not data
        return True

    def read_on(self, i: int) -> bool:
        """Read on until the text from ``i`` is twice as long (or the stream ends), so that
        a value parsed again after each read is parsed a logarithmic number of times, not
        once per slice; False if there was nothing more to read."""
        size = len(self.text) + max(len(self.text) - i, 1)
        read = False
        while len(self.text) < size and self.more():
            read = True
        return read

    def has(self, i: int) -> bool:
        """Whether there is a character at ``i``, reading on as needed."""
        while i >= len(self.text):
            if not self.more():
                return False
        return True

    def at(self, i: int, ch: str) -> bool:
        return self.has(i) and self.text[i] == ch

    def space(self, i: int) -> int:
        while self.has(i) and self.text[i] in " \t\r\n":
            i += 1
        return i

    def forget(self, i: int) -> int:
        """Drop the text before ``i`` once it is long; ``i`` in the text that is left."""
        if i < _JSON_READ_BYTES:
            return i
        self.text = self.text[i:]
        self.base += i
        return 0

    def value(self, decoder: json.JSONDecoder, i: int) -> tuple[Any, int]:
        """The JSON value starting at ``i`` and where it ends; a Deep for a value nested
        beyond Python's parser, with its end found by counting brackets."""
        while True:
            try:
                value, end = decoder.raw_decode(self.text, i)
            except RecursionError:
                end = _value_end(self.text, i)
                while end == len(self.text) and self.more():
                    size = 2 * len(self.text)  # read on to twice as much before counting again
                    while len(self.text) < size and self.more():
                        pass
                    end = _value_end(self.text, i)
                return Deep(self.text[i : min(end, i + 200)]), end
            except json.JSONDecodeError as exc:
                # Cut off by the end of the slice (not by a mistake): read on and retry.
                near_end = exc.pos >= len(self.text) - 6 or exc.msg.startswith("Unterminated")
                if near_end and self.read_on(i):
                    continue
                raise InputError(
                    f"{self.name}: not valid JSON: {exc.msg} at character {self.base + exc.pos}"
                ) from exc
            except ValueError as exc:  # a number beyond Python's 4,300 digits
                raise InputError(f"{self.name}: not valid JSON: {exc}") from exc
            if end == len(self.text) and self.read_on(i):
                continue  # a number or a literal may go on in the next slice
            return value, end


def _space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _value_end(text: str, i: int) -> int:
    """Where the JSON value starting at ``i`` ends (brackets counted outside strings)."""
    depth, in_string, escaped = 0, False, False
    for j in range(i, len(text)):
        ch = text[j]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth <= 0:
                return j + 1
    return len(text)


MAX_NESTING = 64  # deeper JSON goes through Python's parser, and deeper rows are refused


def nesting(chunk: bytes) -> int:
    """The deepest nesting of brackets in JSON text, outside strings, counted line by line
    (a raw newline cannot be inside a JSON string, so a broken line cannot hide the next).
    The text is read in slices of whole lines, so its memory is a few slices' worth, not
    a few dozen bytes per byte of the text."""
    deepest, depth, floor = 0, 0, 0
    start = 0
    while start < len(chunk):
        cut = chunk.find(b"\n", start + _NESTING_SLICE)
        end = len(chunk) if cut < 0 else cut + 1
        found, depth, floor = _nesting(chunk[start:end], depth, floor)
        deepest = max(deepest, found)
        start = end
    return deepest


_NESTING_SLICE = 1 << 20


def _nesting(text: bytes, carried: int, carried_floor: int) -> tuple[int, int, int]:
    """The deepest nesting in one slice that starts a line, given the depth and its floor
    carried from the slices before; and the depth and floor it ends with."""
    b = np.frombuffer(text, dtype=np.uint8)
    n = len(b)
    idx = np.arange(n)
    newline = b == 10
    line_start = np.maximum.accumulate(np.where(newline, idx, -1))
    # A quote is escaped when an odd run of backslashes precedes it.
    backslash = b == 92
    last_plain = np.maximum.accumulate(np.where(backslash, -1, idx))
    run_before = np.zeros(n, dtype=np.int64)
    run_before[1:] = idx[:-1] - last_plain[:-1]
    quote = (b == 34) & (run_before % 2 == 0)
    quotes = np.cumsum(quote)
    at_line = np.where(line_start >= 0, quotes[np.maximum(line_start, 0)], 0)
    inside = (quotes - at_line) % 2 == 1
    opens = ((b == 91) | (b == 123)) & ~inside
    closes = ((b == 93) | (b == 125)) & ~inside
    depth = carried + np.cumsum(opens.astype(np.int64) - closes.astype(np.int64))
    floor = np.minimum.accumulate(np.minimum(np.minimum(depth, 0), carried_floor))
    return int((depth - floor).max()), int(depth[-1]), int(floor[-1])


_CONTAINERS = frozenset((dict, list))  # the containers json gives (exactly these types)


def deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` in a parsed value. Python's parser
    stops near its recursion limit on 3.11 but reads far deeper from 3.12 on, and Arrow
    then recurses through the value without a limit (a 5,000-deep row exhausted memory):
    so a row is refused past the same depth whatever the Python. Iterative, and it visits
    each container once; a row with no container among its values (most) costs a type
    look per value, about an eighth of parsing it."""
    if _CONTAINERS.isdisjoint(map(type, value.values() if isinstance(value, dict) else value)):
        return limit < 1
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        found, depth = stack.pop()
        if depth > limit:
            return True
        inner = found.values() if isinstance(found, dict) else found
        stack.extend((v, depth + 1) for v in inner if isinstance(v, dict | list))
    return False
