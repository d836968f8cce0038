"""Streamed readers of retrieval data: collections, queries, qrels, training triples, runs.

Bad input raises `latesearch.errors.InputError` naming file, line and field, or, with
`on_error="skip"`, is skipped and counted into a `ReadStats` the caller passes as `stats=`.
"""

from __future__ import annotations

from latesearch.data._io import ReadStats
from latesearch.data.collections import (
    Document,
    check_collection,
    count_documents,
    read_collection,
)
from latesearch.data.qrels import load_beir, read_qrels
from latesearch.data.queries import read_queries
from latesearch.data.runs import read_trec_run, write_trec_run
from latesearch.data.triples import Triple, read_id_triples, read_text_triples

__all__ = [
    "Document",
    "ReadStats",
    "Triple",
    "check_collection",
    "count_documents",
    "load_beir",
    "read_collection",
    "read_id_triples",
    "read_qrels",
    "read_queries",
    "read_text_triples",
    "read_trec_run",
    "write_trec_run",
]
