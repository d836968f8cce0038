"""Negative mining for qrels-only training data: each training query's top-k from BM25 (or
from an existing index), minus its judged-relevant documents, best first.

The mined lists are deterministic for a given collection and saved beside the run
(`mined_negatives.jsonl`), so a resumed run samples from exactly the same lists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from latesearch.errors import InputError

MINED_FILE = "mined_negatives.jsonl"


def mine_bm25(
    queries: Mapping[str, str],
    positives: Mapping[str, set[str]],
    collection: Iterable[tuple[str, str]],
    depth: int,
) -> dict[str, list[str]]:
    """BM25 top-`depth` (plus room for the positives) per query, positives removed."""
    from latesearch.indexing.components.bm25 import BM25Config, BM25Index

    index = BM25Index.build(collection, BM25Config())
    return _exclude(queries, positives, index.search, depth)


def mine_index(
    path: str,
    queries: Mapping[str, str],
    positives: Mapping[str, set[str]],
    depth: int,
) -> dict[str, list[str]]:
    """The top-`depth` of an existing latesearch index (a model's own hard negatives):
    end-to-end search when the index has an `ann/` component, else exact MaxSim."""
    from latesearch.indexing import IndexStore
    from latesearch.search.models import load_index_model
    from latesearch.search.modes import servable_modes
    from latesearch.search.request import SearchRequest
    from latesearch.search.searcher import Searcher

    store = IndexStore.open(path)
    searcher = Searcher(store, lambda: load_index_model(store))
    mode = "e2e" if "e2e" in servable_modes(store) else "exact"

    def search(texts: list[str], k: int) -> list[list[tuple[str, float]]]:
        found = searcher.search(texts, SearchRequest(k=k, mode=mode))
        return [list(zip(store.doc_ids[i], s.tolist(), strict=True)) for s, i in found]

    return _exclude(queries, positives, search, depth)


def _exclude(queries, positives, search, depth: int) -> dict[str, list[str]]:
    qids = sorted(positives)
    missing = [q for q in qids if q not in queries]
    if missing:
        raise InputError(f"{len(missing)} judged queries have no text (first: {missing[0]!r})")
    extra = max(len(p) for p in positives.values()) if positives else 0
    hits = search([queries[q] for q in qids], depth + extra)
    mined = {}
    for qid, ranked in zip(qids, hits, strict=True):
        mined[qid] = [pid for pid, _ in ranked if pid not in positives[qid]][:depth]
    return mined


def save_mined(path: str | os.PathLike, mined: Mapping[str, list[str]]) -> Path:
    """Write `{qid, negatives}` lines atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        for qid in sorted(mined):
            handle.write(json.dumps({"qid": qid, "negatives": mined[qid]}) + "\n")
    os.replace(tmp, path)
    return path


def load_mined(path: str | os.PathLike) -> dict[str, list[str]]:
    mined = {}
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
                mined[str(record["qid"])] = [str(p) for p in record["negatives"]]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise InputError(
                    f"bad mined-negatives record ({err})", path=str(path), line=line_no
                ) from None
    return mined
