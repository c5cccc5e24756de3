"""Reading TOML policy files with positions for error messages.

``tomllib`` parses (it is strict and fast) but keeps no positions; this
module adds a small locator that finds where a key or a value stands in the
source text, so that an unknown capability in line 12 is reported at line 12.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Optional, Sequence

from ._values import Value
from .errors import Diagnostic


def _tomllib():
    """The TOML parser, imported on first use: a run with a warm policy cache parses no TOML."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    return tomllib

_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


class TomlFile(Value):
    """A parsed TOML document with its text, for locating keys and values.

    A hand-written class, not a ``@dataclass``: importing ``dataclasses`` would
    cost every start ~17 ms (see :mod:`capimport._values`).
    """

    __slots__ = ("path", "text", "data")
    path: str
    text: str
    data: dict

    def __init__(self, path: str, text: str, data: dict) -> None:
        self.path = path
        self.text = text
        self.data = data

    def _key(self) -> tuple:
        return (self.path, self.text, self.data)

    def locate(self, keys: Sequence[str], value: Any = None) -> tuple[int, int]:
        """Line and column (1-based) of the key path *keys*, or of *value* within it.

        Falls back to the nearest enclosing key or table that can be found.
        """
        lines = self.text.splitlines()
        section_start, section_end, remaining = _find_section(lines, keys)
        position = (section_start + 1, 1) if section_start >= 0 else (1, 1)
        for key in remaining:
            found = _find_key(lines, key, section_start + 1, section_end)
            if found is None:
                break
            position = (found[0] + 1, found[1] + 1)
            section_start = found[0] - 1  # a nested key may stand on the same line (inline table)
        if value is not None:
            hit = _find_value(lines, value, position[0] - 1, section_end)
            if hit is not None:
                position = (hit[0] + 1, hit[1] + 1)
        return position

    def diagnostic(self, keys: Sequence[str], message: str, value: Any = None,
                   severity: str = "error") -> Diagnostic:
        line, column = self.locate(keys, value)
        return Diagnostic(self.path, line, column, message, severity)


def load(path: str) -> tuple[Optional[TomlFile], Optional[Diagnostic]]:
    """Parse *path*; on failure return a diagnostic with the parser's line and column."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        return None, Diagnostic(path, 0, 0, f"cannot read: {error.strerror or error}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return None, Diagnostic(path, line, 1, "not valid UTF-8")
    tomllib = _tomllib()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        match = _POSITION.search(message)
        line, column = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        reason = _POSITION.sub("", message).strip()
        return None, Diagnostic(path, line, column, f"TOML syntax error: {reason}")
    return TomlFile(path, text, data), None


def _split_dotted(header: str) -> list[str]:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', header)
    return [a or b or c for a, b, c in parts]


def _find_section(lines: list[str], keys: Sequence[str]) -> tuple[int, int, list[str]]:
    """The table header that holds the longest prefix of *keys*: (start, end, rest of keys)."""
    best = (-1, len(lines), list(keys))
    for index, line in enumerate(lines):
        match = _HEADER.match(line)
        if not match:
            continue
        header = _split_dotted(match.group(1))
        if list(keys[: len(header)]) == header and len(header) > len(keys) - len(best[2]):
            end = next((j for j in range(index + 1, len(lines)) if _HEADER.match(lines[j])), len(lines))
            best = (index, end, list(keys[len(header):]))
    if best[0] == -1:
        end = next((j for j in range(len(lines)) if _HEADER.match(lines[j])), len(lines))
        best = (-1, end, list(keys))
    return best


def _find_key(lines: list[str], key: str, start: int, end: int) -> Optional[tuple[int, int]]:
    pattern = re.compile(r'(^|[{,\s.])(' + re.escape(key) + r'|"' + re.escape(key) + r'"|\'' +
                         re.escape(key) + r'\')\s*[=.]')
    for index in range(max(start, 0), end):
        match = pattern.search(lines[index])
        if match:
            return index, match.start(2)
    return None


def _find_value(lines: list[str], value: Any, start: int, end: int) -> Optional[tuple[int, int]]:
    if isinstance(value, str):
        needles = [f'"{value}"', f"'{value}'", f'"""{value}', value]
    else:
        needles = [str(value).lower() if isinstance(value, bool) else str(value)]
    for needle in needles:
        for index in range(max(start, 0), min(end + 1, len(lines))):
            column = lines[index].find(needle)
            if column >= 0:
                return index, column
    return None
