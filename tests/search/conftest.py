"""Tiny indexes for the search tests (a few dozen documents, the tiny random ColBERT) and
brute-force MaxSim straight from the encoder, the reference the tests compare to."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from latesearch.scoring import maxsim, pad_documents

CONTENT = (
    "late interaction query document passage search retrieval model bert colbert token "
    "vector index score rank fast slow cat dog house tree river city music science data "
    "protein cell gene drug study result effect patient disease energy physics particle "
    "the a of to in is for on with"
).split()


def write_collection(path: Path, n: int = 40, seed: int = 0) -> Path:
    """A BEIR-style JSONL collection of `n` random documents (ids d0..), titles on some."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            text = " ".join(rng.choices(CONTENT, k=rng.randint(3, 18)))
            title = " ".join(rng.choices(CONTENT, k=2)) if i % 3 == 0 else ""
            out.write(json.dumps({"_id": f"d{i}", "title": title, "text": text}) + "\n")
    return path


@pytest.fixture(scope="session")
def collection_path(tmp_path_factory) -> Path:
    return write_collection(tmp_path_factory.mktemp("collection") / "corpus.jsonl")


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory, collection_path, tiny_colbert):
    """An uncompressed index with bm25/ and a flat ann/, float32 embeddings."""
    from latesearch import Index

    folder = tmp_path_factory.mktemp("indexes") / "tiny"
    return Index.build(
        collection_path, folder, tiny_colbert, bm25=True, progress=False, precision=32, nbits=None
    )


def read_docs(path: Path) -> tuple[list[str], list[str]]:
    """(ids, texts as the encoder sees them: title + ' ' + text)."""
    ids, texts = [], []
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        ids.append(row["_id"])
        texts.append(f"{row['title']} {row['text']}" if row["title"].strip() else row["text"])
    return ids, texts


def brute_scores(model, query: str, texts: list[str]) -> np.ndarray:
    """MaxSim of `query` against each text, from `encode_queries` / `encode_documents`."""
    Q = model.encode_queries([query])[0]
    D, mask = pad_documents(model.encode_documents(texts))
    q_mask = Q.abs().sum(-1) > 0
    return maxsim(Q, D, mask, q_mask, model.config.similarity).numpy()


def brute_top(model, query: str, ids: list[str], texts: list[str], k: int) -> list[str]:
    scores = brute_scores(model, query, texts)
    order = np.lexsort((np.arange(len(ids)), -scores))[:k]
    return [ids[i] for i in order]


@pytest.fixture(scope="session")
def brute() -> SimpleNamespace:
    """Brute-force helpers: read_docs, brute_scores, brute_top, write_collection."""
    return SimpleNamespace(
        read_docs=read_docs,
        scores=brute_scores,
        top=brute_top,
        write_collection=write_collection,
    )


def write_corpus(path, n=40):
    """40 random documents with metadata (`metadata_of`) in BEIR JSONL."""
    rng = np.random.default_rng(5)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            text = " ".join(rng.choice(CONTENT, size=int(rng.integers(4, 15))))
            row = {"_id": f"d{i}", "title": "", "text": text, "year": 2000 + i % 25,
                   "metadata": {"lang": ["en", "de", "fr", "es"][i % 4]}}  # fmt: skip
            if i % 5 == 0:
                row["tags"] = ["ml", "ir"] if i % 10 == 0 else ["bio"]
            out.write(json.dumps(row) + "\n")
    return path


def metadata_of(i):
    meta = {"lang": ["en", "de", "fr", "es"][i % 4], "year": 2000 + i % 25}
    if i % 5 == 0:
        meta["tags"] = ["ml", "ir"] if i % 10 == 0 else ["bio"]
    return meta


@pytest.fixture(scope="session")
def metadata_indexes(tmp_path_factory, tiny_colbert):
    """A compressed and an uncompressed index (both with bm25/) of `write_corpus`'s 40
    documents with metadata."""
    from latesearch import Index

    folder = tmp_path_factory.mktemp("metadata")
    corpus = write_corpus(folder / "corpus.jsonl")
    compressed = Index.build(corpus, folder / "c", tiny_colbert, bm25=True, progress=False)
    plain = Index.build(corpus, folder / "u", tiny_colbert, bm25=True, progress=False,
                        nbits=None, precision=32)  # fmt: skip
    return compressed, plain
