"""`VectorReader`: the token vectors of an index's chunks, memory-mapped: uncompressed
(fp16/fp32) where stored, centroid codes and packed residuals in a compressed index, and
the doclens that lay documents out over them. Reads documents' vectors from either."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latesearch.compressed.arrays import load_npy
from latesearch.compressed.codec import ResidualCodec, dequantize_norms
from latesearch.compressed.ivf import ranges
from latesearch.errors import ConfigError, IndexCorruptError
from latesearch.indexing.manifest import ChunkInfo, Manifest
from latesearch.scoring.precision import as_float32

SOURCES = ("auto", "full", "residual")
# rows per block of `vector_blocks`: 1,024 float32 vectors of dim 128 (512 KiB) stay in the
# cache between being widened and being multiplied (faster than whole arrays when other
# work has emptied the caches, as between a server's queries)
VECTOR_BLOCK = 1024
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64}


class VectorReader:
    """Per chunk the uncompressed vectors and/or the centroid codes and packed residuals
    (memory-mapped) and the doclens; `flat` / `gather` / `vector_blocks` read documents'
    vectors from either."""

    def __init__(self, folder: Path, manifest: Manifest, codec: ResidualCodec | None) -> None:
        self.folder, self.manifest, self.codec = folder, manifest, codec
        self.dim, self.dtype = manifest.dim, manifest.dtype
        self._chunks: list[np.memmap | None] = []  # uncompressed vectors, where stored
        self._codes: list[np.memmap] = []
        self._residuals: list[np.memmap] = []
        self._norms: list[np.memmap | None] = []  # stored token norms, where coded with them
        doclens = [self._open_chunk(chunk) for chunk in manifest.chunks]
        self.doclens: np.ndarray = (
            np.concatenate(doclens) if doclens else np.zeros(0, dtype=np.int32)
        )
        self.n_docs = len(self.doclens)
        self.offsets: np.ndarray = np.zeros(self.n_docs + 1, dtype=np.int64)
        np.cumsum(self.doclens, out=self.offsets[1:])
        self._chunk_first_doc = np.array([c.first_doc for c in manifest.chunks], dtype=np.int64)
        self._token_to_doc: np.ndarray | None = None

    def _open_chunk(self, chunk: ChunkInfo) -> np.ndarray:
        """Memory-map a chunk's vectors, codes and residuals; its doclens, checked."""
        folder, n = self.folder, chunk.n_embeddings
        if chunk.embeddings:
            self._chunks.append(load_npy(folder / chunk.embeddings, dtype=self.dtype,
                                         shape=(n, self.dim), mmap=True))  # fmt: skip
        else:
            self._chunks.append(None)
        if self.codec is not None:
            codec = self.codec
            self._codes.append(load_npy(folder / chunk.codes, dtype=codec.codes_dtype.name,
                                        shape=(n,), mmap=True))  # fmt: skip
            self._residuals.append(load_npy(folder / chunk.residuals, dtype="uint8",
                                            shape=(n, codec.packed_dim), mmap=True))  # fmt: skip
            self._norms.append(load_npy(folder / chunk.norms, dtype="uint8", shape=(n,),
                                        mmap=True) if chunk.norms else None)  # fmt: skip
        lens_path = folder / chunk.doclens
        lens = load_npy(lens_path, dtype="int32", shape=(chunk.n_docs,), mmap=False)
        if int(lens.sum(dtype=np.int64)) != n or (lens < 0).any():
            raise IndexCorruptError(
                f"{lens_path}: doclens sum to {int(lens.sum())}, chunk has {n} embeddings"
            )
        return lens

    def close(self) -> None:
        """Release the memory maps."""
        self._chunks, self._codes, self._residuals, self._norms = [], [], [], []

    @property
    def has_full(self) -> bool:
        """Whether the uncompressed vectors are on disk (always, unless compressed without
        keep_full)."""
        return all(array is not None for array in self._chunks)

    def chunk_arrays(self, i: int) -> dict[str, np.ndarray | None]:
        """Chunk `i`'s arrays by their `ChunkInfo` field: embeddings (None where not kept),
        codes and residuals (compressed indexes)."""
        arrays: dict[str, np.ndarray | None] = {"embeddings": self._chunks[i]}
        if self.codec is not None:
            arrays.update(codes=self._codes[i], residuals=self._residuals[i])
            if self._norms[i] is not None:
                arrays["norms"] = self._norms[i]
        return arrays

    # ------------------------------------------------------------------ whole chunks
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

    def norms_flat(self) -> list[np.memmap | None]:
        """The chunks' stored token norms, memory-mapped (None for a chunk coded without)."""
        return list(self._norms)

    def iter_embedding_chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first global token offset, (n, dim) array) per chunk, for building ANN indexes."""
        for i, info in enumerate(self.manifest.chunks):
            yield info.first_token, self._full(i)

    # ------------------------------------------------------------------ tokens
    def token_range(self, start: int, stop: int) -> np.ndarray:
        """Embeddings of global tokens [start, stop) as one array (copied if it spans chunks);
        decompressed (float32) where the index keeps no uncompressed vectors."""
        start, stop = max(0, start), min(stop, self.manifest.n_embeddings)
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

    # ------------------------------------------------------------------ documents
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

    def coded(self, doc_indices: Sequence[int] | np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """The documents' tokens as scoring from the codes reads them, back to back in the
        order asked, in one pass over the chunks: centroid codes (int64), packed residuals
        (uint8) and the norms decompressing divides by (float32): the stored ones where the
        chunk has them, else computed from those codes and residuals (`ResidualCodec.norms`)."""
        if self.codec is None:
            raise IndexCorruptError(f"{self.folder}: an uncompressed index has no codes")
        idx = self._check_indices(doc_indices)
        lens = self.doclens[idx].astype(np.int64)
        n = int(lens.sum())
        codes = np.empty(n, dtype=np.int64)
        packed = np.empty((n, self.codec.packed_dim), dtype=np.uint8)
        norms = np.empty(n, dtype=np.float32)
        for c, out_rows, rows in self._rows_by_chunk(idx, lens):
            codes[out_rows] = self._codes[c][rows]
            take_rows(self._residuals[c], rows, packed, out_rows)
            stored = self._norms[c]
            norms[out_rows] = (self.codec.norms(codes[out_rows], packed[out_rows])
                               if stored is None else dequantize_norms(stored[rows]))  # fmt: skip
        return codes, packed, norms

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

    def _check_indices(self, doc_indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(doc_indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_docs):
            bad = int(idx[(idx < 0) | (idx >= self.n_docs)][0])
            raise IndexError(f"document index {bad} out of range (n_docs={self.n_docs})")
        return idx

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
        norms = self._norms[chunk]
        return self.codec.decompress(self._codes[chunk][rows], self._residuals[chunk][rows],
                                     None if norms is None else norms[rows])  # fmt: skip


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
