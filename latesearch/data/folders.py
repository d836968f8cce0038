"""A folder of documents as a collection: text, Markdown, HTML, JSONL and TSV files.

Every file under the folder (recursively, in sorted order; hidden files and folders and
other extensions passed over) gives documents: a `.txt`, `.md` or `.html` file one,
whose id is its path relative to the folder; a `.jsonl` or `.tsv` file one per record,
whose id is that path, `#`, and the record's own id. Each document's metadata holds the
file's `path` (relative, with `/`), `mtime` (seconds since the epoch) and `size` (bytes):
`latesearch update --sync` compares them with the folder to find what changed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from latesearch.data._io import Bad, Policy, ReadStats
from latesearch.errors import ConfigError

if TYPE_CHECKING:
    from latesearch.data.collections import Document

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
RECORD_SUFFIXES = {".jsonl": "jsonl", ".tsv": "tsv"}
SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, *RECORD_SUFFIXES)
FILE_FIELDS = ("path", "mtime", "size")  # the metadata every document of a folder carries
_ESCAPE = re.compile(r"[\s%]")  # escaped in ids (ids hold no whitespace), '%' so it reverses
_HTML_BLOCKS = (
    "p div br li tr td th h1 h2 h3 h4 h5 h6 pre blockquote section article header footer dt dd"
).split()
_MD_TITLE = re.compile(r"\A\s*#[ \t]+(.+?)[ \t#]*(?:\n|\Z)")


@dataclass(frozen=True, slots=True)
class FileState:
    """What `update --sync` compares: a file's modification time and size."""

    mtime: float
    size: int


def is_document_folder(path: Path) -> bool:
    """Whether `path` is a folder of documents: not a BEIR folder (one holding
    corpus.jsonl, or queries.jsonl or qrels/ without it, whose corpus is missing)."""
    if not path.is_dir():
        return False
    beir = ("corpus.jsonl", "corpus.jsonl.gz", "queries.jsonl", "queries.jsonl.gz", "qrels")
    return not any((path / name).exists() for name in beir)


def folder_files(folder: Path) -> dict[str, FileState]:
    """{relative path: FileState} of the files under `folder` that are read as documents."""
    found: dict[str, FileState] = {}
    for relative, path in _walk(folder):
        stat = path.stat()
        found[relative] = FileState(stat.st_mtime, stat.st_size)
    return found


def file_id(relative: str) -> str:
    """The document id of a file (a record's id follows it after `#`): its relative path,
    whitespace and `%` written as %XX (ids hold no whitespace)."""
    return _ESCAPE.sub(lambda m: f"%{ord(m.group()):02X}", relative)


def read_folder(
    folder: Path,
    on_error: str,
    stats: ReadStats,
    only: Iterable[str] | None = None,
) -> Iterator[tuple[int, Document]]:
    """(line, Document) for every document of the folder's files (of `only`, relative
    paths, when given). A file that cannot be read or parsed raises `InputError` naming it
    (with `on_error="skip"`: is counted into `stats` and passed over)."""
    wanted = None if only is None else set(only)
    for relative, path in _walk(folder):
        if wanted is not None and relative not in wanted:
            continue
        policy = Policy(path, on_error, stats)
        try:
            stat = path.stat()
        except OSError as err:
            policy.bad(Bad("unreadable", f"cannot read: {err.strerror or err}"), None)
            continue
        fields = {"path": relative, "mtime": stat.st_mtime, "size": stat.st_size}
        suffix = path.suffix.lower()
        if suffix in RECORD_SUFFIXES:
            yield from _records(path, RECORD_SUFFIXES[suffix], policy, relative, fields)
            continue
        try:
            data = path.read_bytes()
            title, text = _html(data) if suffix in HTML_SUFFIXES else _plain(data, suffix)
        except OSError as err:
            policy.bad(Bad("unreadable", f"cannot read: {err.strerror or err}"), None)
            continue
        except Bad as err:
            policy.bad(err, None)
            continue
        from latesearch.data.collections import Document

        yield 0, Document(file_id(relative), text, title, dict(fields))


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of the document files under `folder`, sorted."""
    for root, dirs, files in os.walk(folder, onerror=_raise, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                continue
            path = Path(root, name)
            yield path.relative_to(folder).as_posix(), path


def _raise(err: OSError) -> None:
    from latesearch.errors import InputError

    raise InputError(f"cannot list: {err.strerror or err}", path=str(err.filename))


def _plain(data: bytes, suffix: str) -> tuple[str, str]:
    """(title, text) of a text or Markdown file: a Markdown file opening with a `# `
    heading has it as its title."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise Bad("bad_utf8", f"not UTF-8 text (byte {err.start})") from None
    if suffix != ".txt":
        match = _MD_TITLE.match(text)
        if match:
            return match.group(1).strip(), text[match.end() :].lstrip("\n")
    return "", text


def _html(data: bytes) -> tuple[str, str]:
    """(title, visible text) of an HTML page, extracted by Beautiful Soup."""
    try:
        from bs4 import BeautifulSoup
    except ImportError:
        raise ConfigError("reading .html files needs Beautiful Soup: pip install "
                          "'latesearch[html]'") from None  # fmt: skip
    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "template", "noscript", "head"]):
        tag.decompose()
    for tag in soup(_HTML_BLOCKS):  # a line each; inline elements (b, a, span) run on
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    return title, "\n".join(line for line in lines if line)


def _records(
    path: Path, fmt: str, policy: Policy, relative: str, fields: dict
) -> Iterator[tuple[int, Document]]:
    """The records of a JSONL or TSV file, ids prefixed with the file's id and `#`."""
    from latesearch.data.collections import _read_jsonl, _read_tsv

    read = _read_jsonl if fmt == "jsonl" else _read_tsv
    prefix = file_id(relative)
    try:
        for line, doc in read(path, policy, " "):
            clash = [name for name in FILE_FIELDS if name in doc.metadata]
            if clash:
                message = f"field {clash[0]!r} is set by the folder reader (path, mtime, size)"
                policy.bad(Bad("bad_field", message, clash[0]), line)
                continue
            doc.doc_id = f"{prefix}#{doc.doc_id}"
            doc.metadata.update(fields)
            yield line, doc
    except OSError as err:
        policy.bad(Bad("unreadable", f"cannot read: {err.strerror or err}"), None)
