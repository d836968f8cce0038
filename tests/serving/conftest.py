"""Tiny indexes of 30 random documents shared by the serving tests."""

from __future__ import annotations

import json
import random

import pytest

WORDS = ("late interaction query search protein cell study music city river data model the of "
         "a in").split()


def build(tmp_path_factory, model, name: str, **components):
    """An index of 30 random documents (ids d0..d29, titles "title N") built with `model`."""
    from latesearch import Index

    folder = tmp_path_factory.mktemp(name)
    rng = random.Random(3)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for i in range(30):
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 15)))
            out.write(json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": text}) + "\n")
    return Index.build(folder / "corpus.jsonl", folder / "index", model, progress=False,
                       **components)  # fmt: skip


@pytest.fixture(scope="module")
def index(tmp_path_factory, tiny_colbert):
    """Compressed, with bm25/: every mode works (e2e through the engine)."""
    return build(tmp_path_factory, tiny_colbert, "serve", bm25=True)


@pytest.fixture(scope="module")
def bare_index(tmp_path_factory, tiny_colbert):
    """The same documents, uncompressed, without bm25/ or ann/: only mode "exact" works."""
    return build(tmp_path_factory, tiny_colbert, "serve-bare", ann=False, nbits=None)
