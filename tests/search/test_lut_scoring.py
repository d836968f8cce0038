"""Stage 5 from lookup tables: the same scores as decompressing the residuals (to float
rounding), on every nbits, and the same engine results as the decompressing path.

Tolerance: both paths sum the same float32 products of one query and one token (centroid
part, residual part, norm) in different orders; with unit vectors the sums lie in [-1, 1]
and their rounding differs by a few 1e-7, so 1e-5 leaves a margin while the renormalization
the tables must reproduce moves scores by 1e-2 (checked below)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from latesearch import Index
from latesearch.compressed.codec import ResidualCodec, dequantize_norms
from latesearch.search.engine import EngineParams
from latesearch.search.engine.lut_scoring import applies, lut_scores, token_scores
from latesearch.search.engine.residual_scoring import exact_scores
from latesearch.search.timing import SearchTimings

ROUNDING = 1e-5
QUERIES = ["late interaction search", "protein cell gene", "music of the city", "river data"]


def random_codec(nbits: int, seed: int, dim: int = 32, n: int = 600, n_centroids: int = 16):
    """A codec fitted on random unit vectors, with those vectors' codes and packed residuals."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((n_centroids, dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    x = centroids[rng.integers(0, n_centroids, n)] + 0.3 * rng.standard_normal((n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    codes = np.argmax(x @ centroids.T, axis=1)
    codec = ResidualCodec.fit(x, centroids.astype(np.float16), codes, nbits)
    return codec, codes, codec.compress(x, codes), rng


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_token_scores_equal_decompressed_dot_products(nbits):
    codec, codes, packed, rng = random_codec(nbits, seed=nbits)
    q = rng.standard_normal((7, codec.dim)).astype(np.float32)
    qT = torch.from_numpy(np.ascontiguousarray((q / np.linalg.norm(q, axis=1)[:, None]).T))
    centroid_scores = torch.from_numpy(codec.centroids32) @ qT
    got = token_scores(codec, qT, codes, packed, codec.norms(codes, packed),
                       centroid_scores).numpy()  # fmt: skip
    want = (torch.from_numpy(codec.decompress(codes, packed)) @ qT).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=ROUNDING)
    stored = codec.stored_norms(codes, packed)  # one byte a token, as chunks store them
    got = token_scores(codec, qT, codes, packed, dequantize_norms(stored),
                       centroid_scores).numpy()  # fmt: skip
    want_stored = (torch.from_numpy(codec.decompress(codes, packed, stored)) @ qT).numpy()
    np.testing.assert_allclose(got, want_stored, rtol=0, atol=ROUNDING)
    assert np.abs(want_stored - want).max() <= 0.003  # a byte's step moves scores by <= 0.2%
    unnormalized = (codec.decode_residuals(packed) + codec.centroids32[codes]) @ qT.numpy()
    assert np.abs(unnormalized - want).max() > 1e-2  # the norms matter


@pytest.fixture(scope="module", params=[1, 2, 4])
def compressed(request, tmp_path_factory, tiny_colbert, brute):
    """A compressed index without the fp16 vectors, at each nbits."""
    folder = tmp_path_factory.mktemp(f"lut{request.param}")
    corpus = brute.write_collection(folder / "corpus.jsonl", n=120, seed=request.param)
    return Index.build(corpus, folder / "index", tiny_colbert, progress=False,
                       nbits=request.param, keep_full=False, chunk_size=40,
                       n_centroids=16)  # fmt: skip


def encode(index: Index, query: str) -> tuple[torch.Tensor, torch.Tensor]:
    return index.model.encode_queries([query], return_mask=True)


def test_lut_scores_equal_decompressed_maxsim(compressed):
    store = compressed.store
    docs = np.arange(0, store.n_docs, 3)
    for query in QUERIES:
        Q, mask = encode(compressed, query)
        real = Q[0][mask[0]].float()
        centroid_scores = (torch.from_numpy(store.codec.centroids32) @ real.T).numpy()
        got = lut_scores(store, Q, mask, docs, centroid_scores, timings=SearchTimings())
        want = exact_scores(store, Q, mask, docs, similarity="cosine", timings=SearchTimings(),
                            source="residual")  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=0, atol=ROUNDING * real.shape[0])


def test_lut_scores_of_no_documents_are_empty(compressed):
    Q, mask = encode(compressed, QUERIES[0])
    scores = np.zeros((compressed.store.codec.n_centroids, int(mask.sum())), np.float32)
    empty = np.zeros(0, dtype=np.int64)
    assert lut_scores(compressed.store, Q, mask, empty, scores, timings=SearchTimings()).size == 0


@pytest.mark.parametrize("k", [3, 10])
def test_engine_results_equal_the_decompressing_path(compressed, k):
    engine = compressed.searcher.engine
    wide = EngineParams(ncells=4, centroid_score_threshold=0.0, ndocs=40)
    for query in QUERIES:
        Q, mask = encode(compressed, query)
        ranked = {}
        for lookup in (True, False):
            timings = SearchTimings()
            params = dataclasses.replace(wide, lookup_tables=lookup)
            ranked[lookup] = engine.search(Q, mask, k, params, timings)[0]
            assert timings.n_candidates == wide.exact_survivors(k)
        (scores, docs), (old_scores, old_docs) = ranked[True], ranked[False]
        np.testing.assert_array_equal(docs, old_docs)
        np.testing.assert_allclose(scores, old_scores, rtol=0, atol=ROUNDING * Q.shape[1])


def test_lookup_tables_apply_to_residuals_with_cosine_on_cpu(compressed):
    store = compressed.store
    Q, _ = encode(compressed, QUERIES[0])
    assert applies(store, Q, "cosine", "auto") and applies(store, Q, "cosine", "residual")
    assert not applies(store, Q, "l2", "auto")


def test_an_index_keeping_its_fp16_vectors_uses_them_unless_asked_for_residuals(
    tmp_path, tiny_colbert, brute
):
    corpus = brute.write_collection(tmp_path / "corpus.jsonl", n=30, seed=9)
    index = Index.build(corpus, tmp_path / "index", tiny_colbert, progress=False,
                        keep_full=True, n_centroids=8)  # fmt: skip
    Q, _ = encode(index, QUERIES[0])
    assert not applies(index.store, Q, "cosine", "auto")
    assert applies(index.store, Q, "cosine", "residual")


def test_lookup_tables_must_be_a_boolean():
    from latesearch.errors import InputError

    with pytest.raises(InputError, match="lookup_tables"):
        EngineParams(ncells=1, centroid_score_threshold=0.5, ndocs=8, lookup_tables="yes")
