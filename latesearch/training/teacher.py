"""Distillation data: a teacher's scores of each training query's positive and mined
negatives, written as colbert-ai's n-way examples ``[qid, [pid, score], ...]`` (positive
first), which `TrainConfig(distill_from="triples")` reads with the queries and collection.

The teacher is any `score(query, texts) -> scores` callable: a ColBERT model
(`maxsim_teacher`), or a cross-encoder, e.g. sentence-transformers'
``lambda q, texts: CrossEncoder(...).predict([(q, t) for t in texts])``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from latesearch._atomic import write_text
from latesearch.errors import InputError
from latesearch.scoring import maxsim, pad_documents

Score = Callable[[str, list[str]], Sequence[float]]


def maxsim_teacher(model) -> Score:
    """A ColBERT model as a teacher: exact MaxSim of the query against each text."""

    @torch.inference_mode()
    def score(query: str, texts: list[str]) -> list[float]:
        Q = model.encode_queries([query])
        D, mask = pad_documents(model.encode_documents(texts))
        return [float(s) for s in maxsim(Q, D, mask, similarity=model.config.similarity)[0]]

    return score


def write_examples(
    path: str | os.PathLike,
    queries: Mapping[str, str],
    collection: Mapping[str, str],
    positives: Mapping[str, set[str]],
    negatives: Mapping[str, list[str]],
    score: Score,
    nway: int,
) -> int:
    """One line per (query, positive): the positive, then the query's first `nway - 1`
    negatives (mined order), each with `score`'s score; written whole. Queries with fewer
    negatives are left out. Returns the number of lines."""
    if nway < 2:
        raise ValueError(f"nway must be >= 2, got {nway}")
    lines = []
    for qid in sorted(positives):
        negs = negatives.get(qid, [])[: nway - 1]
        if len(negs) < nway - 1:
            continue
        for pid in sorted(positives[qid]):
            ids = [pid, *negs]
            missing = [i for i in [qid, *ids] if i not in (queries if i == qid else collection)]
            if missing:
                raise InputError(f"id {missing[0]!r} of query {qid!r} has no text")
            scores = score(queries[qid], [collection[i] for i in ids])
            pairs = [[i, round(float(s), 6)] for i, s in zip(ids, scores, strict=True)]
            lines.append(json.dumps([qid, *pairs]) + "\n")
    write_text(Path(path), "".join(lines))
    return len(lines)
