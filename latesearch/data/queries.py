"""Queries: MS MARCO TSV, BEIR queries.jsonl, TREC topics, or Python iterables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

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
    parse_json,
    pick,
    read_lines,
    resolve,
    sniff_common,
)
from latesearch.data._trec import clean, iter_records
from latesearch.errors import ConfigError

ID_KEYS = ("_id", "id", "qid", "query_id")
TEXT_KEYS = ("text", "query")
HEADER_IDS = ("id", "qid", "query_id", "query-id", "_id")
TOPIC_FIELDS = ("title", "desc", "narr")
EXTENSIONS = {".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".trec": "trec", ".sgml": "trec"}
_FIELD_TAG = re.compile(r"<(/?)([A-Za-z]+)[^<>]*>")
_PREFIXES = {"num": "number:", "title": "topic:", "desc": "description:", "narr": "narrative:"}

Row = tuple[int, str, str]


def read_queries(
    source: PathLike | Iterable[Any],
    *,
    on_error: str = "raise",
    stats: ReadStats | None = None,
    format: str | None = None,
    topic_field: str = "title",
) -> dict[str, str]:
    """Queries of `source` as {qid: text}, in file order.

    `source` is a file: `qid<TAB>text` TSV (a header row tolerated), BEIR JSONL (`_id`,
    `text`; also `id`/`qid`, `query`), or TREC topics (`<top><num>..<title>..</top>`, closing
    tags optional, "Number:"/"Topic:" prefixes dropped; `topic_field` picks title, desc or
    narr); maybe .gz; detected by extension or sniffed (`format` forces one). Or a mapping
    qid -> text, or an iterable of `(qid, text)` pairs or dicts. Query text is stripped.
    Duplicate qids, blank text and malformed records raise `InputError` (file, line, field),
    or with `on_error="skip"` are counted into `stats`.
    """
    if topic_field not in TOPIC_FIELDS:
        raise ConfigError(f"topic_field must be one of {TOPIC_FIELDS}, got {topic_field!r}")
    if isinstance(source, str | Path) or hasattr(source, "__fspath__"):
        path = resolve(source)  # type: ignore[arg-type]
        fmt = detect_format(path, EXTENSIONS, _sniff, "queries", format)
        policy = Policy(path, on_error, stats)
        if fmt == "trec":
            rows = _read_topics(path, policy, topic_field)
        else:
            rows = (_read_tsv if fmt == "tsv" else _read_jsonl)(path, policy)
    else:
        policy = Policy(ITERABLE, on_error, stats)
        rows = _read_items(source.items() if isinstance(source, Mapping) else source, policy)
    queries: dict[str, str] = {}
    for line, qid, text in rows:
        if qid in queries:
            policy.bad(Bad("duplicate_id", f"duplicate query id {qid!r}", "qid"), line)
        elif not text.strip():
            policy.bad(Bad("empty_text", f"query {qid!r} has no text", "text"), line)
        else:
            queries[qid] = text.strip()
            policy.stats.read += 1
    return queries


def _sniff(line: str) -> str | None:
    return "trec" if line.lower().startswith("<top") else sniff_common(line)


def _read_tsv(path: Path, policy: Policy) -> Iterator[Row]:
    for lineno, line in read_lines(path):
        try:
            cols = check_line(line).split("\t")
            if lineno == 1 and cols[0].strip().lower() in HEADER_IDS:
                continue
            if len(cols) != 2:
                field = "text" if len(cols) < 2 else None
                raise Bad("bad_columns", f"expected qid<TAB>text, got {len(cols)} columns", field)
            yield lineno, as_id(cols[0], "qid"), cols[1]
        except Bad as err:
            policy.bad(err, lineno)


def _from_dict(obj: Mapping[str, Any]) -> tuple[str, str]:
    id_key, text_key = pick(obj, ID_KEYS), pick(obj, TEXT_KEYS)
    if id_key is None:
        raise Bad("missing_field", f"no query id (one of {', '.join(ID_KEYS)})", "_id")
    if text_key is None:
        raise Bad("missing_field", "no text", "text")
    return as_id(obj[id_key], id_key), as_text(obj[text_key], text_key)


def _read_jsonl(path: Path, policy: Policy) -> Iterator[Row]:
    for lineno, line in read_lines(path):
        try:
            obj = parse_json(check_line(line))
            if not isinstance(obj, dict):
                raise Bad("bad_json", f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, *_from_dict(obj)
        except Bad as err:
            policy.bad(err, lineno)


def _topic_fields(body: str) -> dict[str, str]:
    """Field name -> text; a field runs to its closing tag or to the next tag."""
    parts: dict[str, list[str]] = {}
    current, pos = None, 0
    for tag in _FIELD_TAG.finditer(body):
        if current is not None:
            parts[current].append(body[pos : tag.start()])
        current = None if tag.group(1) else tag.group(2).lower()
        if current is not None:
            parts.setdefault(current, [])
        pos = tag.end()
    if current is not None:
        parts[current].append(body[pos:])
    fields = {}
    for name, chunks in parts.items():
        text = clean(" ".join(chunks))
        prefix = _PREFIXES.get(name)
        if prefix and text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
        fields[name] = text
    return fields


def _read_topics(path: Path, policy: Policy, topic_field: str) -> Iterator[Row]:
    for start, body in iter_records(read_lines(path), "top", policy):
        try:
            fields = _topic_fields(body)
            if "num" not in fields:
                raise Bad("missing_field", "topic has no <num>", "num")
            if topic_field not in fields:
                raise Bad("missing_field", f"topic has no <{topic_field}>", topic_field)
            yield start, as_id(fields["num"], "num"), fields[topic_field]
        except Bad as err:
            policy.bad(err, start)


def _read_items(items: Iterable[Any], policy: Policy) -> Iterator[Row]:
    for index, item in enumerate(items, 1):
        try:
            if isinstance(item, Mapping):
                yield index, *_from_dict(item)
            elif isinstance(item, tuple | list) and len(item) == 2:
                yield index, as_id(item[0], "qid"), as_text(item[1], "text")
            else:
                raise Bad("bad_field", f"expected (qid, text) or a dict, got {type(item).__name__}")
        except Bad as err:
            policy.bad(err, index)
