"""`IndexConfig`: how an index is built (paper Section 3.4), saved with every index."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latesearch._atomic import write_json
from latesearch._configio import config_from_dict, read_json
from latesearch.errors import ConfigError

ON_ERROR = ("raise", "skip")
PRECISIONS = (16, 32)
COMPUTE_DTYPES = ("float16", "bfloat16")
NBITS = (1, 2, 4)
ASSIGNMENTS = ("auto", "exact", "tree", "hnsw")
DENSE_SOURCES = ("pooled", "backbone")
RAY_TRANSPORTS = ("object_store", "shared")


def default_workers() -> int:
    """Tokenizer threads: up to 4, never more than the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


@dataclass(frozen=True)
class IndexConfig:
    """Settings of an indexing run.

    Documents are read in groups of `group_size` (B), sorted by length when
    `length_bucketing`, and encoded in batches of `batch_size` (b) padded to each batch's
    longest document. Groups are cut into chunk files of `chunk_size` documents (default:
    one chunk per group); a chunk is the unit of `--resume`. So that an interrupted build
    loses little, a group is also cut short at `checkpoint_docs` documents and at about
    `checkpoint_seconds` of encoding (from the throughput measured so far): a build saves
    its work at least that often whatever `group_size` (None turns either limit off).

    `nbits` (1, 2 or 4) compresses every token to its centroid id plus its residual at
    that many bits per dimension (ColBERTv2), searched by the PLAID-style engine; None
    keeps the uncompressed store (`precision` 16 or 32 bits) and the paper's faiss IVFPQ
    end-to-end path. `keep_full` (the default, by the rule in docs/index-format.md) also
    keeps the uncompressed vectors on disk, memory-mapped, read only to re-score the
    engine's final candidates exactly; False keeps the compressed files alone (about 40
    bytes a token at 2 bits instead of about 300). It means nothing without compression.
    `n_centroids` (default: the power of two at or below 16 * sqrt(n_tokens)),
    `kmeans_niter`, `assignment` ("auto": exact below
    32,768 centroids, a two-level tree from there on; "exact"; "tree"; "hnsw") and
    `seed` set how the centroids are trained and assigned.

    `pool_factor` > 1 pools each document's token vectors before compression: Ward
    clustering of all but the first token into ceil((n - 1) / pool_factor) clusters, each
    stored as its members' re-normalized mean (`pooling.py`); 1 stores every token.

    `dense` also stores one pooled dense vector per document (fp16), searched by the
    "dense" and "fused" modes: "pooled" is the attention-masked mean of the ColBERT model's
    own last hidden states (free: the same forward pass); "backbone" is the mean-pooled
    sentence embedding of `dense_model` (a sentence-transformers folder; None: the
    default model's original backbone), an extra forward pass.

    `ray` encodes on a Ray cluster instead of this process's devices ("auto": the cluster
    of RAY_ADDRESS or one running here, else a new local one; "local"; or an address such
    as "ray://head:10001"): `ray_workers` actors (None: one per GPU of the cluster, else one
    per `ray_cpus_per_worker` CPUs), each loading the model once; encoded documents return
    through Ray's object store, or with `ray_transport="shared"` (every node mounts the
    index's folder) as files in the build folder. A compressed build's codes are made on
    the cluster too (`ray_coding`): the centroids are trained once here, then coder actors
    assign and quantize the chunks, reading and writing them in the build folder
    ("shared") or receiving blocks and returning codes ("object_store"). The index is the
    one a single-process build makes, up to floating-point rounding.
    """

    group_size: int = 100_000
    batch_size: int = 64
    precision: int = 16
    title_join: str = " "
    tokenizer_workers: int = field(default_factory=default_workers)
    devices: tuple[str, ...] | None = None
    chunk_size: int | None = None
    checkpoint_docs: int | None = 5_000
    checkpoint_seconds: float | None = 120.0
    length_bucketing: bool = True
    on_error: str = "raise"
    doc_maxlen: int | None = None
    compute_dtype: str | None = None
    nbits: int | None = 2
    keep_full: bool = True
    n_centroids: int | None = None
    kmeans_niter: int = 4
    assignment: str = "auto"
    seed: int = 0
    pool_factor: int = 1
    dense: str | None = None
    dense_model: str | None = None
    ray: str | None = None
    ray_workers: int | None = None
    ray_cpus_per_worker: int = 1
    ray_transport: str = "object_store"

    def __post_init__(self) -> None:
        if self.devices is not None and not isinstance(self.devices, tuple):
            if isinstance(self.devices, str) or not isinstance(self.devices, list | tuple):
                _bad("devices", self.devices, "a list of device names or None")
            object.__setattr__(self, "devices", tuple(self.devices))
        _check_int("group_size", self.group_size, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("tokenizer_workers", self.tokenizer_workers, 0)
        if self.chunk_size is not None:
            _check_int("chunk_size", self.chunk_size, 1)
            if self.chunk_size > self.group_size:
                _bad("chunk_size", self.chunk_size, f"<= group_size ({self.group_size})")
        if self.checkpoint_docs is not None:
            _check_int("checkpoint_docs", self.checkpoint_docs, 1)
        seconds = self.checkpoint_seconds
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0
        ):
            _bad("checkpoint_seconds", seconds, "a positive number of seconds or None")
        if self.doc_maxlen is not None:
            _check_int("doc_maxlen", self.doc_maxlen, 3)
        if self.precision not in PRECISIONS or isinstance(self.precision, bool):
            _bad("precision", self.precision, f"one of {PRECISIONS}")
        if not isinstance(self.title_join, str):
            _bad("title_join", self.title_join, "a string")
        if not isinstance(self.length_bucketing, bool):
            _bad("length_bucketing", self.length_bucketing, "true or false")
        if self.on_error not in ON_ERROR:
            _bad("on_error", self.on_error, f"one of {ON_ERROR}")
        if self.nbits is not None and (isinstance(self.nbits, bool) or self.nbits not in NBITS):
            _bad("nbits", self.nbits, f"None or one of {NBITS}")
        if not isinstance(self.keep_full, bool):
            _bad("keep_full", self.keep_full, "true or false")
        if self.n_centroids is not None:
            _check_int("n_centroids", self.n_centroids, 1)
        _check_int("kmeans_niter", self.kmeans_niter, 1)
        _check_int("seed", self.seed, 0)
        _check_int("pool_factor", self.pool_factor, 1)
        if self.assignment not in ASSIGNMENTS:
            _bad("assignment", self.assignment, f"one of {ASSIGNMENTS}")
        if self.compute_dtype is not None and self.compute_dtype not in COMPUTE_DTYPES:
            _bad("compute_dtype", self.compute_dtype, f"None or one of {COMPUTE_DTYPES}")
        if self.dense is not None and self.dense not in DENSE_SOURCES:
            _bad("dense", self.dense, f"None or one of {DENSE_SOURCES}")
        if self.dense_model is not None and (
            not isinstance(self.dense_model, str) or self.dense != "backbone"
        ):
            _bad("dense_model", self.dense_model, 'a path, with dense="backbone"')
        if self.ray is not None and (not isinstance(self.ray, str) or not self.ray.strip()):
            _bad("ray", self.ray, 'None, "auto", "local" or a cluster address')
        if self.ray_workers is not None:
            _check_int("ray_workers", self.ray_workers, 1)
        _check_int("ray_cpus_per_worker", self.ray_cpus_per_worker, 1)
        if self.ray_transport not in RAY_TRANSPORTS:
            _bad("ray_transport", self.ray_transport, f"one of {RAY_TRANSPORTS}")
        if self.devices is not None:
            if not self.devices:
                _bad("devices", self.devices, "a non-empty list (or None for auto)")
            for device in self.devices:
                if not isinstance(device, str) or not device.strip():
                    _bad("devices", self.devices, "a list of device names like 'cuda:0'")

    @property
    def dtype(self) -> str:
        """Storage dtype name of the embeddings."""
        return "float16" if self.precision == 16 else "float32"

    @property
    def compressed(self) -> bool:
        return self.nbits is not None

    @property
    def docs_per_chunk(self) -> int:
        return self.chunk_size or self.group_size

    def replace(self, **changes: Any) -> IndexConfig:
        """A copy with some fields changed (validated)."""
        return from_dict({**self.to_dict(), **changes}, source="overrides")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["devices"] = list(self.devices) if self.devices is not None else None
        return data

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON to `path` atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> IndexConfig:
        """Read and validate a config JSON file."""
        path = Path(path)
        return from_dict(read_json(path, what="index config file"), source=str(path))


def from_dict(data: Any, *, source: str = "config") -> IndexConfig:
    """Build a config from a mapping; unknown fields and bad values are errors naming them."""
    return config_from_dict(IndexConfig, data, source=source)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _bad(name, value, f"an integer >= {minimum}")


def _bad(name: str, value: Any, expected: str) -> None:
    raise ConfigError(f"IndexConfig.{name} must be {expected}, got {value!r}")
