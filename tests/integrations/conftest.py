"""A small corpus with metadata, as an `Index` and as a 2-shard `ShardedIndex`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = (
    "late interaction query document passage search retrieval model bert colbert token "
    "vector index score rank cat dog house tree river city music science data"
).split()
SETTINGS = {"keep_full": True, "n_centroids": 8, "chunk_size": 8, "group_size": 16}
# engine settings that keep every candidate: the sharded and single answers agree exactly
EVERYTHING = {"ncells": 10**6, "centroid_score_threshold": -1e9, "ndocs": 10**6}


def write_corpus(path: Path, n: int = 24) -> Path:
    rng = random.Random(3)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            text = " ".join(rng.choices(WORDS, k=rng.randint(5, 12)))
            row = {"_id": f"d{i}", "title": f"title {i}", "text": text,
                   "metadata": {"lang": ["en", "de"][i % 2], "year": 2000 + i % 5,
                                "tags": ["a", "b"][: 1 + i % 2]}}  # fmt: skip
            out.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="session")
def indexes(tmp_path_factory, tiny_colbert):
    """{"index": Index, "sharded": ShardedIndex} of the same corpus."""
    from latesearch import Index, ShardedIndex

    folder = tmp_path_factory.mktemp("integrations")
    corpus = write_corpus(folder / "corpus.jsonl")
    index = Index.build(corpus, folder / "index", tiny_colbert, progress=False, **SETTINGS)
    sharded = ShardedIndex.build(corpus, folder / "sharded", tiny_colbert, n_shards=2,
                                 progress=False, **SETTINGS)  # fmt: skip
    yield {"index": index, "sharded": sharded}
    sharded.close()


@pytest.fixture(params=["index", "sharded"])
def searchable(request, indexes):
    return indexes[request.param]


@pytest.fixture(scope="session")
def server(indexes):
    """A live latesearch server over `indexes["index"]` (as tests/serving's `server`)."""
    pytest.importorskip("fastapi")  # the server extra; CI installs it
    pytest.importorskip("httpx")  # the client extra; CI installs it
    from latesearch.serving import RunningServer, SearchService, ServeConfig

    with RunningServer(SearchService(indexes["index"], ServeConfig()), port=0,
                       quiet=True) as running:  # fmt: skip
        yield running


@pytest.fixture
def client(server):
    """A `latesearch.Client` of the live server."""
    from latesearch import Client

    with Client(server.url) as client:
        yield client
