"""Streamed training triples: text (TSV rows or JSONL records), or ids (JSONL lists or
records, TSV rows) resolved against mappings."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latesearch.data._io import (
    Bad,
    PathLike,
    Policy,
    ReadStats,
    as_id,
    check_line,
    check_on_error,
    first_line,
    parse_json,
    read_lines,
    resolve,
)
from latesearch.data.collections import Document


@dataclass(slots=True)
class Triple:
    """A query, its positive passage and one or more negatives (texts).

    `scores` are teacher scores of `[positive, *negatives]` when the source had them
    (ColBERTv2 distillation); `query_id` and `doc_ids` (`[positive, *negatives]`) are set
    by `read_id_triples`.
    """

    query: str
    positive: str
    negatives: list[str]
    scores: list[float] | None = None
    query_id: str | None = None
    doc_ids: list[str] | None = None


def read_text_triples(
    path: PathLike, *, on_error: str = "raise", stats: ReadStats | None = None
) -> Iterator[Triple]:
    """Stream `query<TAB>positive<TAB>negative[<TAB>negative...]` rows (MS MARCO; maybe .gz),
    or, from a `.jsonl`/`.json` file, records ``{"query": ..., "positive": ...,
    "negatives": [...], "scores": [...]}`` (`scores`, optional: teacher scores of
    `[positive, *negatives]`).

    Fewer than 3 columns, a blank field or a malformed record raise `InputError` (file,
    line, field), or with `on_error="skip"` are counted into `stats`.
    """
    file = _file(path, on_error)
    if is_json_file(file):
        return _json_text_triples(file, Policy(file, on_error, stats))
    return _text_triples(file, Policy(file, on_error, stats))


def is_json_file(path: PathLike) -> bool:
    """Whether a triples file is JSON lines by its name (`.jsonl`, `.json`, under any .gz)."""
    name = str(path).lower().removesuffix(".gz")
    return name.endswith((".jsonl", ".json"))


def json_triples_kind(path: PathLike) -> str | None:
    """'text' when a JSON-lines triples file's first line is a text record (it has a
    "query" key), 'ids' when it is anything else, None for a file that is missing or empty."""
    file = Path(path)
    if not file.is_file():
        return None
    line = first_line(file)
    if line is None:
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return "ids"
    return "text" if isinstance(obj, dict) and "query" in obj else "ids"


def read_id_triples(
    path: PathLike,
    queries: Mapping[str, str],
    collection: Mapping[str, str | Document],
    *,
    on_error: str = "raise",
    stats: ReadStats | None = None,
) -> Iterator[Triple]:
    """Stream triples given by ids, with texts looked up in `queries` and `collection`.

    Each line is a JSON list `[qid, pos_pid, neg_pid, ...]`, or the ColBERTv2 distillation
    form `[qid, [pos_pid, score], [neg_pid, score], ...]` (scores kept in `Triple.scores`),
    or PyLate's distillation record ``{"query_id": ..., "document_ids": [...], "scores":
    [...]}`` (the first document is the positive), or a TSV row
    `qid<TAB>pos_pid<TAB>neg_pid...` (MS MARCO qidpidtriples). Integer ids are converted
    to str; `Document` values give `full_text()`. Unknown ids and malformed lines
    raise `InputError` (file, line, field), or with `on_error="skip"` are counted.
    """
    file = _file(path, on_error)
    return _id_triples(file, queries, collection, Policy(file, on_error, stats))


def _file(path: PathLike, on_error: str) -> Path:
    check_on_error(on_error)
    return resolve(path)


def _text_triples(file: Path, policy: Policy) -> Iterator[Triple]:
    for lineno, line in read_lines(file):
        try:
            cols = check_line(line).split("\t")
            if len(cols) < 3:
                field = ("positive", "negative")[len(cols) - 1]
                raise Bad(
                    "bad_columns",
                    f"expected query<TAB>positive<TAB>negative..., got {len(cols)} columns",
                    field,
                )
            for i, col in enumerate(cols):
                if not col.strip():
                    raise Bad("bad_field", "blank text", _field_name(i))
        except Bad as err:
            policy.bad(err, lineno)
            continue
        policy.stats.read += 1
        yield Triple(cols[0], cols[1], cols[2:])


def _json_text_triples(file: Path, policy: Policy) -> Iterator[Triple]:
    for lineno, line in read_lines(file):
        try:
            obj = parse_json(check_line(line))
            if not isinstance(obj, dict):
                raise Bad("bad_json", f"expected a JSON object, got {type(obj).__name__}")
            query, positive = _text(obj, "query"), _text(obj, "positive")
            negatives = obj.get("negatives")
            if isinstance(negatives, str):
                negatives = [negatives]
            if not isinstance(negatives, list) or not negatives:
                raise Bad("bad_field", "expected a non-empty list of texts", "negatives")
            negatives = [_text(negatives, i, f"negatives[{i}]") for i in range(len(negatives))]
            scores = _scores(obj["scores"], 1 + len(negatives)) if "scores" in obj else None
        except Bad as err:
            policy.bad(err, lineno)
            continue
        policy.stats.read += 1
        yield Triple(query, positive, negatives, scores)


def _text(obj: Any, key: Any, field: str | None = None) -> str:
    value = obj.get(key) if isinstance(obj, dict) else obj[key]
    if not isinstance(value, str) or not value.strip():
        raise Bad("bad_field", f"expected a non-blank text, got {value!r}", field or str(key))
    return value


def _scores(values: Any, count: int) -> list[float]:
    if not isinstance(values, list) or len(values) != count:
        raise Bad("bad_field", f"expected a list of {count} scores, got {values!r}", "scores")
    for i, score in enumerate(values):
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise Bad("bad_field", f"score must be a number, got {score!r}", f"scores[{i}]")
    return [float(s) for s in values]


def _field_name(i: int) -> str:
    return ("query", "positive")[i] if i < 2 else f"negatives[{i - 2}]"


def _parse_ids(line: str) -> tuple[list[object], list[float] | None]:
    """Ids (query first) and the scores of the passages, if any."""
    if not line.lstrip().startswith(("[", "{")):
        return list(line.split("\t")), None
    obj = parse_json(line)
    if isinstance(obj, dict) and "document_ids" in obj:  # PyLate's distillation record
        ids = obj["document_ids"]
        if not isinstance(ids, list):
            raise Bad("bad_field", f"expected a list of document ids, got {ids!r}",
                      "document_ids")  # fmt: skip
        scores = _scores(obj["scores"], len(ids)) if "scores" in obj else None
        return [obj.get("query_id"), *ids], scores
    if not isinstance(obj, list):
        raise Bad("bad_json", f"expected a JSON list, got {type(obj).__name__}")
    pairs = [isinstance(entry, list) for entry in obj[1:]]
    if not any(pairs):
        return obj, None
    if not all(pairs) or any(len(entry) != 2 for entry in obj[1:]):
        raise Bad("bad_json", "expected [qid, [pid, score], ...] with every passage a pair")
    scores = _scores([entry[1] for entry in obj[1:]], len(obj) - 1)
    return [obj[0], *(entry[0] for entry in obj[1:])], scores


def _id_triples(
    file: Path,
    queries: Mapping[str, str],
    collection: Mapping[str, str | Document],
    policy: Policy,
) -> Iterator[Triple]:
    for lineno, line in read_lines(file):
        try:
            ids, scores = _parse_ids(check_line(line))
            if len(ids) < 3:
                raise Bad(
                    "bad_columns",
                    f"expected a query id, a positive and at least one "
                    f"negative, got {len(ids)} ids",
                )
            qid = as_id(ids[0], "qid")
            pids = [as_id(pid, _field_name(i + 1)) for i, pid in enumerate(ids[1:])]
            query = queries.get(qid)
            if query is None:
                raise Bad("unknown_id", f"query id {qid!r} is not in the queries", "qid")
            texts = []
            for i, pid in enumerate(pids):
                doc = collection.get(pid)
                if doc is None:
                    raise Bad(
                        "unknown_id",
                        f"document id {pid!r} is not in the collection",
                        _field_name(i + 1),
                    )
                texts.append(doc.full_text() if isinstance(doc, Document) else doc)
        except Bad as err:
            policy.bad(err, lineno)
            continue
        policy.stats.read += 1
        yield Triple(query, texts[0], texts[1:], scores, qid, pids)
