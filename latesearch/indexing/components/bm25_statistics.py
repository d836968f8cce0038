"""BM25 scores computed with another collection's statistics: how the shards of a sharded
index score BM25 as one index of all their documents would.

A BM25 score depends on the collection through the number of documents N, each term's
document frequency df and the average document length. A shard reports its own
(`BM25Index.statistics`); the sum over shards (`BM25Statistics.combine`) is the whole
collection's; each shard then rescores its postings with it (`rescored`). bm25s stores only
the score of each (term, document) posting, so the term frequency is recovered from it
(the Lucene formula inverted with the shard's own statistics and the stored document
length; a term frequency is an integer, so the inversion is rounded and exact) and scored
again with the collection's statistics. Lucene's idf is positive for every df, which makes
the inversion possible; the "robertson" and "atire" variants (whose idf can be 0) keep
each shard's own statistics.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

RESCORABLE = ("lucene",)


@dataclass
class BM25Statistics:
    """Collection statistics of some query terms: documents, total length (tokens after
    stopwords), document frequency of each term."""

    n_docs: int
    total_length: int
    df: dict[str, int] = field(default_factory=dict)

    @property
    def average_length(self) -> float:
        return self.total_length / self.n_docs if self.n_docs else 0.0

    @staticmethod
    def combine(parts: list[BM25Statistics]) -> BM25Statistics:
        """The statistics of the union of disjoint collections."""
        df: Counter[str] = Counter()
        for part in parts:
            df.update(part.df)
        return BM25Statistics(sum(p.n_docs for p in parts), sum(p.total_length for p in parts),
                              dict(df))  # fmt: skip


def lucene_idf(df: np.ndarray | float, n_docs: int) -> np.ndarray:
    return np.log(1.0 + (n_docs - np.asarray(df, dtype=np.float64) + 0.5) / (df + 0.5))


def rescored(
    postings: list[tuple[str, np.ndarray, np.ndarray]],
    lengths: np.ndarray,
    own: BM25Statistics,
    whole: BM25Statistics,
    k1: float,
    b: float,
) -> np.ndarray:
    """(len(lengths),) Lucene BM25 scores of one query with `whole`'s statistics, from the
    postings of its terms in this collection: (term, doc positions, stored scores) each,
    stored with `own`'s statistics (term repeated in the query: counted each time)."""
    out = np.zeros(len(lengths), dtype=np.float64)
    for term, docs, stored in postings:
        if docs.size == 0:
            continue
        dl = lengths[docs].astype(np.float64)
        idf = lucene_idf(docs.size, own.n_docs)
        tfc = np.asarray(stored, dtype=np.float64) / idf
        norm = k1 * (1.0 - b + b * dl / own.average_length)
        with np.errstate(divide="ignore", invalid="ignore"):
            tf = np.where(norm > 0, np.rint(tfc * norm / (1.0 - tfc)), 1.0)
        tf = np.maximum(tf, 1.0)  # a posting holds the term at least once
        norm = k1 * (1.0 - b + b * dl / whole.average_length)
        new_tfc = np.where(norm > 0, tf / (norm + tf), 1.0)
        out[docs] += lucene_idf(whole.df.get(term, docs.size), whole.n_docs) * new_tfc
    return out
