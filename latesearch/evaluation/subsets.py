"""Query subsets for evaluation: "novel" test queries (no relevant document shared with the
training judgements, e.g. SciFact-novel) and query-id lists read from files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from latesearch.errors import InputError

V = TypeVar("V")
QrelsMap = Mapping[str, Mapping[str, int]]


def relevant_docs(qrels: QrelsMap, *, min_rel: int = 1) -> set[str]:
    """Every document judged relevant (grade >= `min_rel`) to some query of `qrels`."""
    return {doc for docs in qrels.values() for doc, rel in docs.items() if rel >= min_rel}


def novel_queries(test_qrels: QrelsMap, train_qrels: QrelsMap, *, min_rel: int = 1) -> set[str]:
    """Test queries with at least one relevant document, none of which is relevant to any
    query of `train_qrels` (SciFact-novel: 104 of SciFact's 300 test queries)."""
    seen = relevant_docs(train_qrels, min_rel=min_rel)
    out = set()
    for qid, docs in test_qrels.items():
        relevant = {doc for doc, rel in docs.items() if rel >= min_rel}
        if relevant and not relevant & seen:
            out.add(qid)
    return out


def read_query_ids(path: str | Path) -> set[str]:
    """Query ids listed in a file: the first whitespace-separated column of each line;
    blank lines and lines starting with '#' are ignored. An empty list is an InputError."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        message = f"cannot read the query-id list ({err.strerror})"
        raise InputError(message, path=str(file)) from None
    ids = {line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")}
    if not ids:
        raise InputError("no query id in the file", path=str(file))
    return ids


def restrict(mapping: Mapping[str, V], qids: Iterable[str]) -> dict[str, V]:
    """The entries of `mapping` whose key is in `qids`, in `mapping`'s order."""
    keep = set(qids)
    return {qid: value for qid, value in mapping.items() if qid in keep}
