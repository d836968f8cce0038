"""The index manifest (`manifest.json`) and the names of the files of an index folder.

Layout of an index folder (format version 1: uncompressed; 2: compressed)::

    manifest.json                   this file: model, configs, counts, dims, chunks, codec, stats
    chunks/NNNNN.doclens.npy        (n_docs_in_chunk,) int32 embeddings per document
    chunks/NNNNN.embeddings.npy     (n_tokens, dim) float16|float32 (version 1; in version 2
                                    only with keep_full)
    chunks/NNNNN.codes.npy          (n_tokens,) uint16|int32 centroid ids (version 2)
    chunks/NNNNN.residuals.npy      (n_tokens, dim * nbits / 8) uint8 packed residuals (v2)
    chunks/NNNNN.norms.npy          (n_tokens,) uint8 norm of centroid + residual, quantized
                                    (`codec.quantize_norms`; chunks coded before it have none
                                    and their norms are computed when read)
    chunks/NNNNN.dense.npy          (n_docs_in_chunk, dense_dim) float16 pooled vectors (with
                                    a dense view, IndexConfig.dense)
    chunks/NNNNN.spans.npy          (n_text_tokens,) uint16: per original token, which of its
                                    document's pooled vectors absorbed it (pool_factor > 1)
    chunks/NNNNN.textlens.npy       (n_docs_in_chunk,) int32 original tokens per document
                                    (pool_factor > 1; doclens then count pooled vectors)
    codec/                          centroids, bucket cutoffs and weights (version 2)
    ivf/                            centroid -> documents inverted file (version 2)
    doc_ids.bin                     UTF-8 document ids, concatenated (internal order)
    doc_ids.offsets.npy             (n_docs + 1,) int64 byte offsets into doc_ids.bin
    docs.sqlite                     table docs(idx, doc_id, title, text, metadata)
    bm25/, ann/                     optional components (BM25 first stage, faiss IVFPQ),
                                    each with its own checksums.json

Documents never span chunks; a chunk's documents are contiguous in internal order.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from latesearch._atomic import write_json
from latesearch.errors import IndexCorruptError
from latesearch.indexing.checksums import check_records, file_record, seal_component
from latesearch.indexing.config import IndexConfig

FORMAT_VERSION = 1  # uncompressed
COMPRESSED_FORMAT_VERSION = 2  # residual codes (+ codec/, ivf/)
FORMAT_VERSIONS = (FORMAT_VERSION, COMPRESSED_FORMAT_VERSION)
MANIFEST = "manifest.json"
CHUNKS_DIR = "chunks"
CODEC_DIR = "codec"
IVF_DIR = "ivf"
INDEX_DIRS = (CHUNKS_DIR, CODEC_DIR, IVF_DIR)  # any other folder is a component
DOC_IDS = "doc_ids.bin"
DOC_ID_OFFSETS = "doc_ids.offsets.npy"
DOCSTORE = "docs.sqlite"
DTYPES = ("float16", "float32")


def chunk_files(index: int) -> tuple[str, str]:
    """Relative paths of chunk `index`'s embeddings and doclens files."""
    stem = f"{CHUNKS_DIR}/{index:05d}"
    return f"{stem}.embeddings.npy", f"{stem}.doclens.npy"


def dense_chunk_file(index: int) -> str:
    """Relative path of chunk `index`'s pooled dense vectors (an index with a dense view)."""
    return f"{CHUNKS_DIR}/{index:05d}.dense.npy"


def norms_chunk_file(index: int) -> str:
    """Relative path of chunk `index`'s stored token norms (compressed indexes)."""
    return f"{CHUNKS_DIR}/{index:05d}.norms.npy"


def span_chunk_files(index: int) -> tuple[str, str]:
    """Relative paths of chunk `index`'s token spans and text token counts (pooled)."""
    stem = f"{CHUNKS_DIR}/{index:05d}"
    return f"{stem}.spans.npy", f"{stem}.textlens.npy"


def compressed_chunk_files(index: int) -> tuple[str, str]:
    """Relative paths of chunk `index`'s centroid codes and packed residuals files."""
    stem = f"{CHUNKS_DIR}/{index:05d}"
    return f"{stem}.codes.npy", f"{stem}.residuals.npy"


@dataclass
class ChunkInfo:
    """One chunk's files: documents [first_doc, first_doc + n_docs) and their tokens.

    `embeddings` is "" when a compressed index keeps no uncompressed vectors; `codes` and
    `residuals` are "" in an uncompressed index. Each `*sha256` is the SHA-256 of the
    array's data (`compressed.arrays.chunk_digest`)."""

    index: int
    first_doc: int
    n_docs: int
    first_token: int
    n_embeddings: int
    embeddings: str
    doclens: str
    sha256: str = ""
    codes: str = ""
    residuals: str = ""
    codes_sha256: str = ""
    residuals_sha256: str = ""
    doclens_sha256: str = ""
    dense: str = ""  # (n_docs, dense_dim) float16 pooled vectors, with a dense view
    dense_sha256: str = ""
    spans: str = ""  # (n_text_tokens,) uint16 pooled vector of each original token, pooled
    spans_sha256: str = ""
    textlens: str = ""  # (n_docs,) int32 original tokens per document, pooled
    textlens_sha256: str = ""
    norms: str = ""  # (n_tokens,) uint8 quantized norms, compressed chunks coded with them
    norms_sha256: str = ""

    def files(self) -> list[str]:
        """The relative paths of the files the chunk uses."""
        names = (self.embeddings, self.doclens, self.codes, self.residuals, self.norms,
                 self.dense, self.spans, self.textlens)  # fmt: skip
        return [p for p in names if p]

    def digests(self) -> dict[str, str]:
        """The chunk's files that carry a checksum, and the checksum ("" where none)."""
        pairs = [
            (self.embeddings, self.sha256),
            (self.doclens, self.doclens_sha256),
            (self.codes, self.codes_sha256),
            (self.residuals, self.residuals_sha256),
            (self.norms, self.norms_sha256),
            (self.dense, self.dense_sha256),
            (self.spans, self.spans_sha256),
            (self.textlens, self.textlens_sha256),
        ]
        return {name: digest for name, digest in pairs if name}


@dataclass
class Manifest:
    """What an index folder holds; written last, so a folder without it is incomplete."""

    format_version: int
    model_source: str
    model_fingerprint: str
    colbert_config: dict[str, Any]
    index_config: dict[str, Any]
    n_docs: int
    n_embeddings: int
    dim: int
    dtype: str
    chunks: list[ChunkInfo]
    created: str
    stats: dict[str, Any] = field(default_factory=dict)
    collection: dict[str, Any] = field(default_factory=dict)
    codec: dict[str, Any] | None = None  # compressed indexes: nbits, centroids, checksums
    # every other file of the index proper: {path: {"bytes", "sha256"}} (checksums.py)
    files: dict[str, Any] = field(default_factory=dict)
    dense_dim: int = 0  # the pooled dense vectors' dimension (0: no dense view)

    @property
    def compressed(self) -> bool:
        return self.codec is not None

    @cached_property
    def config(self) -> IndexConfig:
        """`index_config` read as an IndexConfig (also the flat ones of earlier versions)."""
        return IndexConfig.from_dict(self.index_config, source=f"{MANIFEST}: index_config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, folder: str | os.PathLike) -> Path:
        """Write `manifest.json` into `folder` atomically (temp file, fsync, rename)."""
        return write_json(Path(folder) / MANIFEST, self.to_dict())

    def seal(self, folder: str | os.PathLike) -> Path:
        """The last step before publishing `folder`: write each component's checksums, record
        those of the index's other files in `files`, and write the manifest."""
        folder = Path(folder)
        for component in component_dirs(folder):
            seal_component(component)
        self.files = {name: file_record(folder / name) for name in index_files(folder, self)}
        return self.write(folder)

    @classmethod
    def read(cls, folder: str | os.PathLike) -> Manifest:
        """Read and validate `manifest.json`; problems raise IndexCorruptError naming it."""
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise IndexCorruptError(
                f"{path}: missing (not an index folder, or an unfinished build)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise IndexCorruptError(f"{path}: unreadable ({err})") from None
        return from_dict(data, source=str(path))


def from_dict(data: Any, *, source: str) -> Manifest:
    """Validate a manifest mapping: fields, types, format version and internal sums."""
    if not isinstance(data, dict):
        raise IndexCorruptError(f"{source}: expected a JSON object")
    version = data.get("format_version")
    if version not in FORMAT_VERSIONS:
        raise IndexCorruptError(
            f"{source}: format_version {version!r} is not supported (expected one of "
            f"{FORMAT_VERSIONS}; a newer latesearch wrote it?)"
        )
    if (version == COMPRESSED_FORMAT_VERSION) != isinstance(data.get("codec"), dict):
        raise IndexCorruptError(f"{source}: format_version {version} and its codec disagree")
    names = {f.name for f in fields(Manifest)}
    required = names - {"stats", "collection", "codec", "files", "dense_dim"}
    missing = sorted(required - set(data))
    if missing:
        raise IndexCorruptError(f"{source}: missing field(s) {missing}")
    unknown = sorted(set(data) - names)
    if unknown:
        raise IndexCorruptError(f"{source}: unknown field(s) {unknown}")
    try:
        chunks = [ChunkInfo(**c) for c in data["chunks"]]
    except TypeError as err:
        raise IndexCorruptError(f"{source}: malformed chunk entry ({err})") from None
    manifest = Manifest(**{**data, "chunks": chunks})
    check_records(manifest.files, source=f"{source}: files")
    _check(manifest, source)
    return manifest


def _check(m: Manifest, source: str) -> None:
    for name in ("n_docs", "n_embeddings", "dim", "dense_dim"):
        value = getattr(m, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise IndexCorruptError(f"{source}: {name} must be a non-negative integer")
    if m.dtype not in DTYPES:
        raise IndexCorruptError(f"{source}: dtype {m.dtype!r} is not one of {DTYPES}")
    for chunk in m.chunks:
        stored = (chunk.codes and chunk.residuals) if m.compressed else chunk.embeddings
        if not stored or not chunk.doclens:
            raise IndexCorruptError(f"{source}: chunk {chunk.index} names no stored vectors")
        if bool(chunk.dense) != bool(m.dense_dim):
            raise IndexCorruptError(f"{source}: chunk {chunk.index} and dense_dim disagree")
        if bool(chunk.spans) != bool(chunk.textlens):
            raise IndexCorruptError(f"{source}: chunk {chunk.index} has half of its spans")
    doc = token = 0
    for i, chunk in enumerate(m.chunks):
        if (chunk.index, chunk.first_doc, chunk.first_token) != (i, doc, token):
            raise IndexCorruptError(f"{source}: chunk {i} is out of sequence")
        doc += chunk.n_docs
        token += chunk.n_embeddings
    if (doc, token) != (m.n_docs, m.n_embeddings):
        raise IndexCorruptError(
            f"{source}: chunks hold {doc} documents / {token} embeddings, "
            f"manifest says {m.n_docs} / {m.n_embeddings}"
        )


def index_files(folder: Path, manifest: Manifest) -> list[str]:
    """The files of the index proper that no chunk or codec checksum covers (ids, doc
    store, `codec/codec.json`): what the manifest's `files` records. Component folders
    and hidden (staging) entries are not part of it."""
    covered = {name for c in manifest.chunks for name in c.files()}
    covered.update((manifest.codec or {}).get("sha256", {}))
    names = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        top = rel.parts[0]
        if not path.is_file() or top.startswith(".") or rel.as_posix() in covered:
            continue
        if len(rel.parts) > 1 and top not in INDEX_DIRS or rel.as_posix() == MANIFEST:
            continue
        names.append(rel.as_posix())
    return names


def component_dirs(folder: Path) -> list[Path]:
    """The component folders (`bm25/`, `ann/`, ...) of an index folder."""
    found = [p for p in folder.iterdir() if p.is_dir() and p.name not in INDEX_DIRS]
    return sorted(p for p in found if not p.name.startswith("."))
