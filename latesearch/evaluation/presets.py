"""Benchmark presets of `latesearch evaluate --preset`: a collection of small BEIR-layout
sets, each indexed and searched alone, reported per set and as the mean over sets.

"nanobeir": NanoBEIR-style (the quick yardstick of Sentence Transformers and PyLate): each
set's test split, nDCG@10 per set and its unweighted mean over the sets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latesearch.errors import InputError
from latesearch.evaluation.metrics import EvalResult

CORPUS = ("corpus.jsonl", "corpus.jsonl.gz")
QUERIES = ("queries.jsonl", "queries.jsonl.gz")


@dataclass(frozen=True)
class Preset:
    name: str
    metrics: str  # ir-measures names; the first is the headline
    split: str
    k: int  # results per query


PRESETS = {"nanobeir": Preset("nanobeir", "nDCG@10", "test", 10)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r} (known: {sorted(PRESETS)})", field="preset")
    return PRESETS[name]


def is_beir_folder(path: Path) -> bool:
    """A folder holding a corpus and queries (qrels/ checked when the split is read)."""
    return any((path / n).is_file() for n in CORPUS) and any((path / n).is_file() for n in QUERIES)


def benchmark_sets(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The BEIR folders `paths` name: each a BEIR folder, or a folder whose sub-folders
    are (taken in name order). InputError for a path that is neither, or two sets of one
    name (their indexes and rows would collide)."""
    sets: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if is_beir_folder(path):
            sets.append(path)
            continue
        found = sorted(p for p in path.iterdir() if is_beir_folder(p)) if path.is_dir() else []
        if not found:
            raise InputError("not a BEIR folder (corpus.jsonl, queries.jsonl, qrels/) nor a "
                             "folder of them", path=str(path), field="sets")  # fmt: skip
        sets += found
    names = [p.name for p in sets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"sets named alike: {twice}", field="sets")
    return sets


@dataclass
class SetScore:
    """One set's evaluation: its name, documents and the result of its run."""

    name: str
    n_docs: int
    result: EvalResult


def preset_rows(scores: Sequence[SetScore], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of the preset's table: one per set, then "mean" (each metric's unweighted mean
    over the sets, as NanoBEIR reports; queries and documents summed)."""
    rows = [{"set": s.name, **{m: s.result.aggregate[m] for m in metrics},
             "queries": s.result.n_queries, "documents": s.n_docs} for s in scores]  # fmt: skip
    mean = {m: sum(s.result.aggregate[m] for s in scores) / len(scores) for m in metrics}
    rows.append({"set": "mean", **mean, "queries": sum(s.result.n_queries for s in scores),
                 "documents": sum(s.n_docs for s in scores)})  # fmt: skip
    return rows
