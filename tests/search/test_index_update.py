"""Index.add / Index.delete: every search mode answers as over a fresh build of the same
documents; the ANN index is appended to or re-encoded without retraining when it can be."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from latesearch import Index
from latesearch.indexing.components.ann import ANNConfig
from latesearch.indexing.components.bm25 import BM25Config

QUERIES = ["protein cell gene", "late interaction search", "music river city"]
IVF = ANNConfig(n_partitions=8, flat_below=624, train_sample=600)


def split(path, tmp_path, n_base: int):
    """The first `n_base` documents of a JSONL collection and the rest, as two files."""
    rows = path.read_text().splitlines(keepends=True)
    (tmp_path / "base.jsonl").write_text("".join(rows[:n_base]))
    (tmp_path / "more.jsonl").write_text("".join(rows[n_base:]))
    return tmp_path / "base.jsonl", tmp_path / "more.jsonl"


def keep_only(path, out, drop):
    rows = path.read_text().splitlines(keepends=True)
    rows = [r for r in rows if json.loads(r)["_id"] not in drop]
    out.write_text("".join(rows))
    return out


def assert_same_answers(index, reference, modes=("exact", "rerank", "e2e"), **e2e):
    for query in QUERIES:
        for mode in modes:
            extra = e2e if mode == "e2e" else {}
            ours = index.search(query, k=15, mode=mode, **extra)
            theirs = reference.search(query, k=15, mode=mode, **extra)
            assert [h.doc_id for h in ours] == [h.doc_id for h in theirs], (query, mode)
            assert np.allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-4)


def centroids(index) -> np.ndarray:
    ivf = faiss.extract_index_ivf(index.searcher.ann.index)
    return ivf.quantizer.reconstruct_n(0, ivf.nlist)


def codebooks(index) -> np.ndarray:
    return faiss.vector_to_array(faiss.downcast_index(index.searcher.ann.index).pq.centroids)


def assert_ann_consistent(index):
    ann = index.searcher.ann
    assert len(ann) == index.store.n_embeddings
    assert np.array_equal(np.asarray(ann.token_to_doc), index.store.token_to_doc())


def test_add_and_delete_with_bm25_and_flat_ann(tmp_path, tiny_colbert, brute):
    full = brute.write_collection(tmp_path / "all.jsonl", n=50)
    base, more = split(full, tmp_path, 35)
    bm25 = BM25Config(k1=1.2, b=0.75)
    index = Index.build(base, tmp_path / "idx", tiny_colbert, bm25=True, bm25_config=bm25,
                        progress=False, precision=32, nbits=None)  # fmt: skip
    index.search(QUERIES[0], mode="rerank")  # components loaded before the update
    summary = index.add(more, progress=False)
    assert summary.added == 15 and len(index) == 50 and summary.components == ("ann", "bm25")
    reference = Index.build(full, tmp_path / "ref", tiny_colbert, bm25=True, bm25_config=bm25,
                            progress=False, precision=32, nbits=None)  # fmt: skip
    assert_same_answers(index, reference)
    assert index.searcher.bm25.config == bm25  # the index's BM25 settings are kept
    assert_ann_consistent(index)

    gone = ["d3", "d36", "d49"]
    assert index.delete(gone).deleted == 3
    reference = Index.build(keep_only(full, tmp_path / "kept.jsonl", gone), tmp_path / "ref2",
                            tiny_colbert, bm25=True, bm25_config=bm25, progress=False,
                            precision=32, nbits=None)  # fmt: skip
    assert_same_answers(index, reference)
    for mode in ("exact", "rerank", "e2e"):
        assert not set(gone) & {h.doc_id for h in index.search(QUERIES[1], k=50, mode=mode)}
    with pytest.raises(KeyError, match="d36"):
        index.rerank(QUERIES[0], ["d1", "d36"])
    reopened = Index.load(tmp_path / "idx", tiny_colbert)
    assert_same_answers(reopened, reference)


def test_ivfpq_is_appended_to_and_reencoded_without_training(tmp_path, tiny_colbert, brute):
    full = brute.write_collection(tmp_path / "all.jsonl", n=95, seed=1)
    base, more = split(full, tmp_path, 90)
    index = Index.build(base, tmp_path / "idx", tiny_colbert, ann_config=IVF, progress=False,
                        precision=32, nbits=None)  # fmt: skip
    trained = centroids(index)
    codes_before = codebooks(index)

    index.add(more, progress=False)
    assert index.searcher.ann.kind == "ivfpq"
    assert np.array_equal(centroids(index), trained)  # appended: no retraining
    assert_ann_consistent(index)
    exhaustive = {"nprobe": 8, "k_prime": 2000}
    reference = Index.build(full, tmp_path / "ref", tiny_colbert, ann_config=IVF,
                            progress=False, precision=32, nbits=None)  # fmt: skip
    assert_same_answers(index, reference, modes=("exact",))
    for query in QUERIES:  # every partition probed: e2e finds the exact top
        e2e = index.search(query, k=5, **exhaustive)
        assert [h.doc_id for h in e2e] == [h.doc_id for h in index.search(query, 5, "exact")]

    index.delete(["d0", "d92"])
    assert np.array_equal(centroids(index), trained)  # re-encoded with the same training
    assert np.array_equal(codebooks(index), codes_before)
    assert_ann_consistent(index)
    for query in QUERIES:
        e2e = index.search(query, k=5, **exhaustive)
        assert [h.doc_id for h in e2e] == [h.doc_id for h in index.search(query, 5, "exact")]


def test_ann_is_trained_again_when_its_kind_or_scale_changes(tmp_path, tiny_colbert, brute):
    full = brute.write_collection(tmp_path / "all.jsonl", n=200, seed=2)
    base, more = split(full, tmp_path, 30)
    config = ANNConfig(flat_below=624, train_sample=600)
    index = Index.build(base, tmp_path / "idx", tiny_colbert, ann_config=config, progress=False,
                        nbits=None)  # fmt: skip
    assert index.searcher.ann.kind == "flat"  # ~450 embeddings
    rows = more.read_text().splitlines(keepends=True)
    (tmp_path / "some.jsonl").write_text("".join(rows[:20]))
    (tmp_path / "rest.jsonl").write_text("".join(rows[20:]))
    index.add(tmp_path / "some.jsonl", progress=False)  # past flat_below: IVFPQ, trained
    ann = index.searcher.ann
    assert ann.kind == "ivfpq" and ann.manifest["built_for"] == index.store.n_embeddings
    first = centroids(index)
    index.add(tmp_path / "rest.jsonl", progress=False)  # > 4x its training size: retrained
    assert index.searcher.ann.manifest["built_for"] == index.store.n_embeddings
    assert centroids(index).shape != first.shape or not np.array_equal(centroids(index), first)
    assert_ann_consistent(index)
