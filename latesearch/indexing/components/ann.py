"""End-to-end candidate generation (paper Section 3.6): faiss IVFPQ over all document tokens.

Every document token embedding is one faiss vector (id = its row); `token_to_doc[row]` is its
document index. A query's candidates are the documents owning any of the `k'` nearest
neighbours of any of its vectors. Model-agnostic: only arrays go in and out.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from latesearch._configio import JsonConfig, check_positive
from latesearch.compressed.arrays import READ_ERRORS, unit_rows
from latesearch.errors import ConfigError, IndexCorruptError, InputError, LatesearchError
from latesearch.indexing._store import (
    atomic_folder,
    check_number,
    read_json,
    write_json,
)

METRICS = ("cosine", "l2")
MIN_POINTS_PER_PARTITION = 39  # faiss k-means warns below this many points per centroid
PQ_BITS = 8
ADD_CHUNK = 262_144  # rows converted to float32 at a time
FORMAT = "latesearch-ann/1"
CONFIG_FILE, MANIFEST_FILE = "config.json", "manifest.json"
INDEX_FILE, TOKEN_TO_DOC_FILE = "index.faiss", "token_to_doc.npy"
K_PRIME_DIVISOR, K_PRIME_RANGE = 4096, (128, 1024)  # default k' = n / 4096 within this range
GPU_MAX_K = 2048  # faiss-gpu's largest k per search


@dataclass(frozen=True)
class ANNConfig(JsonConfig):
    """IVFPQ settings; `None` means "auto from the data" (see the `*_for` methods).

    Collections with fewer than `flat_below` embeddings get an exact `IndexFlat` instead.
    """

    n_partitions: int | None = None  # P
    pq_subvectors: int | None = None  # s, 8 bits each; must divide dim
    nprobe: int = 10  # p
    k_prime: int | None = None  # k' neighbours per query vector
    train_sample: int | None = None
    metric: str = "cosine"
    use_gpu: bool | str = "auto"
    flat_below: int = MIN_POINTS_PER_PARTITION * 2**PQ_BITS
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_partitions", "pq_subvectors", "k_prime", "train_sample", "nprobe"):
            if getattr(self, name) is not None:
                check_number("ANNConfig", name, getattr(self, name), minimum=1, integer=True)
        check_number("ANNConfig", "seed", self.seed, minimum=0, integer=True)
        smallest = MIN_POINTS_PER_PARTITION * 16  # 16 partitions at the least
        check_number("ANNConfig", "flat_below", self.flat_below, minimum=smallest, integer=True)
        if self.metric not in METRICS:
            _bad("metric", self.metric, f"one of {METRICS}")
        if not (self.use_gpu is True or self.use_gpu is False or self.use_gpu == "auto"):
            _bad("use_gpu", self.use_gpu, "true, false or 'auto'")

    def kind_for(self, n: int) -> str:
        """'flat' (exact) below `flat_below` embeddings, 'ivfpq' from there on."""
        return "flat" if n < self.flat_below else "ivfpq"

    def partitions_for(self, n: int) -> int:
        """P: the power of two nearest 4*sqrt(n), clamped to [16, 65536] and to n/39."""
        if self.n_partitions is not None:
            return self.n_partitions
        p = 2 ** round(math.log2(4 * math.sqrt(max(n, 1))))
        return max(16, min(p, 65536, 2 ** int(math.log2(max(n // MIN_POINTS_PER_PARTITION, 1)))))

    def subvectors_for(self, dim: int) -> int:
        """s: the paper's ratio (16 one-byte codes for dim 128), i.e. dim/8 rounded to a
        divisor of dim."""
        s = self.pq_subvectors or max(1, dim // 8)
        if dim % s:
            if self.pq_subvectors is not None:
                _bad("pq_subvectors", s, f"a divisor of the embedding dim ({dim})")
            s = max(d for d in range(1, s + 1) if dim % d == 0)
        return s

    def k_prime_for(self, n: int) -> int:
        """k': about n/4096 of the `n` embeddings per query vector, as a power of two in
        [128, 1024], never more than n. 1024 (the paper's, and colbert-ai's faiss_depth)
        from 4M embeddings up; smaller collections need fewer neighbours per query vector
        for the same top-k, and every extra neighbour can add a candidate document to
        score. The floor keeps the e2e top-10 within 0.98 of exhaustive MaxSim on SciFact
        and Vaswani (0.8M and 0.6M embeddings) even with the untrained default model; 64
        gave 0.98 and 0.956."""
        if self.k_prime is not None:
            return max(1, min(self.k_prime, n))
        scaled = 2 ** int(math.log2(max(n // K_PRIME_DIVISOR, 1)))
        return max(1, min(max(K_PRIME_RANGE[0], min(scaled, K_PRIME_RANGE[1])), n))

    def train_size_for(self, n: int, partitions: int) -> int:
        """Training sample: 64 points per partition (faiss wants 39 to 256), at least 39*256
        for the PQ codebooks, at most 2**21 rows (1 GiB at dim 128), never more than n."""
        if self.train_sample is not None:
            return min(n, self.train_sample)
        return min(n, max(MIN_POINTS_PER_PARTITION * 256, min(64 * partitions, 2**21)))


def _bad(name: str, value: Any, expected: str) -> None:
    raise ConfigError(f"ANNConfig.{name} must be {expected}, got {value!r}")


class TokenANNIndex:
    """A faiss index over token embeddings plus `token_to_doc` (faiss id -> doc index)."""

    def __init__(
        self,
        index: faiss.Index,
        token_to_doc: np.ndarray,
        config: ANNConfig,
        manifest: dict[str, Any],
        *,
        read_only: bool = False,
    ) -> None:
        self.index, self.token_to_doc, self.config = index, token_to_doc, config
        self.manifest, self.read_only = manifest, read_only
        self._searched: faiss.Index | None = None  # `index`, or its GPU copy

    @property
    def on_gpu(self) -> bool:
        """Whether searches run on a faiss GPU copy of the index (faiss-gpu with a GPU,
        `use_gpu` "auto" or true); the CPU index otherwise."""
        return self._search_index() is not self.index

    def _search_index(self) -> faiss.Index:
        if self._searched is None:
            self._searched = _to_gpu(self.index) if _use_gpu(self.config) else self.index
        return self._searched

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def kind(self) -> str:
        """'ivfpq' or 'flat' (exact search, for tiny collections)."""
        return str(self.manifest["kind"])

    @classmethod
    def build(
        cls,
        embeddings: Any,
        token_to_doc: Any,
        config: ANNConfig | None = None,
        *,
        chunk_rows: int = ADD_CHUNK,
    ) -> TokenANNIndex:
        """Train on a seeded random sample, then add `embeddings` (N, dim; float16/32, may be
        a memmap) in chunks of `chunk_rows` rows converted to float32."""
        config = config or ANNConfig()
        n, dim = _check_embeddings(embeddings)
        _check_token_to_doc(token_to_doc, n)  # fail before training, not after
        if n == 0:
            raise InputError("no embeddings to index", field="embeddings")
        metric = faiss.METRIC_INNER_PRODUCT if config.metric == "cosine" else faiss.METRIC_L2
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "dim": dim,
            "metric": config.metric,
            "faiss_version": faiss.__version__,
        }
        if config.kind_for(n) == "flat":
            index = faiss.IndexFlat(dim, metric)
            manifest.update(kind="flat", n_partitions=None, pq_subvectors=None, trained_on=0)
        else:
            p, s = config.partitions_for(n), config.subvectors_for(dim)
            if n < MIN_POINTS_PER_PARTITION * p:
                raise InputError(
                    f"{n} embeddings are too few to train {p} partitions "
                    f"(need {MIN_POINTS_PER_PARTITION} each)",
                    field="n_partitions",
                )
            index = faiss.IndexIVFPQ(faiss.IndexFlat(dim, metric), dim, p, s, PQ_BITS, metric)
            index.cp.seed, index.pq.cp.seed = config.seed, config.seed + 1
            size = config.train_size_for(n, p)
            if size < max(p, 2**PQ_BITS):
                _bad("train_sample", size, f">= max(n_partitions, 256) = {max(p, 2**PQ_BITS)}")
            sample = _sample(embeddings, size, config)
            _train(index, sample, metric, _use_gpu(config))
            manifest.update(kind="ivfpq", n_partitions=p, pq_subvectors=s, trained_on=len(sample))
        manifest["built_for"] = n  # embeddings when trained (updates compare against it)
        built = cls(index, np.empty(0, np.int32), config, manifest)
        built.add(embeddings, token_to_doc, chunk_rows=chunk_rows)
        return built

    def add(self, embeddings: Any, token_to_doc: Any, *, chunk_rows: int = ADD_CHUNK) -> None:
        """Append embeddings (their faiss ids continue from `len(self)`); no retraining."""
        if self.read_only:
            raise LatesearchError(
                "this index was loaded memory-mapped (read-only); "
                "load it with mmap=False to add to it"
            )
        n, dim = _check_embeddings(embeddings, self.dim)
        owners = _check_token_to_doc(token_to_doc, n)
        gpu = isinstance(self.index, faiss.IndexIVF) and _use_gpu(self.config)
        assigner = _gpu_assigner(self.index) if gpu else None
        for start in range(0, n, chunk_rows):
            x = _as_float32(embeddings[start : start + chunk_rows], self.config)
            if assigner is None:
                self.index.add(x)
            else:  # coarse assignment on the GPU, PQ encoding into the CPU index
                from faiss.contrib.ivf_tools import add_preassigned

                _, assign = assigner.search(x, 1)
                ids = np.arange(self.index.ntotal, self.index.ntotal + len(x), dtype=np.int64)
                add_preassigned(self.index, x, np.ascontiguousarray(assign[:, 0]), ids)
        self.token_to_doc = np.concatenate([np.asarray(self.token_to_doc), owners])
        self._searched = None  # a GPU copy would be stale
        self.manifest["n_embeddings"] = int(self.index.ntotal)

    def emptied(self) -> TokenANNIndex:
        """A copy with the same training (coarse centroids, PQ codebooks) and no vectors, to
        re-add embeddings to without training again."""
        index = faiss.clone_index(self.index)
        index.reset()
        manifest = {**self.manifest, "n_embeddings": 0}
        return TokenANNIndex(index, np.empty(0, np.int32), self.config, manifest)

    def candidates(
        self,
        Q: Any,
        k_prime: int | None = None,
        nprobe: int | None = None,
        q_mask: Any = None,
    ) -> list[np.ndarray]:
        """Sorted unique document indices per query for `Q` (nq, Lq, dim) or (Lq, dim).

        All unmasked query vectors go to faiss in one call; `q_mask` (same leading shape,
        True = keep) skips padding vectors.
        """
        q = np.asarray(Q)
        single = q.ndim == 2
        q = q[None] if single else q
        if q.ndim != 3 or q.shape[2] != self.dim:
            raise InputError(
                f"Q must have shape (nq, Lq, {self.dim}) or (Lq, {self.dim}), got {np.shape(Q)}",
                field="Q",
            )
        nq, lq = q.shape[:2]
        x = q.reshape(nq * lq, self.dim)
        owner = np.repeat(np.arange(nq, dtype=np.int64), lq)
        if q_mask is not None:
            mask = np.asarray(q_mask, dtype=bool)
            if mask.shape != q.shape[:2] and not (single and mask.shape == (lq,)):
                raise InputError(
                    f"q_mask shape {mask.shape} does not match Q {np.shape(Q)}", field="q_mask"
                )
            x, owner = x[mask.reshape(-1)], owner[mask.reshape(-1)]
        for name, value in (("k_prime", k_prime), ("nprobe", nprobe)):
            if value is not None:
                check_positive(name, value)
        k = min(self.config.k_prime_for(len(self)) if k_prime is None else k_prime, len(self))
        if len(x) == 0 or k < 1:
            return [np.empty(0, np.int32) for _ in range(nq)]
        x = _as_float32(x, self.config)
        ids = self._search(x, k, nprobe or self.config.nprobe)
        hit = ids >= 0
        docs = np.asarray(self.token_to_doc[ids[hit]], dtype=np.int64)
        keys = np.unique(np.broadcast_to(owner[:, None], ids.shape)[hit] << 32 | docs)
        splits = np.searchsorted(keys >> 32, np.arange(1, nq))
        return np.split((keys & 0xFFFFFFFF).astype(np.int32), splits)

    def _search(self, x: np.ndarray, k: int, nprobe: int) -> np.ndarray:
        """faiss ids (len(x), k) of the `k` nearest vectors, -1 where fewer exist."""
        searched = self._search_index()
        probe = min(nprobe, self.index.nlist) if isinstance(self.index, faiss.IndexIVF) else 0
        if searched is self.index:
            params = faiss.SearchParametersIVF(nprobe=probe) if probe else None
            return self.index.search(x, k, params=params)[1]
        if k > GPU_MAX_K:
            msg = f"k_prime must be at most {GPU_MAX_K} on faiss-gpu, got {k}"
            raise InputError(msg, field="k_prime")
        if probe:  # GPU copies (also replicated over several GPUs) take nprobe this way
            faiss.GpuParameterSpace().set_index_parameter(searched, "nprobe", probe)
        return searched.search(x, k)[1]

    def save(self, folder: str | os.PathLike) -> Path:
        """Write config, manifest, faiss index and token_to_doc atomically into `folder`."""
        with atomic_folder(folder, marker=MANIFEST_FILE) as tmp:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            np.save(tmp / TOKEN_TO_DOC_FILE, np.asarray(self.token_to_doc, dtype=np.int32))
            self.config.save(tmp / CONFIG_FILE)
            write_json(tmp / MANIFEST_FILE, self.manifest)
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, mmap: bool = True) -> TokenANNIndex:
        """Open a saved index; with `mmap` the faiss data and token_to_doc stay on disk
        (read-only: `add` then needs `mmap=False`)."""
        folder = Path(folder)
        manifest = read_json(folder / MANIFEST_FILE)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise IndexCorruptError(f"{folder / MANIFEST_FILE}: not a {FORMAT} manifest")
        config = ANNConfig.load(folder / CONFIG_FILE)
        flags = 0
        if mmap:
            flags = (
                faiss.IO_FLAG_MMAP
                if manifest.get("kind") == "ivfpq"
                else getattr(faiss, "IO_FLAG_MMAP_IFC", 0)
            )
        try:
            index = faiss.read_index(str(folder / INDEX_FILE), flags)
            owners = np.load(folder / TOKEN_TO_DOC_FILE, mmap_mode="r" if mmap else None)
        except (RuntimeError, *READ_ERRORS) as err:
            raise IndexCorruptError(f"{folder}: cannot read the ANN index ({err})") from None
        if not (index.ntotal == len(owners) == manifest.get("n_embeddings")):
            raise IndexCorruptError(
                f"{folder}: faiss has {index.ntotal} vectors, token_to_doc "
                f"{len(owners)}, manifest {manifest.get('n_embeddings')}"
            )
        return cls(index, owners, config, manifest, read_only=mmap)


def _check_embeddings(embeddings: Any, dim: int | None = None) -> tuple[int, int]:
    shape = getattr(embeddings, "shape", None)
    if shape is None or len(shape) != 2 or (dim is not None and shape[1] != dim):
        want = f"(N, {dim})" if dim else "(N, dim)"
        raise InputError(
            f"embeddings must be an array of shape {want}, got {shape}", field="embeddings"
        )
    if np.dtype(embeddings.dtype).kind != "f":
        raise InputError(
            f"embeddings must be float16/float32, got {embeddings.dtype}", field="embeddings"
        )
    return int(shape[0]), int(shape[1])


def _check_token_to_doc(token_to_doc: Any, n: int) -> np.ndarray:
    owners = np.asarray(token_to_doc)
    if owners.shape != (n,) or owners.dtype.kind not in "iu":
        raise InputError(
            f"token_to_doc must be {n} integers, got shape {owners.shape} dtype {owners.dtype}",
            field="token_to_doc",
        )
    if n and (owners.min() < 0 or owners.max() > np.iinfo(np.int32).max):
        raise InputError("token_to_doc values must be in [0, 2**31)", field="token_to_doc")
    return owners.astype(np.int32, copy=False)


def _as_float32(x: Any, config: ANNConfig) -> np.ndarray:
    out = np.ascontiguousarray(x, dtype=np.float32)
    return np.ascontiguousarray(unit_rows(out) if config.metric == "cosine" else out)


def _sample(embeddings: Any, size: int, config: ANNConfig) -> np.ndarray:
    n = embeddings.shape[0]
    rows = np.sort(np.random.default_rng(config.seed).choice(n, size=size, replace=False))
    parts = [
        _as_float32(embeddings[rows[i : i + ADD_CHUNK]], config) for i in range(0, size, ADD_CHUNK)
    ]
    return np.concatenate(parts)


def _use_gpu(config: ANNConfig) -> bool:
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if config.use_gpu is True and gpus == 0:
        raise ConfigError("ANNConfig.use_gpu is true but faiss sees no GPU (faiss-cpu?)")
    return bool(config.use_gpu) and gpus > 0


def _to_gpu(index: faiss.Index) -> faiss.Index:
    return faiss.index_cpu_to_all_gpus(index)


def _train(index: faiss.IndexIVFPQ, sample: np.ndarray, metric: int, gpu: bool) -> None:
    """Train the IVFPQ index on CPU, or with its k-means assignments on the GPU(s)."""
    if not gpu:
        index.train(sample)
        return
    clustering = _to_gpu(faiss.IndexFlat(index.d, metric))
    index.clustering_index = clustering
    try:
        index.train(sample)
    finally:
        index.clustering_index = None


def _gpu_assigner(index: faiss.IndexIVF) -> faiss.Index:
    """A GPU copy of the coarse quantizer, for assigning vectors to partitions."""
    flat = faiss.IndexFlat(index.d, index.metric_type)
    flat.add(index.quantizer.reconstruct_n(0, index.nlist))
    return _to_gpu(flat)
