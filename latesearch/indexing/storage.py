"""`IndexStore`: a finished index folder, validated and memory-mapped (see manifest.py for
the layout). Opening reads the manifest, the per-chunk doclens, the codec of a compressed
index and file headers only. Its jobs are split: token vectors in `vectors.py`, the dense
view's pooled vectors in `dense_vectors.py`, re-hashing in `verifying.py`; this module
opens a version of the folder and answers ids, texts and metadata."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latesearch._atomic import replace_folder
from latesearch.compressed.arrays import load_npy
from latesearch.compressed.codec import ResidualCodec
from latesearch.compressed.ivf import InvertedFile
from latesearch.errors import ConfigError, IndexCorruptError, StaleIndexError, UnknownDocumentError
from latesearch.indexing.checksums import VerifyReport, check_sizes, seal_component
from latesearch.indexing.dense_vectors import DenseVectors
from latesearch.indexing.docstore import DocIdList, DocStore
from latesearch.indexing.files import folder_bytes, writer_active
from latesearch.indexing.filters import CompiledFilter
from latesearch.indexing.manifest import (
    CODEC_DIR,
    DOC_ID_OFFSETS,
    DOC_IDS,
    DOCSTORE,
    IVF_DIR,
    MANIFEST,
    ChunkInfo,
    Manifest,
)
from latesearch.indexing.summary import BuildSummary
from latesearch.indexing.vectors import VectorReader
from latesearch.indexing.verifying import verify_chunk, verify_codec, verify_file, verify_index
from latesearch.modeling.config import ColBERTConfig

__all__ = ["IndexStore", "UnknownDocumentError", "building_folder"]

_OPEN_ATTEMPTS, _OPEN_PAUSE = 20, 0.05  # opening during an update's publish: about 1 s
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64}


def building_folder(folder: str | os.PathLike) -> Path:
    """Where a build of `folder` is staged: `<folder>.building` next to it."""
    folder = Path(folder)
    return folder.with_name(folder.name + ".building")


class IndexStore:
    """A ColBERT index on disk: its manifest and config; the token vectors (`vectors`, a
`VectorReader`: uncompressed and/or codes and residuals, doclens), the codec and inverted
file of a compressed index, the pooled vectors of a dense view (`pooled`), ids and texts
(the doc store), and its components. Opened once per version of the folder."""

    def __init__(
        self, folder: Path, manifest: Manifest, *, identity: tuple[int, int] | None = None
    ) -> None:
        self.folder = folder
        self.identity = identity if identity is not None else folder_identity(folder)
        self.manifest = manifest
        self.colbert_config = _colbert_config(folder, manifest)
        check_sizes(folder, manifest.files)
        self.codec: ResidualCodec | None = None
        if manifest.codec is not None:
            self.codec = ResidualCodec.load(folder / CODEC_DIR)
            if self.codec.dim != manifest.dim:
                raise IndexCorruptError(f"{folder / CODEC_DIR}: dim differs from the manifest's")
        self.dense_view = DenseVectors(folder, manifest)
        self.vectors = VectorReader(folder, manifest, self.codec)
        self.doclens: np.ndarray = self.vectors.doclens  # (n_docs,) int32 tokens per document
        self.offsets: np.ndarray = self.vectors.offsets  # (n_docs + 1,) int64 first tokens
        self.doc_ids = _doc_id_list(folder, self.n_docs)
        self._docstore = _open_docstore(folder / DOCSTORE, self.n_docs)
        self._ivf: InvertedFile | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, folder: str | os.PathLike) -> IndexStore:
        """Validate and memory-map an index folder; IndexCorruptError names what is wrong.

        Every file opened belongs to one version: if an update publishes a new version
        while this opens the folder, it opens it again (a few times, briefly)."""
        folder = Path(folder)
        for attempt in range(_OPEN_ATTEMPTS):
            identity = folder_identity(folder)
            if identity is None or not folder.is_dir():
                if _set_aside(folder) is not None and attempt + 1 < _OPEN_ATTEMPTS:
                    time.sleep(_OPEN_PAUSE)  # between the two renames of a publish
                    continue
                raise IndexCorruptError(f"{folder}: no index folder{_missing_hint(folder)}")
            try:
                store = cls(folder, Manifest.read(folder), identity=identity)
            except (IndexCorruptError, OSError):
                if folder_identity(folder) == identity:
                    raise
                continue  # replaced while being read: read the new version
            if store.is_current():
                _report_leftovers(folder)
                return store
            store.close()
        raise StaleIndexError(f"{folder}: replaced by updates faster than it could be opened")

    def is_current(self) -> bool:
        """Whether the folder on disk is still the version this store opened."""
        return folder_identity(self.folder) == self.identity

    def check_current(self) -> None:
        """Raise StaleIndexError if an update replaced the folder since it was opened (so a
        component is never loaded from a newer version than the rest)."""
        if not self.is_current():
            raise StaleIndexError(
                f"{self.folder}: the index was updated after this object loaded it; "
                "load it again (Index.load) to see the new version"
            )

    def close(self) -> None:
        """Release memory maps and database connections."""
        self.vectors.close()
        self.dense_view.close()
        self._ivf = None
        self._docstore.close()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        stored = f"nbits={self.codec.nbits}" if self.codec else f"dtype={self.dtype}"
        return (
            f"IndexStore({str(self.folder)!r}, n_docs={self.n_docs}, "
            f"n_embeddings={self.n_embeddings}, dim={self.dim}, {stored})"
        )

    # ------------------------------------------------------------------ sizes
    @property
    def n_docs(self) -> int:
        return self.manifest.n_docs

    @property
    def n_embeddings(self) -> int:
        return self.manifest.n_embeddings

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def dtype(self) -> str:
        return self.manifest.dtype

    @property
    def chunks(self) -> list[ChunkInfo]:
        return self.manifest.chunks

    @property
    def summary(self) -> BuildSummary:
        """What the build produced (from the manifest's stats)."""
        return BuildSummary.from_dict(self.manifest.stats)

    def nbytes(self) -> int:
        """Bytes on disk of everything in the index folder."""
        return folder_bytes(self.folder)

    @property
    def compressed(self) -> bool:
        """Whether tokens are stored as centroid codes and quantized residuals."""
        return self.codec is not None

    @property
    def ivf(self) -> InvertedFile:
        """The centroid -> documents inverted file of a compressed index (memory-mapped)."""
        if self.codec is None:
            raise IndexCorruptError(f"{self.folder}: an uncompressed index has no inverted file")
        if self._ivf is None:
            self.check_current()
            ivf = InvertedFile.load(self.folder / IVF_DIR, n_centroids=self.codec.n_centroids,
                                    n_docs=self.n_docs)  # fmt: skip
            self.check_current()
            self._ivf = ivf
        return self._ivf

    # ------------------------------------------------------------------ token vectors
    def flat(
        self, doc_indices: Sequence[int] | np.ndarray, *, source: str = "auto"
    ) -> tuple[np.ndarray, np.ndarray]:
        """`VectorReader.flat`: documents' vectors back to back, and their lengths."""
        return self.vectors.flat(doc_indices, source=source)

    def gather(
        self,
        doc_indices: Sequence[int] | np.ndarray | torch.Tensor,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        *,
        source: str = "auto",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`VectorReader.gather`: documents' padded embeddings and mask."""
        return self.vectors.gather(doc_indices, device, dtype, source=source)

    def check_source(self, source: str) -> str:
        """`VectorReader.check_source`: what `source` resolves to for this index."""
        return self.vectors.check_source(source)

    def token_range(self, start: int, stop: int) -> np.ndarray:
        """`VectorReader.token_range`: embeddings of global tokens [start, stop)."""
        return self.vectors.token_range(start, stop)

    def token_to_doc(self) -> np.ndarray:
        """`VectorReader.token_to_doc`: the document index of every embedding."""
        return self.vectors.token_to_doc()

    def embeddings_flat(self) -> list[np.memmap]:
        """`VectorReader.embeddings_flat`: the uncompressed chunk arrays."""
        return self.vectors.embeddings_flat()

    def codes_flat(self) -> list[np.memmap]:
        """`VectorReader.codes_flat`: the chunks' centroid codes."""
        return self.vectors.codes_flat()

    def residuals_flat(self) -> list[np.memmap]:
        """`VectorReader.residuals_flat`: the chunks' packed residuals."""
        return self.vectors.residuals_flat()

    # ------------------------------------------------------------------ dense view
    @property
    def has_dense(self) -> bool:
        """Whether the index holds a pooled dense vector per document (a dense view)."""
        return self.dense_view.present

    @property
    def dense_source(self) -> str | None:
        """Where the dense vectors come from ("pooled", "backbone"), None without them."""
        return self.dense_view.source

    def dense_chunks(self) -> list[np.memmap]:
        """`DenseVectors.chunks`: each chunk's pooled vectors (ConfigError without them)."""
        return self.dense_view.chunks()

    def dense_scores(self, queries: np.ndarray) -> np.ndarray:
        """`DenseVectors.scores`: (n_queries, n_docs) cosine against every document."""
        return self.dense_view.scores(queries)

    # ------------------------------------------------------------------ checksums
    def verify(self) -> VerifyReport:
        """`verifying.verify_index`: re-hash every file against its checksums."""
        return verify_index(self)

    def verify_chunk(self, i: int) -> int:
        """`verifying.verify_chunk`: re-hash chunk `i`'s arrays; the bytes hashed."""
        return verify_chunk(self, i)

    def verify_codec(self) -> int:
        """`verifying.verify_codec`: re-hash the codec and inverted file; bytes hashed."""
        return verify_codec(self)

    def verify_file(self, name: str) -> None:
        """`verifying.verify_file`: re-hash one file of the manifest's `files`."""
        verify_file(self, name)

    # ------------------------------------------------------------------ ids and texts
    def doc_index(self, doc_id: str) -> int:
        """Internal index of a document id; UnknownDocumentError (an InputError) if absent."""
        found = self._docstore.indices([doc_id])
        if doc_id not in found:
            raise UnknownDocumentError(f"unknown document id {doc_id!r}", doc_id=doc_id,
                                       path=str(self.folder), field="doc_id")  # fmt: skip
        return found[doc_id]

    def doc_indices(
        self, doc_ids: Sequence[str], *, missing: str = "raise", field: str = "candidates"
    ) -> tuple[np.ndarray, list[str]]:
        """Indices of `doc_ids` in the order given, and the ids not in the index.

        missing="raise": an unknown id is an UnknownDocumentError naming `field`, the input
        the ids came from (a rerank's candidates unless told); "skip": left out.
        """
        if missing not in ("raise", "skip"):
            raise ConfigError(f"missing must be 'raise' or 'skip', got {missing!r}")
        ids = list(doc_ids)
        found = self._docstore.indices(ids)
        unknown = [i for i in ids if i not in found]
        if unknown and missing == "raise":
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise UnknownDocumentError(f"unknown document id {unknown[0]!r}{more}",
                                       doc_id=unknown[0], path=str(self.folder),
                                       field=field)  # fmt: skip
        indices = np.array([found[i] for i in ids if i in found], dtype=np.int64)
        return indices, unknown

    def matching(self, spec: Any | CompiledFilter) -> np.ndarray:
        """Sorted indices of the documents whose metadata match the filter `spec`, given
        as a filter or as `compile_filter`'s result (a request compiles its filter once)."""
        return self._docstore.matching(spec)

    @property
    def indexed_fields(self) -> frozenset[str]:
        """The metadata fields with a field index (`IndexConfig.filter_fields`)."""
        return self._docstore.indexed_fields

    def documents(self, doc_indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """{doc_id, title, text, metadata} of each document, in the order asked."""
        return self._docstore.documents(np.asarray(doc_indices, dtype=np.int64).reshape(-1))

    def all_metadata(self) -> list[tuple[str, dict[str, Any]]]:
        """(doc_id, metadata) of every document that has metadata, in index order."""
        return self._docstore.all_metadata()

    # ------------------------------------------------------------------ components
    def add_component(self, name: str, write: Callable[[Path], None]) -> Path:
        """Add or replace a subfolder (e.g. `bm25`, `ann`) atomically: `write(tmp)` fills a
        temporary folder inside the index, which is then renamed to `name`."""
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"component name must be a plain folder name, got {name!r}")
        final = self.folder / name
        tmp = self.folder / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            write(tmp)
            seal_component(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return replace_folder(tmp, final)


def _colbert_config(folder: Path, manifest: Manifest) -> ColBERTConfig:
    try:
        config = ColBERTConfig.from_dict(manifest.colbert_config, source="colbert_config")
    except ConfigError as err:
        raise IndexCorruptError(f"{folder / 'manifest.json'}: {err}") from None
    if config.dim != manifest.dim:
        raise IndexCorruptError(
            f"{folder / 'manifest.json'}: dim {manifest.dim} but colbert_config.dim {config.dim}"
        )
    return config


def _doc_id_list(folder: Path, n_docs: int) -> DocIdList:
    offsets = load_npy(folder / DOC_ID_OFFSETS, dtype="int64", shape=(n_docs + 1,), mmap=True)
    blob_path = folder / DOC_IDS
    if not blob_path.is_file():
        raise IndexCorruptError(f"{blob_path}: missing")
    size = blob_path.stat().st_size
    if size != int(offsets[-1]):
        raise IndexCorruptError(f"{blob_path}: {size} bytes, offsets say {int(offsets[-1])}")
    blob = np.memmap(blob_path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    return DocIdList(blob, offsets, path=blob_path)


def _open_docstore(path: Path, n_docs: int) -> DocStore:
    if not path.is_file():
        raise IndexCorruptError(f"{path}: missing")
    try:
        store = DocStore(path)
        last = store.max_idx()
    except sqlite3.DatabaseError as err:
        raise IndexCorruptError(f"{path}: unreadable ({err})") from None
    if last != n_docs - 1:
        store.close()
        raise IndexCorruptError(f"{path}: holds {last + 1} documents, expected {n_docs}")
    return store


def folder_identity(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of `folder`, None where it is missing: an update publishes a new
    version by renaming a new folder onto the path, which changes this."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


STAGING_SUFFIXES = (".building", ".updating", ".adding")


def _report_leftovers(folder: Path) -> None:
    """Warn about staging folders an interrupted build or update left beside the index
    (the next update removes those of updates; a build's is resumed or overwritten)."""
    left = [folder.with_name(folder.name + suffix) for suffix in STAGING_SUFFIXES]
    left = [path for path in left if path.is_dir()]
    if left and not writer_active(folder):  # else: work in progress, not a leftover
        names = ", ".join(str(p) for p in left)
        warnings.warn(
            f"{folder}: left by an interrupted build or update: {names} (the index itself is "
            "complete; the next update removes an update's leftovers, `latesearch index "
            "--resume` or `--overwrite` a build's; or delete them)",
            stacklevel=3,
        )


def _set_aside(folder: Path) -> Path | None:
    """The previous complete version of `folder` moved aside by an update's publish, as
    between its two renames (or after a crash there), or None."""
    olds = sorted(folder.parent.glob(f".{folder.name}.old-*"))
    return next((old for old in olds if (old / MANIFEST).is_file()), None)


def _missing_hint(folder: Path) -> str:
    if building_folder(folder).is_dir():
        return (
            f" (an unfinished build is in {building_folder(folder)}: resume it with "
            "--resume, or resume=True in Python)"
        )
    old = _set_aside(folder)
    if old is not None:  # a crash inside replace_folder's two renames
        return (
            f" (a crash during an update left the previous complete version in "
            f"{old}: rename it to {folder.name})"
        )
    return ""
