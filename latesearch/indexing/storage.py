"""`IndexStore`: a finished index folder, validated and memory-mapped (see manifest.py for
the layout). Opening reads the manifest, the per-chunk doclens and file headers only."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latesearch._atomic import replace_folder
from latesearch.errors import ConfigError, IndexCorruptError, InputError
from latesearch.indexing.docstore import DocIdList, DocStore
from latesearch.indexing.files import chunk_digest, folder_bytes
from latesearch.indexing.manifest import (
    DOC_ID_OFFSETS,
    DOC_IDS,
    DOCSTORE,
    MANIFEST,
    ChunkInfo,
    Manifest,
)
from latesearch.indexing.summary import BuildSummary
from latesearch.modeling.config import ColBERTConfig
from latesearch.modeling.config import from_dict as colbert_config_from_dict

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64}


class UnknownDocumentError(InputError, KeyError):
    """A document id that the index does not hold."""

    __str__ = Exception.__str__


def building_folder(folder: str | os.PathLike) -> Path:
    """Where a build of `folder` is staged: `<folder>.building` next to it."""
    folder = Path(folder)
    return folder.with_name(folder.name + ".building")


def load_npy(path: Path, *, dtype: str, shape: tuple[int, ...], mmap: bool) -> np.ndarray:
    """Load a .npy file checking dtype, shape and exact file size; IndexCorruptError if not."""
    if not path.is_file():
        raise IndexCorruptError(f"{path}: missing")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise IndexCorruptError(f"{path}: unreadable or truncated ({err})") from None
    if array.dtype != np.dtype(dtype) or array.shape != shape:
        raise IndexCorruptError(
            f"{path}: holds {array.dtype}{list(array.shape)}, expected {dtype}{list(shape)}"
        )
    if isinstance(array, np.memmap) and path.stat().st_size != array.offset + array.nbytes:
        raise IndexCorruptError(f"{path}: file size does not match its header")
    return array


class IndexStore:
    """A ColBERT index on disk: embeddings (memory-mapped chunks), doclens, ids, texts."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder = folder
        self.manifest = manifest
        self.colbert_config = _colbert_config(folder, manifest)
        self._chunks: list[np.memmap] = []
        doclens = []
        for chunk in manifest.chunks:
            emb_path, lens_path = folder / chunk.embeddings, folder / chunk.doclens
            shape = (chunk.n_embeddings, self.dim)
            self._chunks.append(load_npy(emb_path, dtype=manifest.dtype, shape=shape, mmap=True))
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
        self._docstore = DocStore(folder / DOCSTORE)
        _check_docstore(self._docstore, self.n_docs)
        self._token_to_doc: np.ndarray | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, folder: str | os.PathLike) -> IndexStore:
        """Validate and memory-map an index folder; IndexCorruptError names what is wrong."""
        folder = Path(folder)
        if not folder.is_dir():
            hint = ""
            if building_folder(folder).is_dir():
                hint = f" (an unfinished build is in {building_folder(folder)}: use --resume)"
            for old in sorted(folder.parent.glob(f".{folder.name}.old-*")):
                if (old / MANIFEST).is_file():  # a crash inside replace_folder's two renames
                    hint = (
                        f" (a crash during an update left the previous complete version in "
                        f"{old}: rename it to {folder.name})"
                    )
            raise IndexCorruptError(f"{folder}: no index folder{hint}")
        return cls(folder, Manifest.read(folder))

    def close(self) -> None:
        """Release memory maps and database connections."""
        self._chunks = []
        self._docstore.close()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"IndexStore({str(self.folder)!r}, n_docs={self.n_docs}, "
            f"n_embeddings={self.n_embeddings}, dim={self.dim}, dtype={self.dtype})"
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

    def verify(self) -> None:
        """Re-hash every chunk's embeddings against the manifest (reads the whole index)."""
        for info, array in zip(self.manifest.chunks, self._chunks, strict=True):
            if info.sha256 and chunk_digest(array) != info.sha256:
                raise IndexCorruptError(f"{self.folder / info.embeddings}: checksum mismatch")

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

    def documents(self, doc_indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """{doc_id, title, text} of each document, in the order asked."""
        return self._docstore.documents(np.asarray(doc_indices, dtype=np.int64).reshape(-1))

    # ------------------------------------------------------------------ embeddings
    def embeddings_flat(self) -> list[np.memmap]:
        """The chunk arrays, (n_tokens_chunk, dim) each, memory-mapped, in token order."""
        return list(self._chunks)

    def iter_embedding_chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first global token offset, (n, dim) array) per chunk, for building ANN indexes."""
        for info, array in zip(self.manifest.chunks, self._chunks, strict=True):
            yield info.first_token, array

    def token_range(self, start: int, stop: int) -> np.ndarray:
        """Embeddings of global tokens [start, stop) as one array (copied if it spans chunks)."""
        start, stop = max(0, start), min(stop, self.n_embeddings)
        parts = []
        for info, array in zip(self.manifest.chunks, self._chunks, strict=True):
            lo, hi = max(start, info.first_token), min(stop, info.first_token + info.n_embeddings)
            if lo < hi:
                parts.append(array[lo - info.first_token : hi - info.first_token])
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

    def gather(
        self,
        doc_indices: Sequence[int] | np.ndarray | torch.Tensor,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded embeddings (n, Lmax, dim) and mask (n, Lmax) of documents, in the order
        asked. dtype None keeps the stored dtype; device None is CPU."""
        if isinstance(doc_indices, torch.Tensor):
            doc_indices = doc_indices.cpu().numpy()
        idx = np.asarray(doc_indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_docs):
            bad = int(idx[(idx < 0) | (idx >= self.n_docs)][0])
            raise IndexError(f"document index {bad} out of range (n_docs={self.n_docs})")
        lens = self.doclens[idx].astype(np.int64)
        width = int(lens.max()) if idx.size else 0
        # Copy straight into the asked dtype when it is a CPU one (one pass, no temporary).
        on_cpu = device is None or torch.device(device).type == "cpu"
        np_dtype = _NUMPY_DTYPES.get(dtype, self.dtype) if on_cpu else self.dtype
        out = np.zeros((idx.size, width, self.dim), dtype=np_dtype)
        chunk_of = np.searchsorted(self._chunk_first_doc, idx, side="right") - 1
        for c in np.unique(chunk_of):
            rows = np.nonzero(chunk_of == c)[0]
            chunk = self._chunks[c]
            starts = self.offsets[idx[rows]] - self.manifest.chunks[c].first_token
            # one slice copy per document: several times faster than fancy indexing per token
            for row, start, n in zip(rows.tolist(), starts.tolist(), lens[rows].tolist(),
                                     strict=True):  # fmt: skip
                out[row, :n] = chunk[start : start + n]
        mask = torch.from_numpy(np.arange(width)[None, :] < lens[:, None])
        embeddings = torch.from_numpy(out)
        if dtype is not None or device is not None:
            embeddings = embeddings.to(device=device, dtype=dtype)
            mask = mask.to(device=device)
        return embeddings, mask

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
    return DocIdList(blob, offsets)


def _check_docstore(store: DocStore, n_docs: int) -> None:
    if not store.path.is_file():
        raise IndexCorruptError(f"{store.path}: missing")
    try:
        last = store.max_idx()
    except sqlite3.DatabaseError as err:
        raise IndexCorruptError(f"{store.path}: unreadable ({err})") from None
    if last != n_docs - 1:
        raise IndexCorruptError(f"{store.path}: holds {last + 1} documents, expected {n_docs}")
