"""Token-level ANN candidate generation: planted queries, save/load, flat fallback, chunking."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

import latesearch.indexing.components.ann as ann
from latesearch.errors import ConfigError, InputError, LatesearchError
from latesearch.indexing.components.ann import ANNConfig, TokenANNIndex

N_DOCS, DOC_LEN, DIM = 200, 20, 32
CONFIG = ANNConfig(flat_below=624, k_prime=16, nprobe=8)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Tokens drawn around 50 shared topic centres, so documents overlap."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, DIM))
    topics = rng.integers(0, 50, N_DOCS * DOC_LEN)
    emb = centres[topics] + 0.4 * rng.standard_normal((N_DOCS * DOC_LEN, DIM))
    return emb.astype(np.float16), np.repeat(np.arange(N_DOCS, dtype=np.int32), DOC_LEN)


@pytest.fixture(scope="module")
def index(data) -> TokenANNIndex:
    return TokenANNIndex.build(*data, CONFIG)


def planted_queries(emb: np.ndarray, docs: list[int]) -> np.ndarray:
    """(nq, 8, DIM): 8 token vectors of each source doc, slightly perturbed."""
    rng = np.random.default_rng(1)
    q = np.stack([emb[d * DOC_LEN : d * DOC_LEN + 8].astype(np.float32) for d in docs])
    return q + 0.02 * rng.standard_normal(q.shape).astype(np.float32)


def test_candidates_contain_the_planted_doc(index, data):
    assert index.kind == "ivfpq" and index.manifest["n_embeddings"] == N_DOCS * DOC_LEN
    sources = [3, 77, 150, 199]
    found = index.candidates(planted_queries(data[0], sources))
    assert len(found) == len(sources)
    for source, docs in zip(sources, found, strict=True):
        assert source in docs
        assert docs.dtype == np.int32 and np.all(np.diff(docs) > 0)  # sorted, unique
        assert len(docs) <= 8 * CONFIG.k_prime


def test_single_query_and_mask(index, data):
    q = planted_queries(data[0], [42, 43])
    (alone,) = index.candidates(q[0])
    assert 42 in alone
    masked = index.candidates(q, q_mask=np.array([[True] * 8, [False] * 8]))
    assert 42 in masked[0] and len(masked[1]) == 0
    more = index.candidates(q[:1], k_prime=200, nprobe=64)[0]
    assert set(alone) <= set(more)
    with pytest.raises(InputError, match="Q"):
        index.candidates(np.zeros((2, 8, DIM + 1), np.float32))


def test_save_load_round_trip(index, data, tmp_path):
    index.save(tmp_path / "ann")
    q = planted_queries(data[0], [5, 6, 7])
    for mmap in (True, False):
        loaded = TokenANNIndex.load(tmp_path / "ann", mmap=mmap)
        assert loaded.config == index.config and loaded.manifest == index.manifest
        for a, b in zip(loaded.candidates(q), index.candidates(q), strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(LatesearchError, match="mmap=False"):
        TokenANNIndex.load(tmp_path / "ann").add(data[0][:5], data[1][:5])


def test_flat_fallback_for_tiny_data(data, tmp_path):
    emb, owners = data[0][:300], data[1][:300]
    flat = TokenANNIndex.build(emb, owners, ANNConfig(k_prime=5))
    assert flat.kind == "flat" and isinstance(flat.index, faiss.IndexFlat)
    assert 4 in flat.candidates(planted_queries(emb, [4]))[0]
    flat.save(tmp_path / "flat")
    loaded = TokenANNIndex.load(tmp_path / "flat")
    assert loaded.manifest["kind"] == "flat" and len(loaded) == 300


def test_add_appends_and_continues_ids(data):
    emb, owners = data
    half = len(emb) // 2
    grown = TokenANNIndex.build(emb[:half], owners[:half], CONFIG)
    grown.add(emb[half:], owners[half:])
    assert len(grown) == len(emb) and len(grown.token_to_doc) == len(emb)
    assert 180 in grown.candidates(planted_queries(emb, [180]))[0]


def test_chunked_memmap_float16_matches_in_memory(data, tmp_path):
    emb, owners = data
    path = tmp_path / "emb.f16"
    mm = np.memmap(path, dtype=np.float16, mode="w+", shape=emb.shape)
    mm[:] = emb
    mm.flush()
    mm = np.memmap(path, dtype=np.float16, mode="r", shape=emb.shape)
    chunked = TokenANNIndex.build(mm, owners, CONFIG, chunk_rows=999)
    whole = TokenANNIndex.build(np.asarray(emb, dtype=np.float32), owners, CONFIG)
    assert np.array_equal(faiss.serialize_index(chunked.index), faiss.serialize_index(whole.index))
    np.testing.assert_array_equal(chunked.token_to_doc, whole.token_to_doc)


def test_gpu_code_path_matches_cpu(data, index, monkeypatch):
    """The GPU route (k-means via clustering_index, preassigned adds), run with CPU stand-ins."""
    monkeypatch.setattr(ann, "_use_gpu", lambda config: True)
    monkeypatch.setattr(ann, "_to_gpu", lambda flat: flat)
    routed = TokenANNIndex.build(*data, CONFIG, chunk_rows=1000)
    assert np.array_equal(faiss.serialize_index(routed.index), faiss.serialize_index(index.index))


def test_gpu_search_path_matches_cpu(data, index, monkeypatch):
    """Searching a (stand-in) GPU copy: nprobe set through the GPU parameter space."""
    q = planted_queries(data[0], [10, 11, 12])
    expected = index.candidates(q, nprobe=3)
    gpu = TokenANNIndex(faiss.clone_index(index.index), index.token_to_doc, CONFIG,
                        dict(index.manifest))  # fmt: skip
    monkeypatch.setattr(ann, "_use_gpu", lambda config: True)
    monkeypatch.setattr(ann, "_to_gpu", faiss.clone_index)
    monkeypatch.setattr(ann.faiss, "GpuParameterSpace", faiss.ParameterSpace, raising=False)
    assert gpu.on_gpu and not index.on_gpu
    for a, b in zip(gpu.candidates(q, nprobe=3), expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert faiss.extract_index_ivf(gpu._search_index()).nprobe == 3
    with pytest.raises(InputError, match="at most 2048"):
        gpu.candidates(q, k_prime=3000)


def test_bad_search_parameters(index, data):
    q = planted_queries(data[0], [1])
    for bad in ({"k_prime": 0}, {"nprobe": 0}, {"nprobe": 2.0}, {"k_prime": True}):
        with pytest.raises(InputError, match=next(iter(bad))):
            index.candidates(q, **bad)


def test_auto_parameters():
    config = ANNConfig()
    assert config.partitions_for(1_000_000) == 4096
    assert config.partitions_for(10_000) == 256 and config.partitions_for(700) == 16
    assert config.partitions_for(10**12) == 65536
    assert config.subvectors_for(128) == 16 and config.subvectors_for(96) == 12
    # k' ~ n / 4096 as a power of two in [128, 1024] (1024 = the paper's), at most n
    assert config.k_prime_for(10**9) == 1024 and config.k_prime_for(4096 * 1024) == 1024
    assert config.k_prime_for(815_632) == 128 and config.k_prime_for(4096 * 300) == 256
    assert config.k_prime_for(10_000) == 128 and config.k_prime_for(50) == 50
    assert ANNConfig(k_prime=7).k_prime_for(10**9) == 7
    assert config.train_size_for(10**9, 4096) == 64 * 4096
    assert config.train_size_for(5000, 16) == 5000


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"n_partitions": 0}, "n_partitions"),
        ({"nprobe": 0}, "nprobe"),
        ({"k_prime": 2.5}, "k_prime"),
        ({"metric": "dot"}, "metric"),
        ({"use_gpu": "maybe"}, "use_gpu"),
        ({"use_gpu": 1}, "use_gpu"),
        ({"flat_below": 10}, "flat_below"),
        ({"seed": -1}, "seed"),
    ],
)
def test_config_rejects_bad_values(changes, field):
    with pytest.raises(ConfigError, match=field):
        ANNConfig(**changes)


def test_config_json_and_build_time_errors(data, tmp_path):
    config = ANNConfig(n_partitions=32, k_prime=64, metric="l2", use_gpu=False)
    assert ANNConfig.load(config.save(tmp_path / "c.json")) == config
    (tmp_path / "bad.json").write_text(json.dumps({"nprobe": 4, "partitions": 8}))
    with pytest.raises(ConfigError, match="partitions"):
        ANNConfig.load(tmp_path / "bad.json")
    emb, owners = data
    with pytest.raises(ConfigError, match="pq_subvectors"):
        TokenANNIndex.build(emb, owners, ANNConfig(flat_below=624, pq_subvectors=5))
    with pytest.raises(InputError, match="token_to_doc"):
        TokenANNIndex.build(emb, owners[:-1], CONFIG)
