"""Residual compression (ColBERTv2, Santhanam et al. 2022, Section 3.3).

A token embedding x is stored as the id of its nearest centroid c and its residual r = x - c
quantized to `nbits` bits per dimension: each residual value falls into one of 2**nbits
buckets whose cutoffs are quantiles of the residual values seen in training, and is decoded
as that bucket's weight (the quantile at the bucket's middle). Buckets are packed
most-significant first, 8 / nbits dimensions per byte, so a 128-d token at 2 bits is 32
bytes plus its centroid id. Decoding is one table lookup per byte: `byte_table[b]` holds
the weights of the 8 / nbits dimensions byte b encodes. Decoded vectors are re-normalized
(ColBERT's embeddings are unit vectors).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latesearch._atomic import write_json
from latesearch.compressed.arrays import file_digest, load_npy, save_npy
from latesearch.errors import ConfigError, IndexCorruptError

NBITS = (1, 2, 4)
CENTROIDS_FILE = "centroids.npy"
CUTOFFS_FILE = "bucket_cutoffs.npy"
WEIGHTS_FILE = "bucket_weights.npy"
META_FILE = "codec.json"
FORMAT = "latesearch-residual/1"
# stored token norms: one byte a token, NORM_LOW + q * NORM_STEP for q in 0..255. The norm of
# a unit centroid plus a small residual lies well inside [0.5, 1.5] (0.84 to 1.07 on SciFact
# at 2 bits); a step of 1/255 moves a similarity by at most 0.2%.
NORM_LOW, NORM_STEP = 0.5, 1.0 / 255
NORMS_BLOCK = 1024  # tokens decoded at a time by `norms`: 512 KiB of float32 at dim 128


def codes_dtype(n_centroids: int) -> np.dtype:
    """uint16 centroid ids up to 65,536 centroids, int32 beyond."""
    return np.dtype(np.uint16) if n_centroids <= 1 << 16 else np.dtype(np.int32)


def check_nbits(nbits: int, dim: int) -> None:
    if isinstance(nbits, bool) or nbits not in NBITS:
        raise ConfigError(f"nbits must be one of {NBITS}, got {nbits!r}")
    if (dim * nbits) % 8:
        raise ConfigError(f"dim {dim} at {nbits} bits is not a whole number of bytes")


@dataclass
class ResidualCodec:
    """Centroids plus the bucket cutoffs and weights of the quantized residuals."""

    centroids: np.ndarray  # (n_centroids, dim) float16, unit rows
    cutoffs: np.ndarray  # (2**nbits - 1,) float32, increasing
    weights: np.ndarray  # (2**nbits,) float32
    nbits: int

    def __post_init__(self) -> None:
        self.centroids = np.ascontiguousarray(self.centroids, dtype=np.float16)
        self.cutoffs = np.ascontiguousarray(self.cutoffs, dtype=np.float32)
        self.weights = np.ascontiguousarray(self.weights, dtype=np.float32)
        check_nbits(self.nbits, self.dim)
        if self.cutoffs.shape != (2**self.nbits - 1,) or self.weights.shape != (2**self.nbits,):
            raise ConfigError(f"{2**self.nbits} buckets need {2**self.nbits - 1} cutoffs")
        self._centroids32: np.ndarray | None = None
        self.byte_table = _byte_table(self.weights, self.nbits)

    # ------------------------------------------------------------------ sizes
    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def n_centroids(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def packed_dim(self) -> int:
        """Bytes of one packed residual."""
        return self.dim * self.nbits // 8

    @property
    def codes_dtype(self) -> np.dtype:
        return codes_dtype(self.n_centroids)

    @property
    def centroids32(self) -> np.ndarray:
        """The centroids as float32 (computed once)."""
        if self._centroids32 is None:
            self._centroids32 = self.centroids.astype(np.float32)
        return self._centroids32

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(
        cls, sample: np.ndarray, centroids: np.ndarray, codes: np.ndarray, nbits: int
    ) -> ResidualCodec:
        """Bucket cutoffs and weights from the residuals of `sample` (n, dim) against the
        centroids it is assigned to (`codes`)."""
        check_nbits(nbits, int(centroids.shape[1]))
        residuals = np.asarray(sample, np.float32) - centroids[codes].astype(np.float32)
        values = residuals.reshape(-1)
        n = 2**nbits
        cutoffs = np.quantile(values, np.arange(1, n) / n).astype(np.float32)
        weights = np.quantile(values, (np.arange(n) + 0.5) / n).astype(np.float32)
        return cls(centroids, cutoffs, weights, nbits)

    # ------------------------------------------------------------------ coding
    def buckets(self, residuals: np.ndarray) -> np.ndarray:
        """(n, dim) uint8 bucket of each residual value: how many cutoffs it reaches (one
        vectorized comparison per cutoff; a binary search per value was slower)."""
        out = np.zeros(residuals.shape, dtype=np.uint8)
        for cutoff in self.cutoffs:
            out += residuals >= cutoff
        return out

    def compress(self, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """(n, packed_dim) uint8 packed residuals of `x` (n, dim) against `codes`' centroids."""
        residuals = np.asarray(x, np.float32) - np.take(self.centroids32, codes, axis=0)
        return pack(self.buckets(residuals), self.nbits)

    def decode_residuals(self, packed: np.ndarray) -> np.ndarray:
        """(n, dim) float32 quantized residuals of packed rows."""
        packed = np.asarray(packed, dtype=np.uint8)  # np.take: faster than fancy indexing
        return np.take(self.byte_table, packed, axis=0).reshape(packed.shape[0], self.dim)

    def decompress(self, codes: np.ndarray, packed: np.ndarray,
                   norms: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """(n, dim) float32 vectors: centroid + quantized residual, divided by its norm, or
        by the stored norms (`quantize_norms`'s bytes) where given."""
        out = self._summed(codes, packed)
        out /= (_norms(out) if norms is None else dequantize_norms(norms))[:, None]
        return out

    def norms(self, codes: np.ndarray, packed: np.ndarray) -> np.ndarray:
        """(n,) float32 norms of centroid + quantized residual, as `decompress` divides by
        them (floored at 1e-12), NORMS_BLOCK tokens at a time: each block's decoded vectors
        stay in cache and memory stays bounded however many tokens are asked."""
        out = np.empty(len(codes), dtype=np.float32)
        for start in range(0, len(codes), NORMS_BLOCK):
            block = slice(start, start + NORMS_BLOCK)
            out[block] = _norms(self._summed(codes[block], packed[block]))
        return out

    def stored_norms(self, codes: np.ndarray, packed: np.ndarray) -> np.ndarray:
        """(n,) uint8 norms to store beside the codes (`quantize_norms` of `norms`)."""
        return quantize_norms(self.norms(codes, packed))

    def _summed(self, codes: np.ndarray, packed: np.ndarray) -> np.ndarray:
        """(n, dim) float32 centroid + quantized residual of each token."""
        out = self.decode_residuals(packed)
        out += np.take(self.centroids32, codes, axis=0)
        return out

    # ------------------------------------------------------------------ files
    def save(self, folder: str | os.PathLike) -> dict[str, str]:
        """Write the codec files into `folder` (created); their SHA-256 by file name."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {
            CENTROIDS_FILE: self.centroids,
            CUTOFFS_FILE: self.cutoffs,
            WEIGHTS_FILE: self.weights,
        }
        digests = {}
        for name, array in arrays.items():
            save_npy(folder / name, array)
            digests[name] = file_digest(folder / name)
        meta = {"format": FORMAT, "nbits": self.nbits, "dim": self.dim,
                "n_centroids": self.n_centroids, "sha256": digests}  # fmt: skip
        write_json(folder / META_FILE, meta)
        return digests

    @classmethod
    def load(cls, folder: str | os.PathLike, *, verify: bool = False) -> ResidualCodec:
        """Read a codec folder; a missing, malformed or (with `verify`) altered file is an
        IndexCorruptError naming it."""
        folder = Path(folder)
        path = folder / META_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise IndexCorruptError(f"{path}: unreadable ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexCorruptError(f"{path}: not a {FORMAT} codec")
        try:
            nbits, dim, n = int(meta["nbits"]), int(meta["dim"]), int(meta["n_centroids"])
            digests = dict(meta["sha256"])
        except (KeyError, TypeError, ValueError) as err:
            raise IndexCorruptError(f"{path}: malformed ({err})") from None
        shapes = {
            CENTROIDS_FILE: ("float16", (n, dim)),
            CUTOFFS_FILE: ("float32", (2**nbits - 1,)),
            WEIGHTS_FILE: ("float32", (2**nbits,)),
        }
        arrays = {}
        for name, (dtype, shape) in shapes.items():
            arrays[name] = load_npy(folder / name, dtype=dtype, shape=shape, mmap=False)
            if verify and file_digest(folder / name) != digests.get(name):
                raise IndexCorruptError(f"{folder / name}: checksum mismatch")
        try:
            return cls(arrays[CENTROIDS_FILE], arrays[CUTOFFS_FILE], arrays[WEIGHTS_FILE], nbits)
        except ConfigError as err:
            raise IndexCorruptError(f"{path}: {err}") from None


def pack(buckets: np.ndarray, nbits: int) -> np.ndarray:
    """(n, dim) bucket ids (< 2**nbits) -> (n, dim * nbits / 8) bytes, first dimension in
    the most significant bits."""
    n, dim = buckets.shape
    per = 8 // nbits
    grouped = buckets.reshape(n, dim // per, per).astype(np.uint8)
    out = np.zeros((n, dim // per), dtype=np.uint8)
    for k in range(per):
        out |= grouped[:, :, k] << np.uint8(8 - nbits * (k + 1))
    return out


def unpack(packed: np.ndarray, nbits: int) -> np.ndarray:
    """The inverse of `pack`: (n, bytes) -> (n, bytes * 8 / nbits) bucket ids."""
    per, mask = 8 // nbits, np.uint8(2**nbits - 1)
    parts = [(packed >> np.uint8(8 - nbits * (k + 1))) & mask for k in range(per)]
    return np.stack(parts, axis=-1).reshape(packed.shape[0], -1)


def _byte_table(weights: np.ndarray, nbits: int) -> np.ndarray:
    """(256, 8 / nbits) float32: the decoded weights of the dimensions each byte holds."""
    every_byte = np.arange(256, dtype=np.uint8)[:, None]
    return weights[unpack(every_byte, nbits)].astype(np.float32)


def quantize_norms(norms: np.ndarray) -> np.ndarray:
    """(n,) uint8: each norm to the nearest of NORM_LOW + q * NORM_STEP (clamped)."""
    q = np.rint((np.asarray(norms, dtype=np.float32) - NORM_LOW) / NORM_STEP)
    return np.clip(q, 0, 255).astype(np.uint8)


def dequantize_norms(q: np.ndarray) -> np.ndarray:
    """(n,) float32 norms of stored bytes."""
    return (NORM_LOW + np.asarray(q, dtype=np.float32) * np.float32(NORM_STEP)).astype(np.float32)


def _norms(vectors: np.ndarray) -> np.ndarray:
    """(n,) row norms, floored at 1e-12 (a zero vector stays zero once divided)."""
    return np.maximum(np.sqrt(np.einsum("ij,ij->i", vectors, vectors)), 1e-12)
