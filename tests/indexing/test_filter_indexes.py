"""Field indexes: filters on indexed fields select what the scan of the metadata selects
(hypothesis, against the reference evaluator), SQLite's planner looks them up instead of
scanning, and they stay right through adds, deletes and renumbering."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings

from latesearch.errors import InputError
from latesearch.indexing.docstore import DocStore, DocStoreWriter
from latesearch.indexing.filters import compile_filter
from tests.indexing.test_filters import DOCS, FIELDS, FILTERS, matches


def write_store(path, docs, *, index_first: bool, fields=FIELDS):
    writer = DocStoreWriter(path)
    if index_first:
        writer.index_fields(fields)
    writer.add(0, [(f"d{i}", "", "", json.dumps(m) if m else None) for i, m in enumerate(docs)])
    if not index_first:
        writer.index_fields(fields)
    writer.close()
    return DocStore(path)


@settings(max_examples=150, deadline=None)
@given(DOCS, FILTERS)
def test_indexed_fields_select_what_the_reference_selects(tmp_path_factory, docs, spec):
    for index_first in (True, False):  # rows written by the triggers, or in bulk
        path = tmp_path_factory.mktemp("fields") / "docs.sqlite"
        fields = FIELDS[: 2 + index_first]  # some fields unindexed
        store = write_store(path, docs, index_first=index_first, fields=fields)
        try:
            expected = [i for i, m in enumerate(docs) if matches(m, spec)]
            assert store.matching(spec).tolist() == expected
        finally:
            store.close()


def plan(store: DocStore, spec) -> str:
    query, params = store.filter_query(spec)
    return "\n".join(row[-1] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {query}", params))


@pytest.mark.parametrize("spec", [
    {"lang": "en"},
    {"year": {"$gte": 2, "$lt": 5}},
    {"tags": {"$in": ["ml", 3, True]}},
    {"lang": "en", "year": {"$ne": 3}},
    {"lang": "en", "draft": {"$ne": True}},  # an unindexed field checked on the matches
    {"$or": [{"lang": "de"}, {"year": 7}]},
])  # fmt: skip
def test_the_planner_looks_indexed_fields_up(tmp_path, spec):
    docs = [{"lang": ["en", "de"][i % 2], "year": i % 10, "tags": ["ml"]} for i in range(200)]
    store = write_store(tmp_path / "docs.sqlite", docs, index_first=False,
                        fields=["lang", "year", "tags"])  # fmt: skip
    try:
        used = plan(store, spec)
        assert "field_values_lookup" in used and "SCAN docs" not in used, used
        assert store.matching(spec).tolist() == [i for i, m in enumerate(docs)
                                                 if matches(m, spec)]  # fmt: skip
    finally:
        store.close()
    unindexed = write_store(tmp_path / "plain.sqlite", docs, index_first=False, fields=[])
    try:
        assert "SCAN" in plan(unindexed, spec) and "field_values" not in plan(unindexed, spec)
    finally:
        unindexed.close()


def test_filters_on_indexed_fields_alone_read_no_document(tmp_path):
    docs = [{"lang": ["en", "de"][i % 2], "year": i % 10, "note": "x"} for i in range(50)]
    store = write_store(tmp_path / "docs.sqlite", docs, index_first=True, fields=["lang", "year"])
    try:
        for spec, reads_docs in [({"lang": "en"}, False), ({"lang": "en", "year": 4}, False),
                                 ({"year": {"$gt": 2}, "note": "x"}, True),
                                 ({"lang": {"$ne": "en"}}, True)]:  # fmt: skip
            query, _ = store.filter_query(spec)
            assert ("FROM docs" in query) == reads_docs, (spec, query)
            assert store.matching(spec).tolist() == [i for i, m in enumerate(docs)
                                                     if matches(m, spec)]  # fmt: skip
    finally:
        store.close()


def field_rows(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT field, type, value, elem, idx FROM field_values"),
                      key=repr)  # fmt: skip


def random_docs(rng, n, start=0):
    out = []
    for i in range(start, start + n):
        meta = {"lang": str(rng.choice(["en", "de", "fr"])), "year": int(rng.integers(0, 9))}
        if rng.random() < 0.3:
            meta["tags"] = [str(t) for t in rng.choice(["a", "b", "c"], size=2)]
        out.append((f"d{i}", "", "", json.dumps(meta) if rng.random() < 0.9 else None))
    return out


def test_adds_deletes_and_renumbering_keep_the_rows_right(tmp_path):
    rng = np.random.default_rng(0)
    fields = ["lang", "year", "tags"]
    writer = DocStoreWriter(tmp_path / "kept.sqlite")
    writer.index_fields(fields)
    rows = random_docs(rng, 300)
    writer.add(0, rows)
    writer.truncate(250)  # an interrupted group's rows dropped
    rows = rows[:250]
    writer.remove(np.array([0, 3, 3, 100, 249]))
    rows = [r for i, r in enumerate(rows) if i not in (0, 3, 100, 249)]
    other = DocStoreWriter(tmp_path / "other.sqlite")  # a side store without field indexes
    more = random_docs(rng, 20, start=1000)
    other.add(0, more)
    other.close()
    writer.append_from(tmp_path / "other.sqlite", len(rows))
    rows += more
    writer.index_fields(["year"])  # already indexed: nothing changes
    writer.close()
    fresh = DocStoreWriter(tmp_path / "fresh.sqlite")
    fresh.add(0, rows)
    fresh.index_fields(fields)
    fresh.close()
    assert field_rows(tmp_path / "kept.sqlite") == field_rows(tmp_path / "fresh.sqlite")
    assert len(field_rows(tmp_path / "fresh.sqlite")) > len(rows)


@pytest.mark.parametrize("name", ["", 'a"b', "a\\b", "a\nb", 3])
def test_bad_field_names_are_refused(tmp_path, name):
    writer = DocStoreWriter(tmp_path / "docs.sqlite")
    try:
        with pytest.raises(InputError) as err:
            writer.index_fields([name])
        assert err.value.field == "filter_fields"
    finally:
        writer.close()


def test_a_compiled_filter_is_compiled_again_for_the_store_s_indexes(tmp_path):
    docs = [{"lang": "en"}, {"lang": "de"}, None]
    store = write_store(tmp_path / "docs.sqlite", docs, index_first=True, fields=["lang"])
    try:
        compiled = compile_filter('{"lang": "de"}')  # as a request compiles it
        sql, _ = compiled
        assert "field_values" not in sql and compiled.spec == {"lang": "de"}
        assert "field_values" in compile_filter(compiled, store.indexed_fields).sql
        assert store.matching(compiled).tolist() == [1]
    finally:
        store.close()


def test_a_repeated_filter_is_compiled_once_per_store(tmp_path):
    """A request's filter (compiled without the store's indexed fields) is planned against
    them once per doc store, a version of the index, not on every search; a store with
    other indexed fields plans it again, and answers stay right."""
    docs = [{"lang": ["en", "de"][i % 2], "year": 2000 + i % 5} for i in range(40)]
    spec = {"lang": "de", "year": {"$gte": 2002}}
    expected = [i for i, m in enumerate(docs) if m["lang"] == "de" and m["year"] >= 2002]
    request_filter = compile_filter(spec)  # as a SearchRequest compiles it
    indexed = write_store(tmp_path / "a.sqlite", docs, index_first=True, fields=["lang"])
    plain = write_store(tmp_path / "b.sqlite", docs, index_first=True, fields=[])
    try:
        for store in (indexed, plain):
            for _ in range(5):
                assert store.matching(request_filter).tolist() == expected
                assert store.matching(spec).tolist() == expected
                store.filter_query(compile_filter(spec))  # an equal filter, compiled anew
            assert store.plans_compiled == 2  # the compiled filter and the object
        assert indexed.filter_query(spec) != plain.filter_query(spec)  # planned per store
        other = {"lang": "en"}
        assert indexed.matching(other).tolist() == list(range(0, 40, 2))
        assert indexed.plans_compiled == 3
    finally:
        indexed.close()
        plain.close()
