"""Field indexes of a real index: declared at build time (`filter_fields`, `--filter-field`)
or added later (`Index.create_field_index`, a new version published atomically), kept by
updates, covered by the manifest's checksums, and added to indexes of earlier versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from latesearch import Index
from latesearch.errors import ConfigError, InputError
from latesearch.indexing import IndexConfig
from latesearch.indexing.docstore import DocStoreWriter
from tests.indexing.test_filters import matches

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "index_v0"
WORDS = "protein cell study gene brain model data network signal memory".split()
SPECS = [{"lang": "en"}, {"year": {"$gte": 2010, "$lt": 2015}}, {"tags": "ml"},
         {"lang": {"$in": ["de", "fr"]}, "tags": {"$exists": False}}]  # fmt: skip


def meta(i: int) -> dict:
    out = {"lang": ["en", "de", "fr", "es"][i % 4], "year": 2000 + i % 25}
    if i % 5 == 0:
        out["tags"] = ["ml", "ir"] if i % 10 == 0 else ["bio"]
    return out


def corpus(path: Path, ids: range) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        for i in ids:
            text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(3 + i % 5))
            out.write(json.dumps({"_id": f"d{i}", "title": "", "text": text,
                                  "metadata": meta(i)}) + "\n")  # fmt: skip
    return path


def expected(index: Index, spec) -> list[str]:
    ids = [index.store.doc_ids[i] for i in range(index.store.n_docs)]
    return sorted(d for d in ids if matches(meta(int(d[1:])), spec))


def selected(index: Index, spec) -> list[str]:
    return sorted(index.store.doc_ids[index.store.matching(spec)])


def test_declared_added_and_kept_through_updates(tmp_path, tiny_colbert):
    index = Index.build(corpus(tmp_path / "c.jsonl", range(30)), tmp_path / "idx", tiny_colbert,
                        bm25=True, progress=False, filter_fields=["lang"])  # fmt: skip
    assert index.store.indexed_fields == {"lang"}
    assert index.store.manifest.index_config["filter_fields"] == ["lang"]
    assert index.create_field_index(["year", "tags", "lang"]) == {"lang", "year", "tags"}
    assert IndexConfig.from_dict(index.store.manifest.index_config).filter_fields == (
        "lang", "year", "tags")  # fmt: skip
    report = index.verify()  # the new doc store's checksum is in the manifest
    assert report.complete, report.unchecked
    for spec in SPECS:
        assert selected(index, spec) == expected(index, spec)
    index.add(corpus(tmp_path / "more.jsonl", range(30, 45)), progress=False)
    index.delete(["d0", "d7", "d12"])
    index.delete(filter={"year": 2003})
    assert index.verify().complete
    for spec in SPECS:
        assert selected(index, spec) == expected(index, spec)
    hits = index.search("protein cell", k=5, filter={"lang": "en"})
    assert hits and all(int(h.doc_id[1:]) % 4 == 0 for h in hits)
    reloaded = Index.load(tmp_path / "idx", tiny_colbert)
    assert reloaded.store.indexed_fields == {"lang", "year", "tags"}


def test_a_crash_while_adding_a_field_index_leaves_the_index_as_it_was(
    tmp_path, tiny_colbert, monkeypatch
):
    index = Index.build(corpus(tmp_path / "c.jsonl", range(20)), tmp_path / "idx", tiny_colbert,
                        progress=False)  # fmt: skip
    manifest = (tmp_path / "idx" / "manifest.json").read_bytes()

    def crash(self, fields):
        raise KeyboardInterrupt

    monkeypatch.setattr(DocStoreWriter, "index_fields", crash)
    with pytest.raises(KeyboardInterrupt):
        index.create_field_index("lang")
    monkeypatch.undo()
    assert (tmp_path / "idx" / "manifest.json").read_bytes() == manifest
    assert not (tmp_path / "idx.updating").exists()
    again = Index.load(tmp_path / "idx", tiny_colbert)
    assert again.store.indexed_fields == frozenset() and again.verify().complete
    assert again.create_field_index("lang") == {"lang"}


def test_bad_field_names_are_refused_before_anything_changes(tmp_path, tiny_colbert):
    with pytest.raises(ConfigError) as err:
        IndexConfig(filter_fields=('a"b',))
    assert err.value.field == "filter_fields"
    index = Index.build(corpus(tmp_path / "c.jsonl", range(10)), tmp_path / "idx", tiny_colbert,
                        progress=False)  # fmt: skip
    with pytest.raises(InputError) as err:
        index.create_field_index(["lang", ""])
    assert err.value.field == "filter_fields" and index.store.indexed_fields == frozenset()


def test_the_cli_flag_declares_them():
    import argparse

    from latesearch.cli import index as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["index", "c.jsonl", "out", "--filter-field", "lang",
                              "--filter-field", "year"])  # fmt: skip
    assert cli.index_config(args).filter_fields == ("lang", "year")
    plain = parser.parse_args(["index", "c.jsonl", "out"])
    assert cli.index_config(plain).filter_fields == ()


@pytest.mark.parametrize("name", ["compressed", "plain"])
def test_an_index_of_the_first_version_gets_field_indexes(tmp_path, name):
    shutil.copytree(FIXTURE, tmp_path / "v0")
    index = Index.load(tmp_path / "v0" / name, tmp_path / "v0" / "model")
    spec = {"lang": {"$in": ["en", "de"]}}
    before = index.store.matching(spec).tolist()
    hits = [h.doc_id for h in index.search("protein", k=5, mode="exact", filter=spec)]
    unchecked = index.verify().unchecked
    index.create_field_index(["lang", "year"])
    assert index.store.matching(spec).tolist() == before and before
    assert [h.doc_id for h in index.search("protein", k=5, mode="exact", filter=spec)] == hits
    assert index.verify().unchecked == unchecked
