"""A 40-document corpus with metadata, as three shards and as one index (same settings)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

WORDS = ("late interaction query document passage search retrieval model bert colbert token "
         "vector index score rank cat dog house tree river city music science data protein "
         "cell gene drug study").split()  # fmt: skip
SETTINGS = {"keep_full": True, "n_centroids": 16, "chunk_size": 8, "group_size": 16}
EVERYTHING = {"ncells": 10**6, "centroid_score_threshold": -1e9, "ndocs": 10**6}


def write_corpus(path: Path, n: int = 40, start: int = 0, seed: int = 1) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(start, start + n):
            text = " ".join(rng.choices(WORDS, k=rng.randint(4, 14)))
            row = {"_id": f"d{i}", "title": "", "text": text,
                   "metadata": {"lang": ["en", "de"][i % 2], "year": 2000 + i % 7}}  # fmt: skip
            out.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="session")
def sharded_pair(tmp_path_factory, tiny_colbert):
    """(ShardedIndex of 3 shards, Index) of the same corpus, each with bm25/."""
    from latesearch import Index, ShardedIndex

    folder = tmp_path_factory.mktemp("sharded")
    corpus = write_corpus(folder / "corpus.jsonl")
    sharded = ShardedIndex.build(corpus, folder / "sharded", tiny_colbert, n_shards=3,
                                 bm25=True, progress=False, **SETTINGS)  # fmt: skip
    whole = Index.build(corpus, folder / "whole", tiny_colbert, bm25=True, progress=False,
                        **SETTINGS)  # fmt: skip
    return sharded, whole


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """write_corpus, SETTINGS (the index settings of every test here), EVERYTHING (engine
    parameters that keep every candidate)."""
    return SimpleNamespace(write_corpus=write_corpus, SETTINGS=SETTINGS, EVERYTHING=EVERYTHING)
