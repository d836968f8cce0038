"""The residual codec: packing, bucket statistics, round-trip error bounds per nbits."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch.compressed.centroids import Assigner, n_centroids_for, train_centroids
from latesearch.compressed.codec import ResidualCodec, pack, unpack
from latesearch.errors import ConfigError, IndexCorruptError


def unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = unit(rng, 4000)
    centroids = train_centroids(x, 64, niter=4, seed=0)
    codes = Assigner(centroids)(x)
    return x, centroids, codes


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_pack_unpack_round_trip(nbits):
    rng = np.random.default_rng(nbits)
    buckets = rng.integers(0, 2**nbits, size=(7, 32), dtype=np.uint8)
    packed = pack(buckets, nbits)
    assert packed.shape == (7, 32 * nbits // 8) and packed.dtype == np.uint8
    assert np.array_equal(unpack(packed, nbits), buckets)


def test_first_dimension_is_the_most_significant_bits():
    buckets = np.array([[3, 0, 0, 1]], dtype=np.uint8)
    assert pack(buckets, 2).tolist() == [[0b11000001]]


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_decoded_residuals_stay_in_their_bucket(data, nbits):
    x, centroids, codes = data
    codec = ResidualCodec.fit(x, centroids, codes, nbits)
    assert np.all(np.diff(codec.cutoffs) > 0) and codec.weights.shape == (2**nbits,)
    residuals = x - codec.centroids32[codes]  # the stored (float16) centroids
    decoded = codec.decode_residuals(codec.compress(x, codes))
    # every value decodes to its own bucket's weight, which lies inside that bucket
    assert np.array_equal(codec.buckets(decoded), codec.buckets(residuals))
    edges = np.concatenate([[-np.inf], codec.cutoffs, [np.inf]])
    assert np.all((codec.weights >= edges[:-1]) & (codec.weights <= edges[1:]))


def test_more_bits_reconstruct_better(data):
    x, centroids, codes = data
    errors = {}
    for nbits in (1, 2, 4):
        codec = ResidualCodec.fit(x, centroids, codes, nbits)
        back = codec.decompress(codes, codec.compress(x, codes))
        assert np.allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-5)
        errors[nbits] = float(np.mean(1 - np.sum(back * x, axis=1)))
    assert errors[4] < errors[2] < errors[1] < 0.5
    assert errors[4] < 0.02  # 4 bits: cosine > 0.98 on average


def test_save_load_and_corruption(data, tmp_path):
    x, centroids, codes = data
    codec = ResidualCodec.fit(x, centroids, codes, 2)
    codec.save(tmp_path / "codec")
    again = ResidualCodec.load(tmp_path / "codec", verify=True)
    assert np.array_equal(again.centroids, codec.centroids)
    assert np.array_equal(again.weights, codec.weights) and again.nbits == 2
    path = tmp_path / "codec" / "bucket_weights.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexCorruptError, match="bucket_weights.npy"):
        ResidualCodec.load(tmp_path / "codec", verify=True)


def test_bad_nbits():
    with pytest.raises(ConfigError, match="nbits"):
        ResidualCodec(np.zeros((2, 8)), np.zeros(2), np.zeros(3), 3)


def test_centroid_count_and_assignment(data):
    assert n_centroids_for(1_000_000) == 8192  # 16 * sqrt(1M) = 16,000
    assert n_centroids_for(100_000_000) == 131072  # 160,000
    assert n_centroids_for(100) == 64  # never more than the tokens
    x, centroids, codes = data
    exact = np.argmax(x @ centroids.T, axis=1)
    assert np.array_equal(codes, exact)
    approximate = Assigner(centroids, "hnsw")(x)
    assert np.mean(approximate == exact) > 0.9
