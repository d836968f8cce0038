"""Stored token norms: compressed chunks keep each token's ||centroid + residual|| in one
byte, so that scoring from the codes need not decode the residuals to divide by it.
Chunks coded before norms were stored (tests/fixtures/index_v0) keep working: their
norms are computed when read, an update keeps them without, and new chunks get them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from latesearch import Index
from latesearch.compressed.codec import NORM_STEP, dequantize_norms
from latesearch.search.engine.lut_scoring import lut_scores
from latesearch.search.engine.residual_scoring import exact_scores
from latesearch.search.timing import SearchTimings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "index_v0"
QUERIES = ["document data cat", "search token drug"]


def lut_equals_decompress(index: Index) -> None:
    store, docs = index.store, np.arange(index.store.n_docs)
    for query in QUERIES:
        Q, mask = index.model.encode_queries([query], return_mask=True)
        real = Q[0][mask[0]].float()
        scores = (torch.from_numpy(store.codec.centroids32) @ real.T).numpy()
        got = lut_scores(store, Q, mask, docs, scores, timings=SearchTimings())
        want = exact_scores(store, Q, mask, docs, similarity="cosine", timings=SearchTimings(),
                            source="residual")  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * real.shape[0])


def test_new_chunks_store_norms_within_a_step_of_the_computed_ones(tmp_path, tiny_colbert,
                                                                   corpus):  # fmt: skip
    index = Index.build(corpus, tmp_path / "index", tiny_colbert, progress=False, nbits=2,
                        keep_full=False, chunk_size=15, n_centroids=8)  # fmt: skip
    store = index.store
    assert all(c.norms and c.norms_sha256 for c in store.chunks)
    docs = np.arange(store.n_docs)
    codes, _ = store.vectors.codes(docs)
    computed = store.codec.norms(codes, store.vectors.residuals(docs))
    order = docs[::-1]  # documents not in index order
    coded_codes, coded_packed, _ = store.vectors.coded(order)
    np.testing.assert_array_equal(coded_codes, store.vectors.codes(order)[0])
    np.testing.assert_array_equal(coded_packed, store.vectors.residuals(order))
    stored = store.vectors.coded(docs)[2]
    assert np.abs(stored - computed).max() <= NORM_STEP / 2 + 1e-6
    lut_equals_decompress(index)
    index.verify()


def test_chunks_coded_before_stored_norms_keep_working_through_updates(tmp_path):
    folder = tmp_path / "index_v0"
    shutil.copytree(FIXTURE, folder)
    index = Index.load(folder / "compressed_nofull", folder / "model")
    assert not any(c.norms for c in index.store.chunks)
    docs = np.arange(index.store.n_docs)
    codes, _ = index.store.vectors.codes(docs)
    computed = index.store.codec.norms(codes, index.store.vectors.residuals(docs))
    np.testing.assert_array_equal(index.store.vectors.coded(docs)[2], computed)
    lut_equals_decompress(index)

    added = tmp_path / "more.jsonl"
    added.write_text('{"_id": "new-1", "title": "t", "text": "cat search data drug"}\n'
                     '{"_id": "new-2", "title": "", "text": "token passage house"}\n')  # fmt: skip
    index.add(added, progress=False)
    index.delete(["d1"])  # rewrites a chunk coded without norms
    chunks = index.store.chunks
    assert chunks[-1].norms and not chunks[0].norms  # the new chunk has them, old ones not
    stored = index.store.vectors.norms_flat()[-1]
    assert stored is not None
    np.testing.assert_array_equal(
        dequantize_norms(np.asarray(stored)),
        index.store.vectors.coded(np.arange(chunks[-1].first_doc, index.store.n_docs))[2],
    )
    lut_equals_decompress(index)
    index.verify()
