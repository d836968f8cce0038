"""Streamed training triples: text TSV, or ids (JSONL lists / TSV) resolved against mappings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from latesearch.data._io import (
    Bad,
    PathLike,
    Policy,
    ReadStats,
    as_id,
    check_line,
    check_on_error,
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
    """Stream `query<TAB>positive<TAB>negative[<TAB>negative...]` rows (MS MARCO; maybe .gz).

    Fewer than 3 columns or a blank field raise `InputError` (file, line, field), or with
    `on_error="skip"` are counted into `stats`.
    """
    file = _file(path, on_error)
    return _text_triples(file, Policy(file, on_error, stats))


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
    or a TSV row `qid<TAB>pos_pid<TAB>neg_pid...` (MS MARCO qidpidtriples). Integer ids are
    converted to str; `Document` values give `full_text()`. Unknown ids and malformed lines
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
                raise Bad("bad_columns", f"expected query<TAB>positive<TAB>negative..., "
                          f"got {len(cols)} columns", field)
            for i, col in enumerate(cols):
                if not col.strip():
                    raise Bad("bad_field", "blank text", _field_name(i))
        except Bad as err:
            policy.bad(err, lineno)
            continue
        policy.stats.read += 1
        yield Triple(cols[0], cols[1], cols[2:])


def _field_name(i: int) -> str:
    return ("query", "positive")[i] if i < 2 else f"negatives[{i - 2}]"


def _parse_ids(line: str) -> tuple[list[object], list[float] | None]:
    """Ids (query first) and the scores of the passages, if any."""
    if not line.lstrip().startswith(("[", "{")):
        return list(line.split("\t")), None
    obj = parse_json(line)
    if not isinstance(obj, list):
        raise Bad("bad_json", f"expected a JSON list, got {type(obj).__name__}")
    pairs = [isinstance(entry, list) for entry in obj[1:]]
    if not any(pairs):
        return obj, None
    if not all(pairs) or any(len(entry) != 2 for entry in obj[1:]):
        raise Bad("bad_json", "expected [qid, [pid, score], ...] with every passage a pair")
    scores = [entry[1] for entry in obj[1:]]
    for i, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise Bad("bad_field", f"score must be a number, got {score!r}", f"scores[{i}]")
    return [obj[0], *(entry[0] for entry in obj[1:])], [float(s) for s in scores]


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
                raise Bad("bad_columns", f"expected a query id, a positive and at least one "
                          f"negative, got {len(ids)} ids")
            qid = as_id(ids[0], "qid")
            pids = [as_id(pid, _field_name(i + 1)) for i, pid in enumerate(ids[1:])]
            query = queries.get(qid)
            if query is None:
                raise Bad("unknown_id", f"query id {qid!r} is not in the queries", "qid")
            texts = []
            for i, pid in enumerate(pids):
                doc = collection.get(pid)
                if doc is None:
                    raise Bad("unknown_id", f"document id {pid!r} is not in the collection",
                              _field_name(i + 1))
                texts.append(doc.full_text() if isinstance(doc, Document) else doc)
        except Bad as err:
            policy.bad(err, lineno)
            continue
        policy.stats.read += 1
        yield Triple(query, texts[0], texts[1:], scores, qid, pids)
