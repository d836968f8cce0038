"""A tiny index (30 random documents, bm25/ and ann/) shared by the serving tests."""

from __future__ import annotations

import json
import random

import pytest

WORDS = (
    "late interaction query search protein cell study music city river data model the of a in"
).split()


def write_corpus(path, n: int = 30, seed: int = 3) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 15)))
            out.write(json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": text}) + "\n")


@pytest.fixture(scope="module")
def index(tmp_path_factory, tiny_colbert):
    from latesearch import Index

    folder = tmp_path_factory.mktemp("serve")
    write_corpus(folder / "corpus.jsonl")
    return Index.build(folder / "corpus.jsonl", folder / "index", tiny_colbert, bm25=True,
                       progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def bare_index(tmp_path_factory, tiny_colbert):
    """The same documents without bm25/ or ann/: only mode "exact" works."""
    from latesearch import Index

    folder = tmp_path_factory.mktemp("serve-bare")
    write_corpus(folder / "corpus.jsonl")
    return Index.build(folder / "corpus.jsonl", folder / "index", tiny_colbert, ann=False,
                       progress=False)  # fmt: skip
