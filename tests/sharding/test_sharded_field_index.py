"""ShardedIndex.create_field_index: every shard indexes the fields, filters answer as
before; a bad name changes no shard. `latesearch serve --index-root` serves a sharded
index found there."""

from __future__ import annotations

import pytest

from latesearch import Index, ShardedIndex
from latesearch.errors import InputError
from latesearch.indexing import IndexStore

SPEC = {"lang": "de", "year": {"$gte": 2003}}


def test_create_field_index_on_every_shard(tmp_path, tiny_colbert, kit):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=24)
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2,
                                 progress=False, **kit.SETTINGS)  # fmt: skip
    before = sharded.search("protein cell", k=30, mode="exact", filter=SPEC)
    assert sharded.create_field_index(["lang", "year"]) == {"lang", "year"}
    for name in sharded.manifest.shards:
        with IndexStore.open(tmp_path / "s" / name) as shard:
            assert shard.indexed_fields == {"lang", "year"}
    after = sharded.search("protein cell", k=30, mode="exact", filter=SPEC)
    assert [h.doc_id for h in after] == [h.doc_id for h in before] and len(after) > 0
    assert sharded.create_field_index("lang") == {"lang", "year"}  # kept, not duplicated


def test_a_bad_field_name_changes_no_shard(tmp_path, tiny_colbert, kit):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=12)
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2,
                                 progress=False, **kit.SETTINGS)  # fmt: skip
    with pytest.raises(InputError) as err:
        sharded.create_field_index(["lang", ""])
    assert err.value.field == "filter_fields"
    for name in sharded.manifest.shards:
        with IndexStore.open(tmp_path / "s" / name) as shard:
            assert not shard.indexed_fields


def test_the_index_root_serves_sharded_indexes(tmp_path, tiny_colbert, kit):
    from latesearch.cli.main import build_parser
    from latesearch.cli.serve import open_catalog

    root = tmp_path / "root"
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=12)
    ShardedIndex.build(corpus, root / "sharded", tiny_colbert, n_shards=2, progress=False,
                       **kit.SETTINGS)  # fmt: skip
    Index.build(corpus, root / "plain", tiny_colbert, progress=False, **kit.SETTINGS)
    args = build_parser().parse_args(["serve", "--index-root", str(root)])
    catalog = open_catalog(args, None)
    try:
        assert sorted(catalog.services) == ["plain", "sharded"]
        assert isinstance(catalog.get("sharded").index, ShardedIndex)
        body = catalog.get("sharded").handle("GET", "/search?q=protein&k=3&mode=exact").body
        assert len(body["hits"]) == 3
    finally:
        catalog.close()
