"""Coding tokens: each block of embeddings assigned to its centroids and its residuals
packed by the codec, and a chunk's codes and residuals files written from such blocks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from latesearch.compressed.arrays import chunk_digest
from latesearch.compressed.centroids import Assigner
from latesearch.compressed.codec import ResidualCodec

BLOCK_ROWS = 1 << 18  # tokens assigned and coded at a time (128 MiB of float32 at dim 128)


def code_blocks(
    embeddings: np.ndarray, codec: ResidualCodec, assign: Assigner
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first row, centroid codes, packed residuals) of `embeddings` (n, dim; a memmap is
    read a block at a time), BLOCK_ROWS tokens at a time: memory stays bounded."""
    for start in range(0, len(embeddings), BLOCK_ROWS):
        yield start, *code_block(embeddings[start : start + BLOCK_ROWS], codec, assign)


def code_block(embeddings: np.ndarray, codec: ResidualCodec,
               assign: Assigner) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(centroid codes, packed residuals) of a block of embeddings (any float dtype)."""
    x = np.asarray(embeddings, dtype=np.float32)
    codes = assign(x)
    return codes, codec.compress(x, codes)


def write_coded(
    codes_path: Path,
    residuals_path: Path,
    n_tokens: int,
    codec: ResidualCodec,
    blocks: Iterable[tuple[int, np.ndarray, np.ndarray]],
    progress: Callable[[int], None] | None = None,
    *,
    norms_path: Path,
) -> tuple[str, str, str]:
    """Write the codes, packed residuals and stored norms (`ResidualCodec.stored_norms`)
    of `n_tokens` tokens, given as (first row, codes, residuals) blocks covering them, each
    file fsynced and renamed into place; the SHA-256 of the three (`chunk_digest`)."""
    codes_out = _open(codes_path, (n_tokens,), codec.codes_dtype)
    residuals_out = _open(residuals_path, (n_tokens, codec.packed_dim), np.uint8)
    norms_out = _open(norms_path, (n_tokens,), np.uint8)
    for start, codes, residuals in blocks:
        rows = slice(start, start + len(codes))
        codes_out[rows] = codes
        residuals_out[rows] = residuals
        norms_out[rows] = codec.stored_norms(codes, residuals)
        if progress is not None:
            progress(len(codes))
    digests = chunk_digest(codes_out), chunk_digest(residuals_out), chunk_digest(norms_out)
    for array, path in ((codes_out, codes_path), (residuals_out, residuals_path),
                        (norms_out, norms_path)):  # fmt: skip
        _close(array, path)
    return digests


def _open(path: Path, shape: tuple[int, ...], dtype: Any) -> np.memmap:
    tmp = path.with_name(path.name + ".tmp")
    return np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)


def _close(array: np.memmap, path: Path) -> None:
    """Flush a memmap opened by `_open`, fsync it, and rename it into place."""
    array.flush()
    tmp = Path(array.filename)
    del array
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
