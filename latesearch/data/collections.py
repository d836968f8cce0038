"""Streamed document collections: MS MARCO TSV, BEIR JSONL, TREC SGML, or Python iterables."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from latesearch.data._io import (
    ITERABLE,
    Bad,
    PathLike,
    Policy,
    ReadStats,
    as_id,
    as_text,
    check_line,
    detect_format,
    find_file,
    first_line,
    first_surrogate,
    open_binary,
    parse_json,
    pick,
    read_lines,
    resolve,
    sniff_common,
)
from latesearch.data._trec import clean, iter_records
from latesearch.data.folders import is_document_folder, read_folder
from latesearch.errors import ConfigError, InputError

ID_KEYS = ("_id", "id", "docid", "doc_id")
TEXT_KEYS = ("text", "contents")
HEADER_IDS = ("id", "pid", "docid")
EXTENSIONS = {".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".trec": "trec", ".sgml": "trec"}
_DOCNO = re.compile(r"<DOCNO>(.*?)</DOCNO>", re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.IGNORECASE | re.DOTALL)
_DOC_OPEN = re.compile(rb"<DOC(?:\s[^<>]*)?>", re.IGNORECASE)


class SeenIds(Protocol):
    """Where `read_collection` remembers the ids it returned (a `set` by default)."""

    def __contains__(self, doc_id: object, /) -> bool: ...

    def add(self, doc_id: str, /) -> None: ...


@dataclass(slots=True)
class Document:
    """One document of a collection. Ids are strings; `metadata` holds any other fields
    (JSON values), stored with the text and used by search filters."""

    doc_id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def full_text(self, title_join: str = " ") -> str:
        """Title, `title_join`, text when there is a title (the BEIR way), else the text."""
        return f"{self.title}{title_join}{self.text}" if self.title else self.text


def read_collection(
    source: PathLike | Iterable[Any],
    *,
    title_join: str = " ",
    on_error: str = "raise",
    stats: ReadStats | None = None,
    format: str | None = None,
    seen: SeenIds | None = None,
) -> Iterator[Document]:
    """Stream the documents of `source`, one `Document` at a time, never loading it whole.

    `source` is a file (.tsv, .jsonl/.json, .trec/.sgml, each maybe .gz; others such as .txt are
    sniffed from the first non-blank line; `format` in {"tsv", "jsonl", "trec"} forces one), a
    BEIR folder holding corpus.jsonl(.gz), any other folder as a folder of documents (.txt, .md,
    .html, .jsonl, .tsv files: see `latesearch.data.folders`), or an iterable of `(doc_id,
    text)`, `(doc_id, text, title)`, dicts with JSONL keys or `Document`s (or a mapping id ->
    text). Titles stay separate (see `Document.full_text`); `title_join` only joins several TREC
    `<TITLE>` elements of one record. Every document is checked for what the doc store and
    tokenizers refuse: lone surrogates (in the text, title or metadata) and metadata that is not
    JSON. Bad records raise `InputError` (file, line, field; an iterable's item is
    `documents[n]`, n from 0, its field named as the item names it) or, with `on_error="skip"`,
    are counted into `stats`. Documents with blank text are yielded and counted as
    `stats.empty`. Duplicate ids are caught with `seen`, by default a set of the ids returned
    (about 60-100 bytes per id: ~0.7 GB for MS MARCO's 8.8M passages); the indexer passes one
    backed by its on-disk doc store instead.
    Missing files and unknown formats fail at call time; record errors while iterating.
    """
    if not isinstance(title_join, str):
        raise ConfigError(f"title_join must be a string, got {type(title_join).__name__}")
    if isinstance(source, str | Path) or hasattr(source, "__fspath__"):
        path = _corpus_path(source)  # type: ignore[arg-type]
        if is_document_folder(path):
            if format is not None:
                raise ConfigError(f"{path} is a folder of documents: it takes no format")
            policy = Policy(path, on_error, stats)
            rows = read_folder(path, on_error, policy.stats)
            return _checked(rows, policy, set() if seen is None else seen)
        fmt = detect_format(path, EXTENSIONS, sniff_common, "collection", format)
        policy = Policy(path, on_error, stats)
        parse = {"tsv": _read_tsv, "jsonl": _read_jsonl, "trec": _read_trec}[fmt]
        rows = parse(path, policy, title_join)
    else:
        policy = Policy(ITERABLE, on_error, stats, items="documents")
        items = source.items() if isinstance(source, Mapping) else source
        rows = _read_items(items, policy)
    return _checked(rows, policy, set() if seen is None else seen)


def check_collection(
    source: PathLike | Iterable[Any], *, format: str | None = None, on_error: str = "raise"
) -> None:
    """Fail fast, before anything slow (a model load), on a collection file that cannot
    be indexed: missing, unreadable, without documents, or (with on_error="raise") with a
    bad first record; InputError names the file, line and field. Reads up to the first
    document; an iterable is not read (it may be consumed only once)."""
    if not (isinstance(source, str | Path) or hasattr(source, "__fspath__")):
        return
    path = _corpus_path(source)  # type: ignore[arg-type]
    try:
        first = next(read_collection(path, format=format, on_error=on_error), None)
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror or err}", path=str(path)) from None
    if first is None:
        raise InputError("no documents to index", path=str(path))


def count_documents(source: PathLike | Iterable[Any], *, format: str | None = None) -> int | None:
    """Number of documents, for progress bars, without parsing.

    Exact for valid TSV/JSONL (lines, less a TSV header); for TREC, `<DOC>` tags. For an
    iterable: its `len()`, or None when it has none; None for a folder of documents.
    """
    if not (isinstance(source, str | Path) or hasattr(source, "__fspath__")):
        return len(source) if isinstance(source, Sized) else None
    path = _corpus_path(source)  # type: ignore[arg-type]
    if is_document_folder(path):
        return None
    fmt = detect_format(path, EXTENSIONS, sniff_common, "collection", format)
    with open_binary(path) as f:
        if fmt == "trec":
            return sum(len(_DOC_OPEN.findall(line)) for line in f)
        count, last = 0, b"\n"
        while block := f.read(1 << 20):
            count, last = count + block.count(b"\n"), block[-1:]
    count += last != b"\n"
    if fmt == "tsv" and count and _is_header(first_line(path) or ""):
        count -= 1
    return count


def _corpus_path(source: PathLike) -> Path:
    path = resolve(source)
    if is_document_folder(path):
        return path
    return find_file(path, "corpus.jsonl") if path.is_dir() else path


def _is_header(line: str) -> bool:
    return line.split("\t", 1)[0].strip() in HEADER_IDS


def _checked(
    rows: Iterator[tuple[int, Document]], policy: Policy, seen: SeenIds
) -> Iterator[Document]:
    stats = policy.stats
    for line, doc in rows:
        try:
            _check_storable(doc)
        except Bad as err:
            policy.bad(err, line)
            continue
        if doc.doc_id in seen:
            policy.bad(Bad("duplicate_id", f"duplicate document id {doc.doc_id!r}", "doc_id"), line)
            continue
        seen.add(doc.doc_id)
        stats.read += 1
        if not (doc.text.strip() or doc.title.strip()):
            stats.empty += 1
        yield doc


def _check_storable(doc: Document) -> None:
    """`Bad` unless the doc store and the tokenizer can take `doc`: no lone surrogate in its
    text, title or metadata (JSON, which is checked too). Ids are checked when read."""
    for name in ("text", "title"):
        bad = first_surrogate(getattr(doc, name))
        if bad is not None:
            raise Bad("bad_field", f"holds U+{ord(bad):04X}, a lone surrogate, which is not "
                                   "text", name)  # fmt: skip
    if doc.metadata:
        try:
            dumped = json.dumps(doc.metadata, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise Bad("bad_field", f"metadata is not JSON ({err})", "metadata") from None
        bad = first_surrogate(dumped)
        if bad is not None:
            raise Bad("bad_field", f"metadata holds U+{ord(bad):04X}, a lone surrogate, which "
                                   "is not text", "metadata")  # fmt: skip


def _read_tsv(path: Path, policy: Policy, title_join: str) -> Iterator[tuple[int, Document]]:
    text_col, title_col = 1, 2
    extra: dict[int, str] = {}  # column -> metadata field, named by a header
    width = 0  # columns a row must have when the header names extra ones
    for lineno, line in read_lines(path):
        try:
            cols = check_line(line).split("\t")
            if lineno == 1 and _is_header(cols[0]):
                text_col, title_col, extra = _tsv_header(cols)
                width = len(cols) if extra else 0
                continue
            if len(cols) < 2:
                raise Bad("bad_columns", "missing the text column (expected id<TAB>text)", "text")
            if width and len(cols) != width:
                raise Bad("bad_columns", f"expected {width} tab-separated columns (as the "
                                         f"header names), got {len(cols)}")  # fmt: skip
            if not width and len(cols) > 3:
                message = f"expected 2 or 3 tab-separated columns (id, text, title): {len(cols)}"
                raise Bad("bad_columns", message)
            title = cols[title_col] if title_col < len(cols) else ""
            metadata = {name: cols[c] for c, name in extra.items()}
            doc = Document(as_id(cols[0], "doc_id"), cols[text_col], title, metadata)
        except Bad as err:
            policy.bad(err, lineno)
            continue
        yield lineno, doc


def _tsv_header(cols: list[str]) -> tuple[int, int, dict[int, str]]:
    """(text column, title column, {column: metadata field}) from a TSV header: `text`
    and `title` by name (else text second, title third), every other column after the id
    a metadata field of that name."""
    names = [name.strip() for name in cols]
    lowered = [name.lower() for name in names]
    text_col = lowered.index("text") if "text" in lowered[1:] else 1
    if "title" in lowered[1:]:
        title_col = lowered.index("title")
    else:
        title_col = 2 if len(cols) == 3 and text_col == 1 else len(cols)
    if len(cols) <= 3 and "text" not in lowered[1:] and "title" not in lowered[1:]:
        return text_col, title_col, {}
    extra = {c: names[c] for c in range(1, len(cols)) if c not in (text_col, title_col)}
    for c, name in extra.items():
        if not name:
            raise Bad("bad_columns", f"header column {c + 1} has no name")
    return text_col, title_col, extra


def _from_dict(obj: Mapping[str, Any]) -> Document:
    id_key, text_key = pick(obj, ID_KEYS), pick(obj, TEXT_KEYS)
    if id_key is None:
        raise Bad("missing_field", f"no document id (one of {', '.join(ID_KEYS)})", "_id")
    if text_key is None:
        raise Bad("missing_field", "no text", "text")
    title = obj.get("title")
    return Document(
        as_id(obj[id_key], id_key),
        as_text(obj[text_key], text_key),
        "" if title is None else as_text(title, "title"),
        _metadata(obj, id_key, text_key),
    )


def _metadata(obj: Mapping[str, Any], id_key: str, text_key: str) -> dict[str, Any]:
    """A record's metadata: its `metadata` object (BEIR) and every key besides the id,
    text and title."""
    nested = obj.get("metadata")
    if nested is None:
        nested = {}
    if not isinstance(nested, Mapping):
        raise Bad("bad_field", f"metadata must be an object, got {type(nested).__name__}",
                  "metadata")  # fmt: skip
    out = {str(k): v for k, v in nested.items()}
    for key, value in obj.items():
        if key in (id_key, text_key, "title", "metadata"):
            continue
        if key in out:
            raise Bad("bad_field", f"{key!r} is both a top-level key and in 'metadata'", key)
        out[key] = value
    return out


def _read_jsonl(path: Path, policy: Policy, title_join: str) -> Iterator[tuple[int, Document]]:
    for lineno, line in read_lines(path):
        try:
            obj = parse_json(check_line(line))
            if not isinstance(obj, dict):
                raise Bad("bad_json", f"expected a JSON object, got {type(obj).__name__}")
            doc = _from_dict(obj)
        except Bad as err:
            policy.bad(err, lineno)
            continue
        yield lineno, doc


def _read_trec(path: Path, policy: Policy, title_join: str) -> Iterator[tuple[int, Document]]:
    for start, body in iter_records(read_lines(path), "DOC", policy):
        try:
            ids = _DOCNO.findall(body)
            if len(ids) != 1:
                problem = "no <DOCNO>...</DOCNO>" if not ids else f"{len(ids)} <DOCNO> elements"
                raise Bad("missing_field" if not ids else "bad_field", f"record has {problem}",
                          "DOCNO")
            rest = _DOCNO.sub(" ", body)
            titles = [title for title in map(clean, _TITLE.findall(rest)) if title]
            doc = Document(as_id(clean(ids[0]), "DOCNO"), clean(_TITLE.sub(" ", rest)),
                           title_join.join(titles))
        except Bad as err:
            policy.bad(err, start)
            continue
        yield start, doc


def _read_items(items: Iterable[Any], policy: Policy) -> Iterator[tuple[int, Document]]:
    for index, item in enumerate(items):
        try:
            if isinstance(item, Document):
                if not isinstance(item.metadata, Mapping):
                    raise Bad("bad_field", "metadata must be a dict", "metadata")
                doc = Document(as_id(item.doc_id, "doc_id"), as_text(item.text, "text"),
                               as_text(item.title, "title"), dict(item.metadata))
            elif isinstance(item, Mapping):
                doc = _from_dict(item)
            elif isinstance(item, tuple | list) and len(item) in (2, 3):
                title = as_text(item[2], "title") if len(item) == 3 else ""
                doc = Document(as_id(item[0], "doc_id"), as_text(item[1], "text"), title)
            else:
                kind = type(item).__name__
                if isinstance(item, tuple | list):
                    kind = f"{kind} of {len(item)}"
                message = f"expected (doc_id, text[, title]), a dict or a Document, got {kind}"
                raise Bad("bad_field", message)
        except Bad as err:
            policy.bad(err, index)
            continue
        yield index, doc
