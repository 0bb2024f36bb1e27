"""The .env grammar: read, quote and edit dotenv text without rewriting it.

Pure functions over str and bytes; docs/dotenv-format.md is the grammar in
words and static/js/dotenv.js is its twin for the web admin. Error messages
name line numbers and keys but never echo a line, since lines hold secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "Diff",
    "DotenvError",
    "Entry",
    "comparable",
    "compare",
    "decode",
    "formatting_changes",
    "is_key",
    "parse",
    "parse_bytes",
    "quote",
    "render",
    "set_values",
    "to_dict",
    "to_json",
    "to_shell",
    "unset_keys",
]

_BOM = "\ufeff"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BLANK_OR_COMMENT = re.compile(r"[ \t]*(?:#.*)?")
_ASSIGNMENT = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z0-9_.-]+)[ \t]*=")
_KEY = re.compile(r"[A-Za-z0-9_.-]+")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT_AFTER_SPACE = re.compile(r"[ \t]#")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_QUOTE_NAMES = {"'": "single", '"': "double", "`": "backtick"}
_QUOTED_RUN = {q: re.compile(f"[^{q}\\\\]*") for q in _QUOTE_NAMES}
# \` is read and written so that a file dotMage writes stays safe to source:
# a shell runs a command in backticks even inside double quotes.
_DOUBLE_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    '"': '"',
    "\\": "\\",
    "$": "$",
    "`": "`",
}
_DOUBLE_SPECIAL = re.compile(r'[\\"\n\r$`]')
_DOUBLE_WRITTEN = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "$": "\\$",
    "`": "\\`",
}


class DotenvError(ValueError):
    """Text that is not valid dotenv, or a key or value that cannot be written."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Entry:
    """One assignment; line is where it starts, counting from 1."""

    key: str
    value: str
    line: int


@dataclass(frozen=True)
class Diff:
    """How the values of two files differ; formatting alone is not a change."""

    added: list[str]
    removed: list[str]
    changed: list[str]
    only_formatting: bool


@dataclass(frozen=True)
class _Line:
    content: str
    ending: str


@dataclass(frozen=True)
class _Assignment:
    entry: Entry
    first: int
    last: int
    head: str  # first line up to the value: indent, export, key, "=", spaces
    tail: str  # last line after the value: spaces and a comment


def decode(data: bytes) -> str:
    """Turn the bytes of a file into text, honouring a byte order mark."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode_utf16(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].decode("utf-8")
        line = len(_LINE_BREAK.findall(before)) + 1
        raise DotenvError(
            "the file is not UTF-8 text; save it as UTF-8", line
        ) from None


def _decode_utf16(data: bytes) -> str:
    codec = "utf-16-le" if data.startswith(b"\xff\xfe") else "utf-16-be"
    try:
        return data[2:].decode(codec)
    except UnicodeDecodeError:
        message = "the file has a UTF-16 byte order mark but is not UTF-16 text"
        raise DotenvError(message) from None


def parse(text: str) -> list[Entry]:
    """Read every assignment in order, duplicates included."""
    _, lines = _split(text)
    return [assignment.entry for assignment in _scan(lines)]


def to_dict(entries: Iterable[Entry]) -> dict[str, str]:
    """Collapse entries to values: the last duplicate wins, first-seen order."""
    values: dict[str, str] = {}
    for entry in entries:
        values[entry.key] = entry.value
    return values


def parse_bytes(data: bytes) -> dict[str, str]:
    """Read the values a file's bytes hold."""
    return to_dict(parse(decode(data)))


def _split(text: str) -> tuple[str, list[_Line]]:
    """Cut text into lines, keeping each ending so edits can put it back."""
    bom = _BOM if text.startswith(_BOM) else ""
    lines = []
    start = len(bom)
    for match in _LINE_BREAK.finditer(text, start):
        lines.append(_Line(text[start : match.start()], match.group()))
        start = match.end()
    if start < len(text):
        lines.append(_Line(text[start:], ""))
    return bom, lines


def _scan(lines: list[_Line]) -> list[_Assignment]:
    found = []
    index = 0
    while index < len(lines):
        if _BLANK_OR_COMMENT.fullmatch(lines[index].content):
            index += 1
            continue
        assignment = _read_assignment(lines, index)
        found.append(assignment)
        index = assignment.last + 1
    return found


def _read_assignment(lines: list[_Line], index: int) -> _Assignment:
    content = lines[index].content
    match = _ASSIGNMENT.match(content)
    if match is None:
        if "=" not in content:
            raise DotenvError("not an assignment: expected KEY=value", index + 1)
        message = "invalid key: use letters, digits, _, . and - before the ="
        raise DotenvError(message, index + 1)
    rest = content[match.end() :]
    opener = len(content) - len(rest.lstrip(" \t"))
    if content[opener : opener + 1] in _QUOTE_NAMES:
        return _read_quoted(lines, index, match.group(1), opener)
    return _read_bare(content, index, match.group(1), match.end())


def _read_bare(content: str, index: int, key: str, start: int) -> _Assignment:
    raw = content[start:]
    comment = _COMMENT_AFTER_SPACE.search(raw)
    if comment:
        raw = raw[: comment.start()]
    value = raw.strip(" \t")
    # An empty value keeps its spaces in the tail, so a replacement cannot
    # end up glued to a following "#" (which would then be part of the value).
    value_at = start + len(raw) - len(raw.lstrip(" \t")) if value else start
    head, tail = content[:value_at], content[value_at + len(value) :]
    return _Assignment(Entry(key, value, index + 1), index, index, head, tail)


def _read_quoted(lines: list[_Line], index: int, key: str, opener: int) -> _Assignment:
    quote_char = lines[index].content[opener]
    value, last, end = _read_quoted_value(lines, index, opener + 1, quote_char)
    tail = lines[last].content[end:]
    if tail.strip(" \t")[:1] not in ("", "#"):
        message = "unexpected text after the closing quote (a comment needs #)"
        raise DotenvError(message, last + 1)
    head = lines[index].content[:opener]
    return _Assignment(Entry(key, value, index + 1), index, last, head, tail)


def _read_quoted_value(lines: list[_Line], index: int, column: int, quote_char: str):
    """Read up to the closing quote, crossing lines; return value, line, column."""
    parts = []
    last, content = index, lines[index].content
    while True:
        run = _QUOTED_RUN[quote_char].match(content, column)
        parts.append(run.group())
        column = run.end()
        if column < len(content) and content[column] == quote_char:
            return "".join(parts), last, column + 1
        if column < len(content):
            text, column = _unescape(content, column, quote_char)
            parts.append(text)
            continue
        last += 1
        if last == len(lines):
            message = f"unterminated {_QUOTE_NAMES[quote_char]}-quoted value"
            raise DotenvError(message, index + 1)
        parts.append("\n")
        content, column = lines[last].content, 0


def _unescape(content: str, column: int, quote_char: str) -> tuple[str, int]:
    """Read the backslash at column; unknown escapes keep their backslash."""
    following = content[column + 1 : column + 2]
    if following == quote_char:
        return quote_char, column + 2
    if quote_char == '"' and following in _DOUBLE_ESCAPES:
        return _DOUBLE_ESCAPES[following], column + 2
    return "\\", column + 1


def quote(value: str) -> str:
    """Write value so that parse() reads it back exactly, as plainly as is safe."""
    if _PLAIN_VALUE.fullmatch(value):
        return value
    if _fits_single_quotes(value):
        return f"'{value}'"
    escaped = _DOUBLE_SPECIAL.sub(lambda match: _DOUBLE_WRITTEN[match.group()], value)
    return f'"{escaped}"'


def _fits_single_quotes(value: str) -> bool:
    # A trailing backslash would turn the closing quote into an escaped one,
    # and a real line break would come back as LF whatever it was.
    unsafe = "'" in value or "\n" in value or "\r" in value
    return not unsafe and not value.endswith("\\")


def render(pairs: Mapping[str, str]) -> str:
    """Write values as a fresh file, one KEY=value line each."""
    return "".join(_assignment_line(key, value, "\n") for key, value in pairs.items())


def _assignment_line(key: str, value: str, ending: str) -> str:
    if not _KEY.fullmatch(key):
        raise DotenvError(f"invalid key {key!r}: use letters, digits, _, . and -")
    return f"{key}={quote(value)}{ending}"


def set_values(text: str, updates: Mapping[str, str]) -> str:
    """Change values in place, keeping every other line byte for byte."""
    bom, lines = _split(text)
    found = _scan(lines)
    last_of = {assignment.entry.key: assignment for assignment in found}
    targets = {a.first: a for key, a in last_of.items() if key in updates}
    out = [bom]
    index = 0
    while index < len(lines):
        target = targets.get(index)
        if target is None:
            out.append(lines[index].content + lines[index].ending)
            index += 1
            continue
        value = updates[target.entry.key]
        out.append(_reassigned(target, value) + lines[target.last].ending)
        index = target.last + 1
    new_keys = {key: value for key, value in updates.items() if key not in last_of}
    return _append("".join(out), new_keys, _first_ending(lines))


def _reassigned(assignment: _Assignment, value: str) -> str:
    tail = assignment.tail
    if tail.startswith("#"):
        # After a closing quote "#" needs no space; after a bare value it does.
        tail = " " + tail
    return assignment.head + quote(value) + tail


def _first_ending(lines: list[_Line]) -> str:
    return next((line.ending for line in lines if line.ending), "\n")


def _append(text: str, pairs: Mapping[str, str], ending: str) -> str:
    added = [_assignment_line(key, value, ending) for key, value in pairs.items()]
    if added and text and not text.endswith(("\n", "\r")):
        text += ending
    return text + "".join(added)


def is_key(name: str) -> bool:
    """Whether name can be a key: letters, digits, _, . and -."""
    return _KEY.fullmatch(name) is not None


def unset_keys(text: str, keys: Iterable[str]) -> str:
    """Remove every assignment of keys, all its lines, keeping the rest as is."""
    doomed = set(keys)
    bom, lines = _split(text)
    removed = set()
    for assignment in _scan(lines):
        if assignment.entry.key in doomed:
            removed.update(range(assignment.first, assignment.last + 1))
    kept = (line for index, line in enumerate(lines) if index not in removed)
    return bom + "".join(line.content + line.ending for line in kept)


def to_shell(pairs: Mapping[str, str]) -> str:
    """Write export lines that sh, bash and zsh can eval or source."""
    lines = []
    for key, value in pairs.items():
        if not _SHELL_NAME.fullmatch(key):
            message = f"{key!r} is not a shell variable name (letters, digits, _)"
            raise DotenvError(message)
        if "\0" in value:
            raise DotenvError(f"the value of {key} has a NUL, which shells drop")
        lines.append("export " + key + "='" + value.replace("'", "'\\''") + "'\n")
    return "".join(lines)


def to_json(pairs: Mapping[str, str]) -> str:
    """Write values as one JSON object, keys in file order."""
    return json.dumps(dict(pairs), indent=2, ensure_ascii=False) + "\n"


def comparable(text: str) -> dict[str, str]:
    """The part of a file that diff compares: its values, not its layout."""
    return to_dict(parse(text))


def compare(old_text: str, new_text: str) -> Diff:
    """Say which keys a new text adds, removes or changes against an old one."""
    old, new = comparable(old_text), comparable(new_text)
    changed = [key for key in old.keys() & new.keys() if old[key] != new[key]]
    return Diff(
        added=sorted(new.keys() - old.keys()),
        removed=sorted(old.keys() - new.keys()),
        changed=sorted(changed),
        only_formatting=old == new and old_text != new_text,
    )


def formatting_changes(old_text: str, new_text: str) -> list[str]:
    """Name what differs between two texts that hold the same values."""
    old, new = _layout(old_text), _layout(new_text)
    if not old["line endings"] or not new["line endings"]:
        # A file of one line without a final break uses no line ending at all.
        del old["line endings"], new["line endings"]
    changes = [name for name in old if old[name] != new[name]]
    if not changes and old_text != new_text:
        # Same kinds of line break, placed differently (a mixed file).
        changes.append("line endings")
    return changes


def _layout(text: str) -> dict:
    """The parts of a file that hold no value, each under the name diff shows."""
    bom, lines = _split(text)
    inside: set[int] = set()
    assignments = []
    for assignment in _scan(lines):
        span = range(assignment.first, assignment.last + 1)
        inside.update(span)
        assignments.append([lines[index].content for index in span])
    return {
        "byte order mark": bom,
        "line endings": {line.ending for line in lines if line.ending},
        "final line break": text.endswith(("\n", "\r")),
        "comments or blank lines": [
            line.content for index, line in enumerate(lines) if index not in inside
        ],
        "how values are written (quoting, spacing, export, order)": assignments,
    }
