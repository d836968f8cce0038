"""Index.delete(filter=...): exactly the matching documents go, the index verifies, and a
bad filter is refused naming its field with nothing deleted; IndexConfig.max_docs and
update's max_docs refuse what would pass them."""

from __future__ import annotations

import json
import random

import pytest

from latesearch import Index
from latesearch.errors import ConfigError, InputError

WORDS = "late interaction query search protein cell study music city river data model".split()


def write_corpus(path, n=24, start=0):
    rng = random.Random(5)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(start, start + n):
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
            meta = {"lang": ["en", "de", "fr"][i % 3], "year": 2000 + i % 8}
            if i % 4 == 0:
                meta["tags"] = ["ml", "ir"] if i % 8 == 0 else ["ir"]
            out.write(json.dumps({"_id": f"d{i}", "text": text, "metadata": meta}) + "\n")
    return path


@pytest.fixture
def index(tmp_path, tiny_colbert):
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    return Index.build(corpus, tmp_path / "index", tiny_colbert, bm25=True, progress=False,
                       n_centroids=8)  # fmt: skip


def ids_of(index) -> set[str]:
    return {str(i) for i in index.store.doc_ids}


def metadata(index) -> dict[str, dict]:
    docs = index.store.documents(range(len(index)))
    return {d["doc_id"]: d["metadata"] for d in docs}


@pytest.mark.parametrize("spec", [
    {"lang": "de"},
    {"year": {"$gte": 2004}, "lang": {"$ne": "en"}},
    {"tags": {"$in": ["ml"]}},
    {"$or": [{"year": 2001}, {"tags": {"$exists": True}}]},
], ids=["eq", "range-and-ne", "in-list", "or-exists"])  # fmt: skip
def test_deletes_exactly_the_matching_documents(index, spec):
    before = metadata(index)
    expected = {i for i in before if i in {str(x) for x in index.store.doc_ids[
        index.store.matching(spec)]}}  # fmt: skip
    assert expected and len(expected) < len(before)
    summary = index.delete(filter=spec)
    assert summary.deleted == len(expected) and summary.docs == len(before) - len(expected)
    assert ids_of(index) == set(before) - expected
    assert index.store.matching(spec).size == 0
    after = metadata(index)
    assert after == {i: m for i, m in before.items() if i not in expected}  # texts kept too
    index.verify()  # every file re-hashed against its checksums
    reloaded = Index.load(index.folder)
    assert ids_of(reloaded) == ids_of(index)
    hits = reloaded.search("protein cell", k=30, mode="rerank")
    assert {h.doc_id for h in hits} <= ids_of(index)


def test_the_filter_is_a_json_text_too(index):
    summary = index.delete(filter='{"lang": "fr"}')
    assert summary.deleted == 8 and len(index) == 16


@pytest.mark.parametrize(("spec", "field"), [
    ({"year": {"$regex": "20"}}, "filter.year.$regex"),
    ({"year": {"$gt": [1]}}, "filter.year.$gt"),
    ({"$or": []}, "filter.$or"),
    ("{not json", "filter"),
], ids=["operator", "value", "empty-or", "json"])  # fmt: skip
def test_a_bad_filter_is_refused_naming_its_field_and_deletes_nothing(index, spec, field):
    before, version = ids_of(index), index.store.manifest.to_dict()
    with pytest.raises(InputError) as caught:
        index.delete(filter=spec)
    assert caught.value.field == field
    assert ids_of(Index.load(index.folder)) == before
    assert Index.load(index.folder).store.manifest.to_dict() == version


def test_a_filter_matching_nothing_changes_nothing(index):
    version = index.store.manifest.to_dict()
    summary = index.delete(filter={"lang": "xx"})
    assert summary.deleted == 0 and summary.docs == 24
    assert Index.load(index.folder).store.manifest.to_dict() == version  # no new version


def test_ids_or_filter_not_both_nor_neither(index):
    for args, kwargs in (((["d1"],), {"filter": {"lang": "en"}}), ((), {})):
        with pytest.raises(InputError):
            index.delete(*args, **kwargs)
    assert len(index) == 24


def test_a_filter_matching_everything_is_refused(index):
    with pytest.raises(InputError, match="empty"):
        index.delete(filter={})
    assert len(Index.load(index.folder)) == 24


def test_max_docs_of_an_update(index, tmp_path):
    more = write_corpus(tmp_path / "more.jsonl", n=4, start=100)
    with pytest.raises(InputError) as caught:
        index.update(add=more, max_docs=27)
    assert caught.value.field == "documents" and "27" in str(caught.value)
    assert len(Index.load(index.folder)) == 24
    index.update(add=more, delete=["d0"], max_docs=27)  # one out, four in: 27
    assert len(index) == 27
    index.update(delete=["d1", "d2"], max_docs=3)  # fewer documents is always allowed
    assert len(index) == 25


def test_max_docs_saved_with_the_index(tmp_path, tiny_colbert):
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=10)
    with pytest.raises(InputError) as caught:
        Index.build(corpus, tmp_path / "over", tiny_colbert, progress=False, max_docs=9)
    assert caught.value.field == "max_docs"
    assert not (tmp_path / "over" / "manifest.json").exists()
    index = Index.build(corpus, tmp_path / "index", tiny_colbert, progress=False, max_docs=11)
    assert index.store.manifest.index_config["max_docs"] == 11
    one, two = (write_corpus(tmp_path / f"more{n}.jsonl", n=n, start=100) for n in (1, 2))
    with pytest.raises(InputError, match="limit is 11"):
        index.add(two, progress=False)
    index.add(one, progress=False)
    assert len(index) == 11
    with pytest.raises(ConfigError):
        Index.build(corpus, tmp_path / "bad", tiny_colbert, progress=False, max_docs=0)
