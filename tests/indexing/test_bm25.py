"""BM25 first stage: ranking on a hand-made corpus, save/load round trip, config validation."""

from __future__ import annotations

import json

import pytest

from latesearch.errors import ConfigError, InputError
from latesearch.indexing.components.bm25 import BM25Config, BM25Index

DOCS = [
    ("d-cats", "Cats are running through the garden, chasing other cats."),
    ("d-dogs", "A dog barked loudly at the mailman during the night."),
    ("d-music", "Classical music concerts in the city hall every Sunday."),
    ("d-physics", "Particle physics studies the smallest building blocks of matter."),
    ("d-empty", ""),
    ("d-stop", "the and of to a"),
]


@pytest.fixture(scope="module")
def index() -> BM25Index:
    return BM25Index.build(iter(DOCS))


def test_stemmed_match_ranks_first(index):
    # "cat"/"run" only match "Cats ... running" after stemming.
    (hits,) = index.search(["the cat runs"], k=3)
    assert hits[0][0] == "d-cats"
    assert [doc for doc, _ in hits] == ["d-cats"]  # no zero-score padding
    assert index.search(["dogs barking at night"], k=1)[0][0][0] == "d-dogs"


def test_scores_best_first_and_k_larger_than_collection(index):
    (hits,) = index.search(["cats dog music physics"], k=100)
    assert {doc for doc, _ in hits} == {"d-cats", "d-dogs", "d-music", "d-physics"}
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_queries_empty_after_tokenization(index):
    results = index.search(["", "the and of", "zebra xylophone", "cats"], k=5)
    assert results[:3] == [[], [], []]
    assert results[3][0][0] == "d-cats"
    assert index.tokenize(["the and of"]) == [[]]


def test_query_tokens_use_the_index_vocabulary(index):
    vocab = index.retriever.vocab_dict
    assert index.tokenize(["Cats RUNNING"]) == [[vocab["cat"], vocab["run"]]]
    assert "running" not in vocab and "the" not in vocab


def test_save_load_round_trip(index, tmp_path):
    queries = ["cat garden", "night dog", "matter", "nothing here zzz"]
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.doc_ids == index.doc_ids and loaded.config == index.config
    assert loaded.search(queries, k=4) == index.search(queries, k=4)
    index.save(tmp_path / "bm25")  # replacing an older copy is allowed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_save_refuses_unrelated_folder(index, tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="refusing"):
        index.save(tmp_path)
    assert (tmp_path / "precious.txt").exists()


def test_unstemmed_config_and_bad_input():
    plain = BM25Index.build(DOCS, BM25Config(stemmer=None, stopwords=None))
    assert plain.search(["cat"], k=2) == [[]]  # only "cats" was indexed
    assert plain.search(["the"], k=1)[0][0][0] in {"d-cats", "d-dogs", "d-stop", "d-physics"}
    with pytest.raises(InputError, match="duplicate"):
        BM25Index.build([("a", "x y"), ("a", "z w")])
    with pytest.raises(InputError, match="doc_id"):
        BM25Index.build([(3, "text")])
    with pytest.raises(InputError, match="no documents"):
        BM25Index.build([])


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"k1": -1}, "k1"),
        ({"b": 1.5}, "b"),
        ({"method": "tfidf"}, "method"),
        ({"stemmer": "klingon"}, "stemmer"),
        ({"stopwords": "xx"}, "stopwords"),
        ({"lowercase": "yes"}, "lowercase"),
    ],
)
def test_config_rejects_bad_values(changes, field):
    with pytest.raises(ConfigError, match=field):
        BM25Config(**changes)


def test_config_json_round_trip_and_unknown_field(tmp_path):
    config = BM25Config(k1=1.2, b=0.75, stemmer=None)
    assert BM25Config.load(config.save(tmp_path / "c.json")) == config
    assert BM25Config() == BM25Config(k1=0.9, b=0.4, method="lucene")
    (tmp_path / "bad.json").write_text(json.dumps({"k1": 1.0, "k3": 2}))
    with pytest.raises(ConfigError, match="k3"):
        BM25Config.load(tmp_path / "bad.json")
