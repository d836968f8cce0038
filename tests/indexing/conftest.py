"""Fixtures of the indexing tests: small collections written on the fly, quick builds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from latesearch.indexing import IndexConfig, build_index

WORDS = (
    "the cat is a dog protein cell gene drug study what how why late interaction query "
    "document passage search retrieval model , . !"
).split()


def make_docs(n: int = 40, seed: int = 0) -> list[dict[str, str]]:
    """BEIR-like documents of varied length: some titled, one empty, one punctuation only."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
        docs.append({"_id": f"doc-{i}", "title": f"title {i}" if i % 3 == 0 else "", "text": text})
    docs[5] = {"_id": "doc-5", "title": "", "text": ""}
    docs[7] = {"_id": "doc-7", "title": "", "text": "! , ."}
    return docs


def write_jsonl(path: Path, docs: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def full_text(doc: dict[str, str]) -> str:
    return f"{doc['title']} {doc['text']}" if doc["title"] else doc["text"]


@pytest.fixture(name="full_text")
def full_text_fixture():
    """The text the encoder sees for a document dict (title joined with a space)."""
    return full_text


@pytest.fixture(name="write_jsonl")
def write_jsonl_fixture():
    return write_jsonl


@pytest.fixture
def docs() -> list[dict[str, str]]:
    return make_docs()


@pytest.fixture
def corpus(tmp_path: Path, docs) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", docs)


@pytest.fixture
def small_config() -> IndexConfig:
    """Several groups and chunks on a 40-document collection, uncompressed float32 for exact
    checks (the compressed format has its own tests); groups are exactly group_size (no
    checkpoint limits: tests of those set them)."""
    return IndexConfig().replace(group_size=16, chunk_size=6, batch_size=5, precision=32,
                                 nbits=None, pool_factor=1, checkpoint_docs=None,
                                 checkpoint_seconds=None)  # fmt: skip


@pytest.fixture
def build(tiny_colbert, tmp_path: Path, small_config):
    """build(collection, name="index", config=..., **build_index options) -> IndexStore,
    quietly unless progress=True."""

    def _build(collection, name: str = "index", *, config=None, **kwargs):
        config = config or small_config
        kwargs.setdefault("progress", False)
        return build_index(collection, tmp_path / name, tiny_colbert, config, **kwargs)

    return _build
