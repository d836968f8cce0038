"""Metadata stored with documents, returned with hits, kept through updates, and filters
in every mode: only matching documents come back, and a selective filter still fills the
top-k (the filter restricts the candidates before scoring)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from latesearch import Index
from latesearch.errors import InputError
from latesearch.indexing import filters

from .conftest import metadata_of, write_corpus

QUERY = "protein cell study"


def allowed_ids(spec):
    from tests.indexing.test_filters import matches

    return {f"d{i}" for i in range(40) if matches(metadata_of(i), spec)}


def test_metadata_is_stored_and_returned(metadata_indexes):
    compressed, _ = metadata_indexes
    hits = compressed.search(QUERY, k=40, mode="exact", return_metadata=True)
    assert {h.doc_id: h.metadata for h in hits} == {f"d{i}": metadata_of(i) for i in range(40)}
    assert hits[0].text is None and "metadata" in hits[0].to_dict()
    assert "metadata" not in compressed.search(QUERY, k=1)[0].to_dict()


@pytest.mark.parametrize("spec", [
    {"lang": "en"},
    {"year": {"$gte": 2020}, "$or": [{"lang": "de"}, {"lang": "fr"}]},
    {"tags": {"$in": ["ml"]}},
    {"lang": {"$nin": ["en", "de"]}, "tags": {"$exists": False}},
    {"year": 2003},
])  # fmt: skip
@pytest.mark.parametrize("which", ["compressed", "plain"])
@pytest.mark.parametrize("mode", ["e2e", "rerank", "exact"])
def test_filters_keep_only_matching_documents_and_fill_the_top_k(metadata_indexes, spec, which,
                                                                 mode):  # fmt: skip
    index = dict(zip(["compressed", "plain"], metadata_indexes, strict=True))[which]
    allowed = allowed_ids(spec)
    hits = index.search(QUERY, k=5, mode=mode, filter=spec)
    assert {h.doc_id for h in hits} <= allowed
    if mode != "rerank":  # BM25 only proposes documents sharing a term with the query
        assert len(hits) == min(5, len(allowed))
    if which == "compressed" and mode == "e2e":  # fewer allowed than ndocs: all scored
        exact = index.search(QUERY, k=5, mode="exact", filter=spec)
        assert [h.doc_id for h in hits] == [h.doc_id for h in exact]


def test_the_engine_with_every_candidate_kept_equals_exact_over_the_subset(metadata_indexes):
    compressed, _ = metadata_indexes
    spec = {"lang": {"$in": ["en", "fr"]}}
    wide = compressed.search(QUERY, k=10, filter=spec, ncells=10_000, ndocs=10_000,
                             centroid_score_threshold=-1e9)  # fmt: skip
    exact = compressed.search(QUERY, k=10, mode="exact", filter=spec)
    assert [h.doc_id for h in wide] == [h.doc_id for h in exact]


def test_rerank_drops_filtered_candidates(metadata_indexes):
    compressed, _ = metadata_indexes
    hits = compressed.rerank(QUERY, ["d0", "d1", "d4", "d8"], filter={"lang": "en"})
    assert {h.doc_id for h in hits} == {"d0", "d4", "d8"} and hits.skipped == []


def test_a_filter_matching_nothing_and_bad_filters(metadata_indexes):
    compressed, _ = metadata_indexes
    assert compressed.search(QUERY, k=5, filter={"lang": "xx"}) == []
    with pytest.raises(InputError, match=r"\$regex"):
        compressed.search(QUERY, filter={"lang": {"$regex": "e"}})
    assert [h.doc_id for h in compressed.search(QUERY, k=3, filter='{"lang": "de"}')] != []


def test_a_filter_too_complex_for_sqlite_is_bad_input_not_damage(metadata_indexes, monkeypatch):
    compressed, _ = metadata_indexes
    deep = {"lang": "en"}
    for _ in range(200):
        deep = {"$not": deep}
    with pytest.raises(InputError) as err:
        compressed.search(QUERY, k=3, filter=deep)
    assert err.value.field == "filter"
    monkeypatch.setattr(filters, "MAX_DEPTH", 1000)  # past the filter's limit, SQLite refuses
    with pytest.raises(InputError, match="too complex for SQLite") as err:
        compressed.store.matching(deep)
    assert err.value.field == "filter"


def test_the_store_takes_a_compiled_filter(metadata_indexes):
    compressed, _ = metadata_indexes
    spec = {"lang": {"$in": ["en", "fr"]}}
    compiled = filters.compile_filter(spec)
    assert list(compressed.store.matching(compiled)) == list(compressed.store.matching(spec))
    assert len(compressed.store.matching(compiled)) > 0


def test_metadata_survives_updates_and_old_doc_stores(tmp_path, tiny_colbert):
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=12)
    index = Index.build(corpus, tmp_path / "idx", tiny_colbert, progress=False)
    index.update(add=[{"_id": "n1", "text": "protein gene", "lang": "en", "year": 1990}],
                 delete=["d0", "d5"], progress=False)  # fmt: skip
    hits = index.search(QUERY, k=20, mode="exact", return_metadata=True)
    got = {h.doc_id: h.metadata for h in hits}
    assert got["n1"] == {"lang": "en", "year": 1990}
    assert got["d7"] == metadata_of(7) and "d0" not in got
    assert {h.doc_id for h in index.search(QUERY, k=20, filter={"year": {"$lt": 2000}})} == {"n1"}

    # an index written before metadata existed: no column; reads see none, updates add it
    with sqlite3.connect(index.folder / "docs.sqlite") as conn:
        conn.execute("DROP INDEX docs_metadata")
        conn.execute("ALTER TABLE docs DROP COLUMN metadata")
    manifest = json.loads((index.folder / "manifest.json").read_text())
    del manifest["files"]  # nor did it record checksums of its doc store
    (index.folder / "manifest.json").write_text(json.dumps(manifest))
    old = Index.load(index.folder, tiny_colbert)
    assert old.search(QUERY, k=3, return_metadata=True)[0].metadata == {}
    assert old.search(QUERY, k=3, filter={"lang": "en"}) == []
    assert len(old.search(QUERY, k=3, filter={"lang": {"$ne": "en"}})) == 3
    old.add([{"_id": "n2", "text": "cell", "lang": "de"}], progress=False)
    assert [h.doc_id for h in old.search("cell", k=5, filter={"lang": "de"})] == ["n2"]
