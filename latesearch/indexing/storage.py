"""`IndexStore`: a finished index folder, validated and memory-mapped (see manifest.py for
the layout). Opening reads the manifest, the per-chunk doclens, the codec of a compressed
index and file headers only."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latesearch._atomic import replace_folder
from latesearch.errors import ConfigError, IndexCorruptError, InputError, StaleIndexError
from latesearch.indexing.checksums import (
    CHECKSUMS,
    VerifyReport,
    check_digests,
    check_sizes,
    component_records,
    damaged,
    file_digest,
    files_under,
    seal_component,
)
from latesearch.indexing.codec import ResidualCodec
from latesearch.indexing.docstore import DocIdList, DocStore
from latesearch.indexing.files import chunk_digest, folder_bytes, load_npy, writer_active
from latesearch.indexing.ivf import InvertedFile, ranges
from latesearch.indexing.manifest import (
    CODEC_DIR,
    DOC_ID_OFFSETS,
    DOC_IDS,
    DOCSTORE,
    IVF_DIR,
    MANIFEST,
    ChunkInfo,
    Manifest,
    component_dirs,
)
from latesearch.indexing.summary import BuildSummary
from latesearch.modeling.config import ColBERTConfig
from latesearch.modeling.config import from_dict as colbert_config_from_dict
from latesearch.scoring.precision import as_float32

SOURCES = ("auto", "full", "residual")
# rows per block of `vector_blocks`: 1,024 float32 vectors of dim 128 (512 KiB) stay in the
# cache between being widened and being multiplied (faster than whole arrays when other
# work has emptied the caches, as between a server's queries)
VECTOR_BLOCK = 1024
_OPEN_ATTEMPTS, _OPEN_PAUSE = 20, 0.05  # opening during an update's publish: about 1 s
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64}


class UnknownDocumentError(InputError, KeyError):
    """A document id that the index does not hold."""

    __str__ = Exception.__str__


def building_folder(folder: str | os.PathLike) -> Path:
    """Where a build of `folder` is staged: `<folder>.building` next to it."""
    folder = Path(folder)
    return folder.with_name(folder.name + ".building")


class IndexStore:
    """A ColBERT index on disk: per chunk the uncompressed vectors and/or the centroid codes
and packed residuals (memory-mapped), doclens; the codec and inverted file of a compressed
index; ids and texts. `flat` / `gather` read documents' vectors from either."""

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
        self._chunks: list[np.memmap | None] = []  # uncompressed vectors, where stored
        self._codes: list[np.memmap] = []
        self._residuals: list[np.memmap] = []
        self._dense: list[np.memmap] = []  # pooled vectors per document, with a dense view
        doclens = []
        for chunk in manifest.chunks:
            if manifest.dense_dim:
                shape = (chunk.n_docs, manifest.dense_dim)
                self._dense.append(load_npy(folder / chunk.dense, dtype="float16", shape=shape,
                                            mmap=True))  # fmt: skip
            if chunk.embeddings:
                shape = (chunk.n_embeddings, self.dim)
                self._chunks.append(
                    load_npy(folder / chunk.embeddings, dtype=manifest.dtype, shape=shape,
                             mmap=True)  # fmt: skip
                )
            else:
                self._chunks.append(None)
            if self.codec is not None:
                codec, n = self.codec, chunk.n_embeddings
                codes = load_npy(folder / chunk.codes, dtype=codec.codes_dtype.name,
                                 shape=(n,), mmap=True)  # fmt: skip
                residuals = load_npy(folder / chunk.residuals, dtype="uint8",
                                     shape=(n, codec.packed_dim), mmap=True)  # fmt: skip
                self._codes.append(codes)
                self._residuals.append(residuals)
            lens_path = folder / chunk.doclens
            lens = load_npy(lens_path, dtype="int32", shape=(chunk.n_docs,), mmap=False)
            if int(lens.sum(dtype=np.int64)) != chunk.n_embeddings or (lens < 0).any():
                raise IndexCorruptError(
                    f"{lens_path}: doclens sum to {int(lens.sum())}, "
                    f"chunk has {chunk.n_embeddings} embeddings"
                )
            doclens.append(lens)
        self.doclens: np.ndarray = (
            np.concatenate(doclens) if doclens else np.zeros(0, dtype=np.int32)
        )
        self.offsets: np.ndarray = np.zeros(self.n_docs + 1, dtype=np.int64)
        np.cumsum(self.doclens, out=self.offsets[1:])
        self._chunk_first_doc = np.array([c.first_doc for c in manifest.chunks], dtype=np.int64)
        self.doc_ids = _doc_id_list(folder, self.n_docs)
        self._docstore = _open_docstore(folder / DOCSTORE, self.n_docs)
        self._token_to_doc: np.ndarray | None = None
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
        self._chunks, self._codes, self._residuals, self._ivf = [], [], [], None
        self._dense = []
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
    def has_full(self) -> bool:
        """Whether the uncompressed vectors are on disk (always, unless compressed without
        keep_full)."""
        return all(array is not None for array in self._chunks)

    @property
    def has_dense(self) -> bool:
        """Whether the index holds a pooled dense vector per document (a dense view)."""
        return bool(self.manifest.dense_dim)

    @property
    def dense_source(self) -> str | None:
        """Where the dense vectors come from ("pooled", "backbone"), None without them."""
        return self.manifest.index_config.get("dense") if self.has_dense else None

    def dense_chunks(self) -> list[np.memmap]:
        """Each chunk's (n_docs, dense_dim) float16 pooled vectors (memory-mapped)."""
        if not self.has_dense:
            raise ConfigError(
                f"{self.folder}: this index has no dense view (build it with "
                "dense='pooled' or 'backbone', CLI --dense)"
            )
        return self._dense

    def dense_scores(self, queries: np.ndarray) -> np.ndarray:
        """(n_queries, n_docs) cosine of unit query vectors against every document's
        pooled vector: exact, a matrix product per chunk."""
        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        parts = [(q @ torch.from_numpy(as_float32(np.asarray(d))).T).numpy()
                 for d in self.dense_chunks()]  # fmt: skip
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(q), 0), np.float32)

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

    def verify(self) -> VerifyReport:
        """Re-hash every file of the index against its checksums (reads the whole index);
        IndexCorruptError names the first that differs. The report counts what was read
        and lists the files no checksum covers (written by an older latesearch)."""
        report, covered = VerifyReport(), {MANIFEST}  # the manifest is validated on open
        for i, info in enumerate(self.manifest.chunks):
            report.bytes += self.verify_chunk(i)
            covered.update(name for name, digest in info.digests().items() if digest)
        report.bytes += self.verify_codec()
        covered.update((self.manifest.codec or {}).get("sha256", {}))
        report.bytes += check_digests(self.folder, self.manifest.files)
        covered.update(self.manifest.files)
        for component in component_dirs(self.folder):
            records = component_records(component)
            if records is not None:
                report.bytes += check_digests(component, records)
                prefix = f"{component.name}/"
                covered.update(prefix + name for name in [*records, CHECKSUMS])
        present = [n for n in files_under(self.folder) if not n.startswith(".")]
        report.unchecked = [n for n in present if n not in covered]
        report.files = len(present) - len(report.unchecked)
        return report

    def verify_chunk(self, i: int) -> int:
        """Re-hash chunk `i`'s vectors, codes, residuals and doclens against the manifest;
        the bytes hashed."""
        info = self.manifest.chunks[i]
        span = slice(info.first_doc, info.first_doc + info.n_docs)
        arrays = [(info.embeddings, self._chunks[i], info.sha256),
                  (info.doclens, self.doclens[span], info.doclens_sha256)]  # fmt: skip
        if self.codec is not None:
            arrays += [(info.codes, self._codes[i], info.codes_sha256),
                       (info.residuals, self._residuals[i], info.residuals_sha256)]  # fmt: skip
        if self._dense:
            arrays.append((info.dense, self._dense[i], info.dense_sha256))
        hashed = 0
        for name, array, expected in arrays:
            if array is not None and expected:
                if chunk_digest(array) != expected:
                    raise IndexCorruptError(damaged(self.folder / name))
                hashed += array.nbytes
        return hashed

    def verify_codec(self) -> int:
        """Re-hash the codec and inverted-file files of a compressed index; bytes hashed."""
        hashed = 0
        for name, expected in (self.manifest.codec or {}).get("sha256", {}).items():
            path = self.folder / name
            if not path.is_file() or file_digest(path) != expected:
                raise IndexCorruptError(damaged(path) if path.is_file() else f"{path}: missing")
            hashed += path.stat().st_size
        return hashed

    def verify_file(self, name: str) -> None:
        """Re-hash one file recorded in the manifest's `files` (nothing where it has no
        record: an index written before every file had one)."""
        if name in self.manifest.files:
            check_digests(self.folder, {name: self.manifest.files[name]})

    # ------------------------------------------------------------------ ids and texts
    def doc_index(self, doc_id: str) -> int:
        """Internal index of a document id; UnknownDocumentError (an InputError) if absent."""
        found = self._docstore.indices([doc_id])
        if doc_id not in found:
            raise UnknownDocumentError(f"unknown document id {doc_id!r}", path=str(self.folder))
        return found[doc_id]

    def doc_indices(
        self, doc_ids: Sequence[str], *, missing: str = "raise"
    ) -> tuple[np.ndarray, list[str]]:
        """Indices of `doc_ids` in the order given, and the ids not in the index.

        missing="raise": an unknown id is an UnknownDocumentError; "skip": left out.
        """
        if missing not in ("raise", "skip"):
            raise ConfigError(f"missing must be 'raise' or 'skip', got {missing!r}")
        ids = list(doc_ids)
        found = self._docstore.indices(ids)
        unknown = [i for i in ids if i not in found]
        if unknown and missing == "raise":
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise UnknownDocumentError(
                f"unknown document id {unknown[0]!r}{more}", path=str(self.folder)
            )
        indices = np.array([found[i] for i in ids if i in found], dtype=np.int64)
        return indices, unknown

    def matching(self, spec: Any) -> np.ndarray:
        """Sorted indices of the documents whose metadata match the filter `spec`."""
        return self._docstore.matching(spec)

    def documents(self, doc_indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """{doc_id, title, text, metadata} of each document, in the order asked."""
        return self._docstore.documents(np.asarray(doc_indices, dtype=np.int64).reshape(-1))

    # ------------------------------------------------------------------ embeddings
    def embeddings_flat(self) -> list[np.memmap]:
        """The uncompressed chunk arrays, (n_tokens_chunk, dim) each, memory-mapped, in
        token order (IndexCorruptError on a compressed index without them)."""
        return [self._full(i) for i in range(len(self._chunks))]

    def codes_flat(self) -> list[np.memmap]:
        """The chunks' centroid codes, memory-mapped (compressed indexes)."""
        return list(self._codes)

    def residuals_flat(self) -> list[np.memmap]:
        """The chunks' packed residuals, memory-mapped (compressed indexes)."""
        return list(self._residuals)

    def iter_embedding_chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first global token offset, (n, dim) array) per chunk, for building ANN indexes."""
        for i, info in enumerate(self.manifest.chunks):
            yield info.first_token, self._full(i)

    def token_range(self, start: int, stop: int) -> np.ndarray:
        """Embeddings of global tokens [start, stop) as one array (copied if it spans chunks);
        decompressed (float32) where the index keeps no uncompressed vectors."""
        start, stop = max(0, start), min(stop, self.n_embeddings)
        parts = []
        for i, info in enumerate(self.manifest.chunks):
            lo, hi = max(start, info.first_token), min(stop, info.first_token + info.n_embeddings)
            if lo < hi:
                rows = slice(lo - info.first_token, hi - info.first_token)
                if self._chunks[i] is not None:
                    parts.append(self._chunks[i][rows])
                else:
                    parts.append(self._decompress(i, np.arange(rows.start, rows.stop)))
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return np.zeros((0, self.dim), dtype=self.dtype)
        return np.concatenate(parts)

    def token_to_doc(self) -> np.ndarray:
        """(n_embeddings,) int32 document index of every embedding (computed once, cached)."""
        if self._token_to_doc is None:
            self._token_to_doc = np.repeat(
                np.arange(self.n_docs, dtype=np.int32), self.doclens.astype(np.int64)
            )
        return self._token_to_doc

    def docs_of_tokens(self, token_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Document index of each global token id, without materializing token_to_doc."""
        tokens = np.asarray(token_ids, dtype=np.int64)
        return np.searchsorted(self.offsets, tokens, side="right") - 1

    def flat(
        self, doc_indices: Sequence[int] | np.ndarray, *, source: str = "auto"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(vectors (sum of lengths, dim), lengths (n,)) of documents, back to back in the
        order asked. `source`: "full" (stored dtype), "residual" (decompressed, float32),
        or "auto" (full where stored, else decompressed)."""
        idx = self._check_indices(doc_indices)
        source = self.check_source(source)
        lens = self.doclens[idx].astype(np.int64)
        dtype = np.float32 if source == "residual" else np.dtype(self.dtype)
        out = np.empty((int(lens.sum()), self.dim), dtype=dtype)
        for c, out_rows, rows in self._rows_by_chunk(idx, lens):
            if source == "residual":
                out[out_rows] = self._decompress(c, rows)
            else:
                take_rows(self._full(c), rows, out, out_rows)
        return out, lens

    def vector_blocks(
        self, doc_indices: Sequence[int] | np.ndarray, *, source: str = "auto",
        rows: int = VECTOR_BLOCK,
    ) -> Iterator[torch.Tensor]:  # fmt: skip
        """The documents' vectors back to back in the order asked (as `flat`), as float32
        tensors of about `rows` rows (pieces from several chunks are joined, so a block
        holds at most 2 * rows - 1): each block is gathered and widened (or decompressed)
        when asked for, so it is still in cache for what the caller does with it next.
        Documents not in index order are gathered whole first."""
        idx = self._check_indices(doc_indices)
        source = self.check_source(source)
        parts = list(self._rows_by_chunk(idx, self.doclens[idx].astype(np.int64)))
        if any(not isinstance(out_rows, slice) for _, out_rows, _ in parts):
            vectors, _ = self.flat(idx, source=source)
            for start in range(0, len(vectors), rows):
                yield torch.from_numpy(as_float32(vectors[start : start + rows]))
            return
        pending: list[torch.Tensor] = []
        count = 0
        for piece in self._pieces(sorted(parts, key=lambda part: part[1].start), source, rows):
            pending.append(piece)
            count += len(piece)
            if count >= rows:
                yield torch.cat(pending).float() if len(pending) > 1 else pending[0].float()
                pending, count = [], 0
        if pending:
            yield torch.cat(pending).float()

    def _pieces(self, parts: list[tuple[int, Any, np.ndarray]], source: str,
                rows: int) -> Iterator[torch.Tensor]:  # fmt: skip
        """Each chunk's rows of `parts`, at most `rows` at a time, as stored (float16 or
        float32) or decompressed (float32)."""
        for c, _, chunk_rows in parts:
            if source == "residual":
                for start in range(0, chunk_rows.size, rows):
                    yield torch.from_numpy(self._decompress(c, chunk_rows[start : start + rows]))
                continue
            array = _readonly_tensor(self._full(c))
            index = torch.from_numpy(chunk_rows)
            for start in range(0, chunk_rows.size, rows):
                yield torch.index_select(array, 0, index[start : start + rows])

    def codes(self, doc_indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(centroid codes of the documents' tokens, back to back (int64), lengths (n,))."""
        if self.codec is None:
            raise IndexCorruptError(f"{self.folder}: an uncompressed index has no codes")
        idx = self._check_indices(doc_indices)
        lens = self.doclens[idx].astype(np.int64)
        out = np.empty(int(lens.sum()), dtype=np.int64)
        for c, out_rows, rows in self._rows_by_chunk(idx, lens):
            out[out_rows] = self._codes[c][rows]  # uint16/int32 to int64
        return out, lens

    def residuals(self, doc_indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(sum of lengths, packed_dim) uint8 packed residuals of the documents' tokens, back
        to back in the order asked (as `codes`)."""
        if self.codec is None:
            raise IndexCorruptError(f"{self.folder}: an uncompressed index has no residuals")
        idx = self._check_indices(doc_indices)
        lens = self.doclens[idx].astype(np.int64)
        out = np.empty((int(lens.sum()), self.codec.packed_dim), dtype=np.uint8)
        for c, out_rows, rows in self._rows_by_chunk(idx, lens):
            take_rows(self._residuals[c], rows, out, out_rows)
        return out

    def gather(
        self,
        doc_indices: Sequence[int] | np.ndarray | torch.Tensor,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        *,
        source: str = "auto",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded embeddings (n, Lmax, dim) and mask (n, Lmax) of documents, in the order
        asked. dtype None keeps the stored dtype (float32 when decompressed); device None is
        CPU. `source` as in `flat`."""
        if isinstance(doc_indices, torch.Tensor):
            doc_indices = doc_indices.cpu().numpy()
        flat, lens = self.flat(doc_indices, source=source)
        width = int(lens.max()) if lens.size else 0
        mask = torch.from_numpy(np.arange(width)[None, :] < lens[:, None])
        on_cpu = device is None or torch.device(device).type == "cpu"
        np_dtype = _NUMPY_DTYPES.get(dtype, flat.dtype) if on_cpu else flat.dtype
        out = np.zeros((lens.size, width, self.dim), dtype=np_dtype)
        out[mask.numpy()] = flat
        embeddings = torch.from_numpy(out)
        if dtype is not None or device is not None:
            embeddings = embeddings.to(device=device, dtype=dtype)
            mask = mask.to(device=device)
        return embeddings, mask

    def _check_indices(self, doc_indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(doc_indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_docs):
            bad = int(idx[(idx < 0) | (idx >= self.n_docs)][0])
            raise IndexError(f"document index {bad} out of range (n_docs={self.n_docs})")
        return idx

    def check_source(self, source: str) -> str:
        """The vectors `source` ("auto", "full", "residual") resolves to here; ConfigError
        if unknown or impossible for this index."""
        if source not in SOURCES:
            raise ConfigError(f"source must be one of {SOURCES}, got {source!r}")
        if source == "auto":
            return "full" if self.has_full else "residual"
        if source == "residual" and self.codec is None:
            raise ConfigError(f"{self.folder}: an uncompressed index has no residuals")
        return source

    def _rows_by_chunk(
        self, idx: np.ndarray, lens: np.ndarray
    ) -> Iterator[tuple[int, slice | np.ndarray, np.ndarray]]:
        """(chunk, rows of the output, rows of the chunk) for documents `idx` laid back to
        back in the order asked. The output rows are a slice where they form one run (the
        usual case: sorted documents), else an index array."""
        out_starts = np.concatenate([[0], np.cumsum(lens)[:-1]]) if lens.size else lens
        chunk_of = np.searchsorted(self._chunk_first_doc, idx, side="right") - 1
        if not idx.size:
            return
        order = np.argsort(chunk_of, kind="stable")  # one pass, however many chunks
        touched, firsts = np.unique(chunk_of[order], return_index=True)
        for c, sel in zip(touched.tolist(), np.split(order, firsts[1:]), strict=True):
            first_token = self.manifest.chunks[c].first_token
            starts = self.offsets[idx[sel]] - first_token
            if int(sel[-1] - sel[0]) + 1 == sel.size:  # consecutive documents of the output
                begin = int(out_starts[sel[0]])
                out_rows: slice | np.ndarray = slice(begin, begin + int(lens[sel].sum()))
            else:
                out_rows = ranges(out_starts[sel], out_starts[sel] + lens[sel])
            yield c, out_rows, ranges(starts, starts + lens[sel])

    def _full(self, chunk: int) -> np.ndarray:
        array = self._chunks[chunk]
        if array is None:
            raise IndexCorruptError(
                f"{self.folder}: this compressed index keeps no uncompressed vectors "
                "(build it with keep_full=True / --keep-full to keep them)"
            )
        return array

    def _decompress(self, chunk: int, rows: np.ndarray) -> np.ndarray:
        assert self.codec is not None
        return self.codec.decompress(self._codes[chunk][rows], self._residuals[chunk][rows])

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
        config = colbert_config_from_dict(manifest.colbert_config, source="colbert_config")
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


def take_rows(array: np.ndarray, rows: np.ndarray, out: np.ndarray,
              out_rows: slice | np.ndarray) -> None:  # fmt: skip
    """out[out_rows] = array[rows] for arrays of one dtype, gathered by torch: NumPy's fancy
    indexing of a memory map was 4x slower here (it copies twice, row by row); where
    `out_rows` is a slice the rows land in `out` directly."""
    source = _readonly_tensor(array)
    index = torch.from_numpy(rows)
    if isinstance(out_rows, slice):
        torch.index_select(source, 0, index, out=torch.from_numpy(out[out_rows]))
    else:
        out[out_rows] = torch.index_select(source, 0, index).numpy()


def _readonly_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over `array` (often a read-only memory map), only ever read: torch's
    warning about non-writable arrays is silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)
