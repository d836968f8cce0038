"""Relevance judgements (TREC qrels, BEIR qrels TSV, MS MARCO lists) and BEIR folders."""

from __future__ import annotations

from pathlib import Path

from latesearch.data._io import (
    Bad,
    PathLike,
    Policy,
    ReadStats,
    as_id,
    check_line,
    find_file,
    read_lines,
    resolve,
)
from latesearch.data.queries import read_queries
from latesearch.errors import InputError

Qrels = dict[str, dict[str, int]]
HEADER_IDS = ("query-id", "query_id", "qid", "queryid")
# columns per layout -> (qid, doc id, relevance) positions; relevance None means 1
_LAYOUTS = {2: (0, 1, None), 3: (0, 1, 2), 4: (0, 2, 3)}


def read_qrels(
    path: PathLike, *, on_error: str = "raise", stats: ReadStats | None = None
) -> Qrels:
    """{qid: {doc_id: relevance}} from a whitespace-separated judgements file (maybe .gz).

    Rows are `qid iter docid rel` (TREC), `qid docid score` (BEIR, with or without its
    `query-id corpus-id score` header) or `qid docid` (relevance 1); the first row fixes the
    layout. Relevance is an int (graded and negative kept). Bad rows, duplicate
    (qid, docid) pairs and layout changes raise `InputError` (file, line, field), or with
    `on_error="skip"` are counted into `stats`.
    """
    file = resolve(path)
    if file.is_dir():
        raise InputError("is a folder; use load_beir(folder, split)", path=str(file))
    policy = Policy(file, on_error, stats)
    qrels: Qrels = {}
    layout: tuple[int, int, int | None] | None = None
    width = 0
    for lineno, line in read_lines(file):
        try:
            cols = check_line(line).split()
            if lineno == 1 and cols[0].lower() in HEADER_IDS and not _is_number(cols[-1]):
                width, layout = len(cols), _LAYOUTS.get(len(cols))
                if layout is None:
                    raise Bad("bad_columns", f"header has {len(cols)} columns, expected 2 to 4")
                continue
            if layout is None:
                if len(cols) not in _LAYOUTS:
                    raise Bad("bad_columns", f"expected 2 to 4 columns, got {len(cols)}")
                width, layout = len(cols), _LAYOUTS[len(cols)]
            elif len(cols) != width:
                raise Bad("bad_columns", f"expected {width} columns like the rows before, "
                          f"got {len(cols)}")
            qid, doc_id = as_id(cols[layout[0]], "query_id"), as_id(cols[layout[1]], "doc_id")
            rel = 1 if layout[2] is None else _relevance(cols[layout[2]])
            judged = qrels.setdefault(qid, {})
            if doc_id in judged:
                raise Bad("duplicate_id", f"({qid!r}, {doc_id!r}) judged twice", "doc_id")
        except Bad as err:
            policy.bad(err, lineno)
            continue
        judged[doc_id] = rel
        policy.stats.read += 1
    return {qid: judged for qid, judged in qrels.items() if judged}


def load_beir(
    folder: PathLike,
    split: str = "test",
    *,
    on_error: str = "raise",
    stats: ReadStats | None = None,
) -> tuple[Path, dict[str, str], Qrels]:
    """(corpus path, queries, qrels) of a BEIR folder's `split`.

    The folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv (each maybe .gz).
    Queries are restricted to those judged in `split`, in queries.jsonl order; a judged
    query missing from queries.jsonl is an `InputError` (or skipped and counted).
    Read the corpus with `read_collection(corpus_path)`.
    """
    root = resolve(folder)
    if not root.is_dir():
        raise InputError("expected a BEIR folder", path=str(root))
    corpus = find_file(root, "corpus.jsonl")
    queries = read_queries(find_file(root, "queries.jsonl"), on_error=on_error, stats=stats)
    qrels_dir = root / "qrels"
    try:
        qrels_file = find_file(qrels_dir, f"{split}.tsv")
    except InputError:
        splits = sorted(p.name.split(".")[0] for p in qrels_dir.glob("*.tsv*"))
        raise InputError(f"no qrels for split {split!r} (found: {splits or 'none'})",
                         path=str(qrels_dir)) from None
    qrels = read_qrels(qrels_file, on_error=on_error, stats=stats)
    policy = Policy(qrels_file, on_error, stats)
    for qid in [qid for qid in qrels if qid not in queries]:
        policy.bad(Bad("unknown_id", f"judged query {qid!r} is not in queries.jsonl", "query-id"),
                   None)
        del qrels[qid]
    kept = {qid: text for qid, text in queries.items() if qid in qrels}
    return corpus, kept, {qid: qrels[qid] for qid in kept}


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _relevance(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        raise Bad("bad_field", f"relevance must be an integer, got {value!r}", "relevance")
    return int(number)
