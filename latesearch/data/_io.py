"""Plumbing shared by the readers: gzip-aware line reading, format sniffing, error policy."""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from latesearch.errors import ConfigError, InputError

OnError = Literal["raise", "skip"]
PathLike = str | os.PathLike[str]
ITERABLE = "<iterable>"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class ReadStats:
    """What a read kept and skipped; pass one as `stats=` and look at it afterwards.

    `skipped` counts skipped records per reason: blank_line, bad_utf8, bad_json,
    bad_columns, missing_field, bad_field, duplicate_id, empty_text, unknown_id,
    unterminated, malformed, unreadable (a file of a folder). `examples` keeps the first
    `max_examples` messages.
    `read` counts records returned; `empty` those returned with blank text (documents only).
    One `ReadStats` may be shared by several reads: counts add up.
    """

    read: int = 0
    empty: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 5

    @property
    def total_skipped(self) -> int:
        """Records skipped, all reasons together."""
        return sum(self.skipped.values())


class Bad(Exception):
    """A bad record found by a parser; `Policy.bad` raises it as `InputError` or counts it."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.field = reason, message, field


class Policy:
    """The caller's `on_error`: raise `InputError`, or skip and count into `stats`.

    Records are located as `path:line`, or with `items` (a Python iterable's name) as
    `items[n]`, n counted from 0."""

    def __init__(
        self, path: object, on_error: str, stats: ReadStats | None, items: str | None = None
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.path, self.skip, self.items = str(path), on_error == "skip", items
        self.stats = stats if stats is not None else ReadStats()

    def bad(self, err: Bad, line: int | None) -> None:
        """Raise `err` located at `line` of this policy's file (the item's position, for
        `items`), or count it when skipping."""
        if self.items is not None:
            error = InputError(err.message, path=f"{self.items}[{line}]", field=err.field)
        else:
            error = InputError(err.message, path=self.path, line=line, field=err.field)
        if not self.skip:
            raise error from None
        stats = self.stats
        stats.skipped[err.reason] = stats.skipped.get(err.reason, 0) + 1
        if len(stats.examples) < stats.max_examples:
            stats.examples.append(str(error))


def check_on_error(on_error: str) -> None:
    """Fail early (at call time, not at the first `next`) on a bad `on_error`."""
    Policy(ITERABLE, on_error, None)


def resolve(source: PathLike) -> Path:
    """`source` as a `Path` that exists, else `InputError`."""
    path = Path(source)
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    return path


def find_file(folder: Path, *names: str) -> Path:
    """The first of `names` (each also tried with .gz) present in `folder`."""
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise InputError(f"folder has no {' or '.join(names)} (plain or .gz)", path=str(folder))


def open_binary(path: Path) -> IO[bytes]:
    """Open `path` for reading bytes, decompressing gzip (detected by its magic bytes)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")  # noqa: SIM115


def read_lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(1-based line number, line without its ending) per line; None for invalid UTF-8.
    Blank lines at the end of the file are dropped (editors leave them); a blank line
    before more data is passed on, for the parser to report."""
    lineno = 0
    blank: list[tuple[int, str]] = []  # held until a line with data follows
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield from blank
                    blank.clear()
                    yield lineno, None
                    continue
                if lineno == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                text = text.rstrip("\r\n")
                if not text.strip():
                    blank.append((lineno, text))
                    continue
                yield from blank
                blank.clear()
                yield lineno, text
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        message = f"corrupt compressed data: {exc}"
        raise InputError(message, path=str(path), line=lineno + 1) from exc


def first_line(path: Path, limit: int = 1000) -> str | None:
    """The first non-blank line (decoded leniently), for sniffing; None if there is none."""
    try:
        with open_binary(path) as f:
            for i, raw in enumerate(f):
                text = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
                if text or i >= limit:
                    return text or None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(f"corrupt compressed data: {exc}", path=str(path)) from exc
    return None


def detect_format(
    path: Path,
    extensions: dict[str, str],
    sniff: Callable[[str], str | None],
    what: str,
    forced: str | None = None,
) -> str:
    """Format of `path`: `forced`, else by extension (under any .gz), else sniffed."""
    known = sorted(set(extensions.values()))
    if forced is not None:
        if forced not in known:
            raise ConfigError(f"format must be one of {known}, got {forced!r}")
        return forced
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in extensions:
        return extensions[suffixes[-1]]
    line = first_line(path)
    found = sniff(line) if line is not None else None
    if found is None:
        if line is None:
            return known[0]  # empty file: any reader yields nothing
        raise InputError(f"cannot tell the {what} format (one of {known}) from line {line[:60]!r}",
                         path=str(path))
    return found


def parse_json(line: str) -> Any:
    """A JSON line, or `Bad` (bad_json)."""
    try:
        return json.loads(line)
    except ValueError as exc:
        raise Bad("bad_json", f"malformed JSON: {exc}") from None


def check_line(line: str | None) -> str:
    """`line` if usable, else `Bad` for invalid UTF-8 or a blank line."""
    if line is None:
        raise Bad("bad_utf8", "invalid UTF-8")
    if not line.strip():
        raise Bad("blank_line", "blank line")
    return line


ID_RULE = "a non-empty string without whitespace or control characters"
# not text: control characters (tab, newline and carriage return aside), DEL, lone
# surrogates; an id refuses every whitespace character as well
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_IN_ID = re.compile("[\\s\x00-\x1f\x7f\ud800-\udfff]")


def first_non_text(text: str) -> str | None:
    """The first character of `text` that is not text (see _NOT_TEXT), or None."""
    found = _NOT_TEXT.search(text)
    return None if found is None else found.group()


def first_surrogate(text: str) -> str | None:
    """The first lone surrogate in `text`, or None: the one character of a Python `str`
    that UTF-8 (the doc store, the tokenizers) cannot hold."""
    found = _SURROGATE.search(text)
    return None if found is None else found.group()


def id_problem(value: str) -> str | None:
    """Why `value` breaks the id rule every reader and writer shares (ids go into TREC run
    and qrels files, whose fields are separated by whitespace), or None."""
    if not value:
        return "empty id"
    bad = _NOT_IN_ID.search(value)
    if bad is not None:
        return f"id {value!r} holds {bad.group()!r}; an id must be {ID_RULE}"
    return None


def as_id(value: object, field: str) -> str:
    """An id as a stripped `str` obeying the id rule (ints are converted), else `Bad`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise Bad("bad_field", f"id must be a string or an integer, got {type(value).__name__}",
                  field)
    value = value.strip()
    problem = id_problem(value)
    if problem is not None:
        raise Bad("bad_field", problem, field)
    return value


def as_text(value: object, field: str) -> str:
    """A text field as `str`, else `Bad`."""
    if not isinstance(value, str):
        raise Bad("bad_field", f"expected a string, got {type(value).__name__}", field)
    return value


def pick(obj: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of `keys` present in `obj`."""
    return next((key for key in keys if key in obj), None)


def sniff_common(line: str) -> str | None:
    """JSON lines, TREC SGML or TSV, judged by a first non-blank line."""
    if line.startswith(("{", "[")):
        return "jsonl"
    if line.startswith("<"):
        return "trec"
    return "tsv" if "\t" in line else None
