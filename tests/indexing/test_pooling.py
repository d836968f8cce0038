"""Token pooling at index time: the clustering, the stored spans, and pooled indexes through
build, resume, updates, compression and verification."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latesearch.errors import ConfigError, IndexCorruptError
from latesearch.indexing import IndexConfig, IndexStore, build_index, compress_index, update_index
from latesearch.indexing.pooling import (
    cluster_tokens,
    pool_document,
    pool_group,
    pooled_count,
    token_spans,
)

COMPRESSED = IndexConfig().replace(group_size=16, chunk_size=6, batch_size=5, precision=32,
                                   nbits=2, n_centroids=16, keep_full=False, pool_factor=1,
                                   checkpoint_docs=None, checkpoint_seconds=None)  # fmt: skip


class Crash(Exception):
    pass


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def check_spans(pooled: IndexStore, plain: IndexStore, atol: float) -> None:
    """Every document of `pooled` against the unpooled `plain` (same documents): each original
    token is in exactly one pooled vector's span, [CLS] alone in the first, the counts are
    ceil((n - 1) / f) + 1, and each pooled vector is the re-normalized mean of its span's
    vectors in `plain`."""
    factor = pooled.manifest.config.codec.pool_factor
    assert list(pooled.doc_ids) == list(plain.doc_ids)
    for doc in range(pooled.n_docs):
        n = int(plain.doclens[doc])
        spans = token_spans(pooled, doc)
        assert len(spans) == pooled.doclens[doc] == pooled_count(n, factor)
        assert sorted(np.concatenate(spans).tolist()) == list(range(n))
        assert spans[0].tolist() == [0]
        vectors = plain.flat([doc], source="full")[0].astype(np.float32)
        expected = unit(np.stack([vectors[s].sum(axis=0) for s in spans]))
        got = pooled.flat([doc])[0].astype(np.float32)
        np.testing.assert_allclose(got, expected, atol=atol)


# ---------------------------------------------------------------------- the clustering
def test_ward_merges_the_closest_tokens_first_and_numbers_clusters_by_first_token():
    rng = np.random.default_rng(0)
    centers = unit(rng.normal(size=(3, 8)))
    order = [2, 0, 1, 0, 2, 1]  # three pairs of near-duplicates, interleaved
    vectors = unit(centers[order] + 1e-3 * rng.normal(size=(6, 8)))
    assert cluster_tokens(vectors, 3).tolist() == [0, 1, 2, 1, 0, 2]
    assert cluster_tokens(vectors, 6).tolist() == list(range(6))
    assert len(set(cluster_tokens(vectors, 1).tolist())) == 1


def test_identical_tokens_still_give_exactly_the_asked_number_of_clusters():
    vectors = np.tile(unit(np.ones((1, 4))), (9, 1))  # every distance ties
    for n in range(1, 10):
        labels = cluster_tokens(vectors, n)
        assert sorted(set(labels.tolist())) == list(range(n))
        assert np.array_equal(labels, cluster_tokens(vectors, n))  # ties broken the same way


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_a_document_keeps_cls_and_ceil_of_the_rest_over_the_factor(factor):
    rng = np.random.default_rng(factor)
    for n in (1, 2, 3, 7, 24):
        vectors = unit(rng.normal(size=(n, 16))).astype(np.float32)
        pooled, labels = pool_document(vectors, factor)
        assert len(pooled) == pooled_count(n, factor) == 1 + math.ceil((n - 1) / factor)
        assert labels[0] == 0 and (labels[1:] > 0).all()
        np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(pooled[0], vectors[0])  # [CLS] kept as it was


def test_factor_one_pools_nothing():
    rng = np.random.default_rng(1)
    vectors = torch.from_numpy(unit(rng.normal(size=(10, 8))).astype(np.float32))
    pooled = pool_group(vectors, torch.tensor([4, 6], dtype=torch.int32), 1)
    assert torch.equal(pooled.embeddings, vectors)
    assert pooled.spans.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]


# ---------------------------------------------------------------------- indexes
def test_pool_factor_is_validated():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="pool_factor"):
            IndexConfig().replace(pool_factor=bad)


def test_factor_one_builds_the_very_same_index(build, corpus, small_config, tmp_path):
    build(corpus, "without", config=small_config)
    build(corpus, "with", config=small_config.replace(pool_factor=1))
    a, b = tmp_path / "without", tmp_path / "with"
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    for name in names:
        if name != "manifest.json":  # holds the build's date and timings
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert not any(name.endswith(".spans.npy") for name in names)


@pytest.mark.parametrize("factor", [2, 3])
def test_pooled_build_stores_spans_and_fewer_vectors(build, corpus, small_config, factor):
    plain = build(corpus, "plain")
    pooled = build(corpus, "pooled", config=small_config.replace(pool_factor=factor))
    check_spans(pooled, plain, atol=1e-6)  # float32 sums, in another order
    assert pooled.n_embeddings < plain.n_embeddings
    assert pooled.summary.text_tokens == plain.n_embeddings == plain.summary.text_tokens
    assert pooled.manifest.config.codec.pool_factor == factor
    assert all(c.spans and c.textlens for c in pooled.chunks)
    assert pooled.verify().complete


def test_damaged_spans_are_detected(build, corpus, small_config):
    pooled = build(corpus, config=small_config.replace(pool_factor=2))
    path = pooled.folder / pooled.chunks[1].spans
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="spans"):
        IndexStore.open(pooled.folder).verify()


def test_resumed_pooled_build_finishes_the_same_way(build, corpus, small_config, tmp_path):
    config = small_config.replace(pool_factor=2)
    seen = []

    def crash(info):
        seen.append(info)
        if len(seen) == 2:
            raise Crash

    with pytest.raises(Crash):
        build(corpus, config=config, on_chunk=crash)
    staged = (tmp_path / "index.building" / seen[0].spans).read_bytes()
    resumed = build(corpus, config=config, resume=True)
    assert resumed.summary.resumed
    assert (resumed.folder / resumed.chunks[0].spans).read_bytes() == staged
    # batches are padded differently after the resume, which changes float rounding
    check_spans(resumed, build(corpus, "plain"), atol=1e-4)
    assert resumed.verify().complete


def test_compressed_pooled_index_survives_deletes_and_additions(
    tiny_colbert, tmp_path, docs, write_jsonl
):
    first, later = write_jsonl(tmp_path / "a.jsonl", docs[:30]), write_jsonl(
        tmp_path / "b.jsonl", docs[30:])  # fmt: skip
    config = COMPRESSED.replace(pool_factor=3)
    index = build_index(first, tmp_path / "pooled", tiny_colbert, config, progress=False)
    index.close()
    gone = ["doc-2", "doc-13", "doc-29"]
    index, summary = update_index(tmp_path / "pooled", add=later, delete=gone,
                                  model=tiny_colbert, progress=False)  # fmt: skip
    assert summary.deleted == 3 and summary.added == 10
    kept = [d for d in docs if d["_id"] not in gone]
    plain = build_index(write_jsonl(tmp_path / "kept.jsonl", kept), tmp_path / "plain",
                        tiny_colbert, COMPRESSED.replace(nbits=None), progress=False)  # fmt: skip
    for doc in range(index.n_docs):  # spans of every document, old and added
        n = int(plain.doclens[doc])
        spans = token_spans(index, doc)
        assert len(spans) == index.doclens[doc] == pooled_count(n, 3)
        assert sorted(np.concatenate(spans).tolist()) == list(range(n))
    assert index.manifest.stats["text_tokens"] == plain.n_embeddings
    assert index.verify().complete


@pytest.mark.parametrize("nbits", [2, 4])
def test_a_resumed_compressed_pooled_build_is_whole_and_verifies(
    build, corpus, docs, nbits, tmp_path
):
    config = COMPRESSED.replace(nbits=nbits, pool_factor=2)
    seen = []

    def crash(info):
        seen.append(info)
        if len(seen) == 2:
            raise Crash

    with pytest.raises(Crash):
        build(corpus, config=config, on_chunk=crash)
    staged = (tmp_path / "index.building" / seen[0].spans).read_bytes()
    resumed = build(corpus, config=config, resume=True)
    assert resumed.summary.resumed and resumed.compressed and resumed.codec.nbits == nbits
    assert (resumed.folder / resumed.chunks[0].spans).read_bytes() == staged
    plain = build(corpus, "plain", config=COMPRESSED.replace(nbits=None))
    assert resumed.manifest.stats["text_tokens"] == plain.n_embeddings
    for doc in range(resumed.n_docs):
        assert resumed.doclens[doc] == pooled_count(int(plain.doclens[doc]), 2)
    assert resumed.verify().complete


def test_a_pooled_index_replaces_a_document_with_its_new_pooled_vectors(
    tiny_colbert, tmp_path, docs, write_jsonl
):
    config = COMPRESSED.replace(pool_factor=2)
    index = build_index(write_jsonl(tmp_path / "a.jsonl", docs), tmp_path / "pooled",
                        tiny_colbert, config, progress=False)  # fmt: skip
    index.close()
    changed = [{**docs[5], "text": docs[5]["text"] + " " + docs[7]["text"]}]
    index, summary = update_index(tmp_path / "pooled", add=write_jsonl(tmp_path / "b.jsonl",
                                  changed), replace=True, model=tiny_colbert,
                                  progress=False)  # fmt: skip
    assert index.n_docs == len(docs) and summary.added == summary.replaced == 1
    plain = build_index(write_jsonl(tmp_path / "c.jsonl", changed), tmp_path / "plain",
                        tiny_colbert, COMPRESSED.replace(nbits=None), progress=False)  # fmt: skip
    (doc,) = index.doc_indices([docs[5]["_id"]])[0]
    spans = token_spans(index, int(doc))
    assert len(spans) == pooled_count(int(plain.doclens[0]), 2)
    assert sorted(np.concatenate(spans).tolist()) == list(range(int(plain.doclens[0])))
    assert index.verify().complete


def test_compress_index_pools_like_a_pooled_build(build, corpus, small_config, tmp_path):
    plain = build(corpus, "plain")
    config = small_config.replace(pool_factor=2, nbits=2, n_centroids=16, keep_full=True)
    pooled = build(corpus, "pooled", config=config)
    copied = compress_index(plain.folder, tmp_path / "copied", nbits=2, n_centroids=16,
                            keep_full=True, pool_factor=2)  # fmt: skip
    for ours, theirs in zip(copied.chunks, pooled.chunks, strict=True):
        assert (ours.sha256, ours.doclens_sha256, ours.spans_sha256, ours.textlens_sha256) == (
            theirs.sha256, theirs.doclens_sha256, theirs.spans_sha256, theirs.textlens_sha256
        )  # fmt: skip
    assert copied.n_embeddings == pooled.n_embeddings
    assert copied.manifest.stats["text_tokens"] == plain.n_embeddings
    assert copied.verify().complete
    pooled_plain = build(corpus, "pooled-plain", config=small_config.replace(pool_factor=2))
    with pytest.raises(ConfigError, match="already pooled"):
        compress_index(pooled_plain.folder, tmp_path / "again", nbits=2, pool_factor=3)


def test_the_index_command_takes_a_pool_factor(corpus, tmp_path, tiny_bert_dir, capsys):
    from latesearch.cli.main import main

    fast = ["--quiet", "--no-ann", "--nbits", "none", "--model", str(tiny_bert_dir)]
    code = main(["index", str(corpus), str(tmp_path / "idx"), *fast, "--pool-factor", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "text tokens" in out
    store = IndexStore.open(tmp_path / "idx")
    assert store.manifest.config.codec.pool_factor == 2
    assert store.n_embeddings < store.summary.text_tokens
    code = main(["index", str(corpus), str(tmp_path / "bad"), *fast, "--pool-factor", "0"])
    assert code == 2 and "pool_factor" in capsys.readouterr().err
