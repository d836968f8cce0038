"""`IndexConfig`: how an index is built (paper Section 3.4), saved with every index, in
groups: the `codec`, the encoding `run`, `ray` and the `dense` view.

Users may still give the flat field names of earlier versions (`nbits=4`,
`ray_workers=2`, ...) to `IndexConfig.replace`, `Index.build` and the CLI; indexes saved
with a flat `index_config` load as they were. `FLAT_NAMES` is that one mapping.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from latesearch._configio import JsonConfig
from latesearch.compressed.centroids import ASSIGNMENTS
from latesearch.compressed.codec import NBITS
from latesearch.errors import ConfigError
from latesearch.indexing.filters import plain_field_name

ON_ERROR = ("raise", "skip")
PRECISIONS = (16, 32)
COMPUTE_DTYPES = ("float16", "bfloat16")
DENSE_SOURCES = ("pooled", "backbone")
RAY_TRANSPORTS = ("object_store", "shared")

# The codec of new indexes, one switch: False keeps SAVED_CODEC (2-bit residuals over every
# token with the fp16 tier, the defaults every index was built with so far); True makes
# COMPACT_CODEC the default: the compressed index alone, at <= 40 bytes per text token, the
# combination of bits and pooling that benchmarks/pooling.py's rule picks
# (docs/index-format.md: 4 bits over 2x pooled tokens among those measured). A saved
# config that does not name a codec field means SAVED_CODEC's value, whichever is on
# (`IndexConfig.from_dict`).
COMPACT_DEFAULT = False
SAVED_CODEC = {"nbits": 2, "keep_full": True, "pool_factor": 1}
COMPACT_CODEC = {"nbits": 4, "keep_full": False, "pool_factor": 2}
NEW_CODEC = COMPACT_CODEC if COMPACT_DEFAULT else SAVED_CODEC


def default_workers() -> int:
    """Tokenizer threads: up to 4, never more than the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


@dataclass(frozen=True)
class CodecConfig(JsonConfig):
    """How the vectors are stored.

    `nbits` (1, 2 or 4) compresses every token to its centroid id plus its residual at
    that many bits per dimension (ColBERTv2), searched by the PLAID-style engine; None
    keeps the uncompressed store (`precision` 16 or 32 bits) and the paper's faiss IVFPQ
    end-to-end path. `keep_full` also keeps the uncompressed vectors on disk,
    memory-mapped, read only to re-score the engine's final candidates exactly; False
    keeps the compressed files alone (about 40 bytes a token at 2 bits instead of about
    300). It means nothing without compression. The defaults of `nbits`, `keep_full` and
    `pool_factor` are NEW_CODEC's (COMPACT_DEFAULT above).
    `n_centroids` (default: the power of two at or below 16 * sqrt(n_tokens)),
    `kmeans_niter`, `assignment` ("auto": exact below 32,768 centroids, a two-level tree
    from there on; "exact"; "tree"; "hnsw") and `seed` set how the centroids are trained
    and assigned.

    `pool_factor` > 1 pools each document's token vectors before compression: Ward
    clustering of all but the first token into ceil((n - 1) / pool_factor) clusters, each
    stored as its members' re-normalized mean (`indexing.pooling`); 1 stores every token.
    """

    nbits: int | None = NEW_CODEC["nbits"]
    keep_full: bool = NEW_CODEC["keep_full"]
    precision: int = 16
    n_centroids: int | None = None
    kmeans_niter: int = 4
    assignment: str = "auto"
    seed: int = 0
    pool_factor: int = NEW_CODEC["pool_factor"]

    def validate(self) -> None:
        if self.nbits is not None and self.nbits not in NBITS:
            self._bad("nbits", f"None or one of {NBITS}")
        if self.precision not in PRECISIONS:
            self._bad("precision", f"one of {PRECISIONS}")
        self._check_ints("n_centroids", "kmeans_niter")
        self._check_ints("seed", minimum=0)
        self._check_ints("pool_factor")
        if self.assignment not in ASSIGNMENTS:
            self._bad("assignment", f"one of {ASSIGNMENTS}")

    @property
    def dtype(self) -> str:
        """Storage dtype name of the uncompressed embeddings."""
        return "float16" if self.precision == 16 else "float32"

    @property
    def compressed(self) -> bool:
        return self.nbits is not None


@dataclass(frozen=True)
class EncodingRun(JsonConfig):
    """How documents are encoded.

    Documents are read in groups of `group_size` (B), sorted by length when
    `length_bucketing`, and encoded in batches of `batch_size` (b) padded to each batch's
    longest document, by `tokenizer_workers` tokenizer threads, on `devices` (None: every
    GPU, else the CPU) in `compute_dtype` (None: the model's). Groups are cut into chunk
    files of `chunk_size` documents (default: one chunk per group); a chunk is the unit of
    `--resume`. So that an interrupted build loses little, a group is also cut short at
    `checkpoint_docs` documents and at about `checkpoint_seconds` of encoding (from the
    throughput measured so far): a build saves its work at least that often whatever
    `group_size` (None turns either limit off).
    """

    group_size: int = 100_000
    batch_size: int = 64
    tokenizer_workers: int = field(default_factory=default_workers)
    devices: tuple[str, ...] | None = None
    chunk_size: int | None = None
    checkpoint_docs: int | None = 5_000
    checkpoint_seconds: float | None = 120.0
    length_bucketing: bool = True
    compute_dtype: str | None = None

    def validate(self) -> None:
        self._check_ints("group_size", "batch_size", "chunk_size", "checkpoint_docs")
        self._check_ints("tokenizer_workers", minimum=0)
        if self.chunk_size is not None and self.chunk_size > self.group_size:
            self._bad("chunk_size", f"<= group_size ({self.group_size})")
        if self.checkpoint_seconds is not None and not self.checkpoint_seconds > 0:
            self._bad("checkpoint_seconds", "a positive number of seconds or None")
        if self.devices is not None:
            if not self.devices:
                self._bad("devices", "a non-empty list (or None for auto)")
            if not all(device.strip() for device in self.devices):
                self._bad("devices", "a list of device names like 'cuda:0'")
        if self.compute_dtype is not None and self.compute_dtype not in COMPUTE_DTYPES:
            self._bad("compute_dtype", f"None or one of {COMPUTE_DTYPES}")

    @property
    def docs_per_chunk(self) -> int:
        return self.chunk_size or self.group_size


@dataclass(frozen=True)
class RayConfig(JsonConfig):
    """Encoding on a Ray cluster instead of this process's devices.

    `address`: None (no Ray), "auto" (the cluster of RAY_ADDRESS or one running here, else
    a new local one), "local", or an address such as "ray://head:10001". `workers` actors
    (None: one per GPU of the cluster, else one per `cpus_per_worker` CPUs) each load the
    model once; encoded documents return through Ray's object store, or with
    `transport="shared"` (every node mounts the index's folder) as files in the build
    folder. A compressed build's codes are made on the cluster too (`ray_coding`): the
    centroids are trained once here, then coder actors assign and quantize the chunks,
    reading and writing them in the build folder ("shared") or receiving blocks and
    returning codes ("object_store"). The index is the one a single-process build makes,
    up to floating-point rounding.
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: int = 1
    transport: str = "object_store"

    def validate(self) -> None:
        if self.address is not None and not self.address.strip():
            self._bad("address", 'None, "auto", "local" or a cluster address')
        self._check_ints("workers", "cpus_per_worker")
        if self.transport not in RAY_TRANSPORTS:
            self._bad("transport", f"one of {RAY_TRANSPORTS}")


@dataclass(frozen=True)
class DenseViewConfig(JsonConfig):
    """The optional dense view: one pooled dense vector per document (fp16), searched by
    the "dense" and "fused" modes. `source` "pooled" is the attention-masked mean of the
    ColBERT model's own last hidden states (free: the same forward pass); "backbone" is
    the mean-pooled sentence embedding of `model` (a sentence-transformers folder; None:
    the default model's original backbone), an extra forward pass. None: no dense view.
    """

    source: str | None = None
    model: str | None = None

    def validate(self) -> None:
        if self.source is not None and self.source not in DENSE_SOURCES:
            self._bad("source", f"None or one of {DENSE_SOURCES}")
        if self.model is not None and self.source != "backbone":
            self._bad("model", 'a path, with source="backbone"')


@dataclass(frozen=True)
class IndexConfig(JsonConfig):
    """Settings of an indexing run: what is indexed (`title_join` between a document's
    title and text, `on_error` for bad documents, `doc_maxlen` overriding the model's),
    `max_docs` (None: no limit; the most documents the index may hold, refused by the build
    and by every update that would pass it), `filter_fields` (metadata fields given a field
    index, so that a filter on them costs what it selects; `Index.create_field_index` adds
    more later), and the `codec`, `run`, `ray` and `dense` groups.

    `window` (None: off, a document is truncated at `doc_maxlen`) splits each document
    into overlapping windows of that many text tokens, `window_stride` apart (default:
    half a window), at most `max_windows` (64) of them; each window is encoded as a
    document of its own and the document stores the union of its windows' vectors
    (MaxSim over all of them; explanations name the best window). `window` must leave
    room in `doc_maxlen` for the special tokens ([CLS], [D], [SEP])."""

    title_join: str = " "
    on_error: str = "raise"
    doc_maxlen: int | None = None
    max_docs: int | None = None
    filter_fields: tuple[str, ...] = ()
    window: int | None = None
    window_stride: int | None = None
    max_windows: int = 64
    codec: CodecConfig = field(default_factory=CodecConfig)
    run: EncodingRun = field(default_factory=EncodingRun)
    ray: RayConfig = field(default_factory=RayConfig)
    dense: DenseViewConfig = field(default_factory=DenseViewConfig)

    def validate(self) -> None:
        if self.on_error not in ON_ERROR:
            self._bad("on_error", f"one of {ON_ERROR}")
        self._check_ints("doc_maxlen", minimum=3)
        self._check_ints("max_docs", "window", "window_stride", "max_windows")
        for name in self.filter_fields:
            if not plain_field_name(name):
                self._bad("filter_fields", "metadata field names without quotes, backslashes "
                          "or control characters")  # fmt: skip
        if self.window is None and self.window_stride is not None:
            self._bad("window_stride", "None without a window")
        if self.window is not None and self.window_stride and self.window_stride > self.window:
            self._bad("window_stride", f"at most the window ({self.window})")
        if self.window is not None and self.dense.source is not None:
            self._bad("window", "None with a dense view (one vector a document)")

    @property
    def windows(self) -> tuple[int, int, int] | None:
        """(window, stride, max_windows) when documents are split into windows."""
        if self.window is None:
            return None
        return self.window, self.window_stride or max(self.window // 2, 1), self.max_windows

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "config") -> IndexConfig:
        """Read a saved config from a mapping, grouped or flat (as earlier versions saved
        it). A codec field it does not name takes SAVED_CODEC's value, the one indexes were
        built with before that field or a new default existed."""
        if isinstance(data, dict):
            data = grouped(data)
            if isinstance(data.get("codec", {}), dict):
                data["codec"] = {**SAVED_CODEC, **data.get("codec", {})}
        return super().from_dict(data, source=source)

    def replace(self, **changes: Any) -> IndexConfig:
        """A validated copy with some fields changed: flat names (`nbits=4`) or groups
        (`codec=CodecConfig(...)`, or a mapping of some of a group's fields). An error
        about a field given by its flat name also says that name."""
        data = self.to_dict()
        for key, value in grouped(changes).items():
            merge = key in GROUPS and isinstance(value, dict)
            data[key] = {**data[key], **value} if merge else value
        try:
            return self.from_dict(data, source="overrides")
        except ConfigError as err:
            flat = [k for k in changes if k in FLAT_NAMES and FLAT_NAMES[k][1] == err.field]
            if not flat:
                raise
            raise ConfigError(f"{err} (given as {flat[0]})", field=err.field) from None


GROUPS = {"codec": CodecConfig, "run": EncodingRun, "ray": RayConfig, "dense": DenseViewConfig}
# Earlier versions' flat field names -> (group, field).
FLAT_NAMES = {
    **{name: ("codec", name) for name in (
        "nbits", "keep_full", "precision", "n_centroids", "kmeans_niter", "assignment", "seed",
        "pool_factor")},
    **{name: ("run", name) for name in (
        "group_size", "batch_size", "tokenizer_workers", "devices", "chunk_size",
        "checkpoint_docs", "checkpoint_seconds", "length_bucketing", "compute_dtype")},
    "ray": ("ray", "address"),
    "ray_workers": ("ray", "workers"),
    "ray_cpus_per_worker": ("ray", "cpus_per_worker"),
    "ray_transport": ("ray", "transport"),
    "dense": ("dense", "source"),
    "dense_model": ("dense", "model"),
}  # fmt: skip


def grouped(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with flat names moved into their groups. A group's name with a mapping or a
    group object is that group; `ray` and `dense` with any other value are the flat
    names (the address, the dense source)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in GROUPS and isinstance(value, dict | JsonConfig):
            part = value.to_dict() if isinstance(value, JsonConfig) else value
            out[key] = {**out.get(key, {}), **part}
        elif key in FLAT_NAMES:
            group, name = FLAT_NAMES[key]
            out.setdefault(group, {})[name] = value
        else:
            out[key] = value
    return out
