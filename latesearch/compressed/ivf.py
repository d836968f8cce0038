"""The inverted file of a compressed index: for each centroid, the sorted documents that hold
at least one token assigned to it (PLAID's candidate lists), as two memory-mappable arrays:
`ivf/docs.npy` (document indices, concatenated: uint16 up to 65,536 documents, else int32)
and `ivf/offsets.npy` (int64, n_centroids + 1)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latesearch.compressed.arrays import READ_ERRORS, load_npy, save_npy
from latesearch.errors import IndexCorruptError

DOCS_FILE, OFFSETS_FILE = "docs.npy", "offsets.npy"


@dataclass
class InvertedFile:
    """Centroid -> documents. `docs[offsets[c]:offsets[c + 1]]` are centroid c's."""

    docs: np.ndarray  # (n_pairs,) uint16 or int32 (`docs_dtype`)
    offsets: np.ndarray  # (n_centroids + 1,) int64

    @property
    def n_centroids(self) -> int:
        return len(self.offsets) - 1

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def docs_of(self, centroids: np.ndarray) -> np.ndarray:
        """The sorted unique documents of the given centroids."""
        centroids = np.asarray(centroids, dtype=np.int64).reshape(-1)
        if centroids.size == 0:
            return np.zeros(0, dtype=np.int64)
        starts, stops = self.offsets[centroids], self.offsets[centroids + 1]
        return np.unique(self.docs[ranges(starts, stops)]).astype(np.int64)

    def pairs(self, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(documents, position of their centroid in `centroids`) for every listed pair."""
        centroids = np.asarray(centroids, dtype=np.int64).reshape(-1)
        starts, stops = self.offsets[centroids], self.offsets[centroids + 1]
        owner = np.repeat(np.arange(centroids.size), stops - starts)
        return self.docs[ranges(starts, stops)].astype(np.int64), owner

    def by_document(self, n_docs: int) -> DocumentCentroids:
        """The same pairs document by document: each document's distinct centroids,
        ascending (one stable sort of the pairs; held in memory, 2 bytes a pair up to
        65,536 centroids)."""
        docs = np.asarray(self.docs)
        owner = np.repeat(np.arange(self.n_centroids, dtype=codes_dtype(self.n_centroids)),
                          self.lengths())  # fmt: skip
        order = np.argsort(docs, kind="stable")  # lists are sorted: centroids stay ascending
        offsets = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(docs, minlength=n_docs), out=offsets[1:])
        return DocumentCentroids(owner[order], offsets)

    @classmethod
    def build(
        cls, parts: Iterable[tuple[np.ndarray, np.ndarray]], n_centroids: int, n_docs: int
    ) -> InvertedFile:
        """From (codes (n_tokens,), doc of each token (n_tokens,)) parts; a document's tokens
        may come in several parts, in any order."""
        keys = []
        for codes, docs in parts:
            key = np.asarray(codes, np.int64) << 32 | np.asarray(docs, np.int64)
            keys.append(np.unique(key))
        merged = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        centroid = merged >> 32
        offsets = np.zeros(n_centroids + 1, dtype=np.int64)
        np.cumsum(np.bincount(centroid, minlength=n_centroids), out=offsets[1:])
        docs = merged & 0xFFFFFFFF
        return cls(docs.astype(docs_dtype(n_docs)), offsets)

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_npy(folder / DOCS_FILE, self.docs)
        save_npy(folder / OFFSETS_FILE, self.offsets)

    @classmethod
    def load(
        cls, folder: str | os.PathLike, *, n_centroids: int, n_docs: int, mmap: bool = True
    ) -> InvertedFile:
        folder = Path(folder)
        offsets = load_npy(folder / OFFSETS_FILE, dtype="int64", shape=(n_centroids + 1,),
                           mmap=False)  # fmt: skip
        n_pairs = int(offsets[-1])
        if offsets[0] != 0 or (np.diff(offsets) < 0).any():
            raise IndexCorruptError(f"{folder / OFFSETS_FILE}: offsets are not increasing")
        dtype = docs_dtype(n_docs).name
        try:  # int32 is read at any size (wider than needed, still correct)
            if np.load(folder / DOCS_FILE, mmap_mode="r").dtype == np.int32:
                dtype = "int32"
        except READ_ERRORS:
            pass  # load_npy below names the problem
        docs = load_npy(folder / DOCS_FILE, dtype=dtype, shape=(n_pairs,), mmap=mmap)
        if n_pairs and not mmap and (docs.min() < 0 or docs.max() >= n_docs):
            raise IndexCorruptError(f"{folder / DOCS_FILE}: document index out of range")
        return cls(docs, offsets)


@dataclass
class DocumentCentroids:
    """Document -> its distinct centroids: `codes[offsets[d]:offsets[d + 1]]` are document
    d's (the inverted file read the other way; a document's duplicate codes count once, which
    changes no MaxSim over centroids)."""

    codes: np.ndarray  # (n_pairs,) uint16 or int32
    offsets: np.ndarray  # (n_docs + 1,) int64

    def of(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the documents' centroids back to back (int64), their counts) for `docs`."""
        docs = np.asarray(docs, dtype=np.int64)
        starts, stops = self.offsets[docs], self.offsets[docs + 1]
        return self.codes[ranges(starts, stops)].astype(np.int64), stops - starts


def codes_dtype(n_centroids: int) -> np.dtype:
    """uint16 centroid ids up to 65,536 centroids, int32 beyond."""
    return np.dtype(np.uint16) if n_centroids <= 1 << 16 else np.dtype(np.int32)


def docs_dtype(n_docs: int) -> np.dtype:
    """uint16 document indices up to 65,536 documents, int32 beyond."""
    return np.dtype(np.uint16) if n_docs <= 1 << 16 else np.dtype(np.int32)


def ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenated aranges [starts[i], stops[i]) as one int64 index array."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(stops, dtype=np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + shift
