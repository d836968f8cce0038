"""Compressing the chunks of an index folder: centroids trained on a sample of its token
embeddings, every token assigned and its residual quantized, the inverted file written.

Used by a build (after every chunk is encoded, before the index is published), by updates
(new chunks coded with the index's existing codec) and by `compress_index` (an existing
uncompressed index to a compressed one, without encoding again). The uncompressed chunk
files stay until the caller has published the result, so an interruption can resume.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from latesearch.indexing.centroids import (
    Assigner,
    method_for,
    n_centroids_for,
    sample_size_for,
    train_centroids,
)
from latesearch.indexing.checksums import file_digest
from latesearch.indexing.codec import ResidualCodec
from latesearch.indexing.config import CodecConfig
from latesearch.indexing.files import chunk_digest, load_npy
from latesearch.indexing.ivf import InvertedFile
from latesearch.indexing.manifest import CODEC_DIR, IVF_DIR, ChunkInfo, compressed_chunk_files

BLOCK_ROWS = 1 << 18  # tokens assigned and coded at a time (128 MiB of float32 at dim 128)
FIT_ROWS = 1 << 18  # sampled tokens whose residuals set the bucket cutoffs and weights


@dataclass
class CompressionResult:
    """The compressed chunks, the manifest's `codec` entry, and files now unused."""

    chunks: list[ChunkInfo]
    codec: dict[str, Any]
    unused: list[Path] = field(default_factory=list)  # uncompressed files not kept


def compress_chunks(
    folder: Path,
    chunks: list[ChunkInfo],
    dim: int,
    config: CodecConfig,
    *,
    codec: ResidualCodec | None = None,
    progress: Callable[[int], None] | None = None,
    coder: ChunkCoder | None = None,
) -> CompressionResult:
    """Code every chunk of `folder` (whose `embeddings` files must exist) with `codec`, or
    with one trained here on a sample; write codec/, ivf/ and the chunks' codes/residuals.
    `progress` is told the number of tokens coded. `coder` codes the chunks (default: here,
    `LocalCoder`; `ray_coding.RayCoder` on a Ray cluster)."""
    seconds: dict[str, float] = {}
    n_tokens = sum(c.n_embeddings for c in chunks)
    started = time.perf_counter()
    trained_on = 0
    if codec is None:
        codec, trained_on = train_codec(folder, chunks, dim, config, n_tokens)
        seconds["train"] = round(time.perf_counter() - started, 3)
    digests = codec.save(folder / CODEC_DIR)
    started = time.perf_counter()
    coder = coder or LocalCoder()
    coded = coder(folder, chunks, codec, config, progress)
    seconds["assign_and_code"] = round(time.perf_counter() - started, 3)
    method = method_for(codec.n_centroids, config.assignment)
    started = time.perf_counter()
    ivf_digests = write_ivf(folder, coded, codec.n_centroids)
    seconds["ivf"] = round(time.perf_counter() - started, 3)
    unused: list[Path] = []
    if not config.keep_full:
        unused = [folder / c.embeddings for c in coded if c.embeddings]
        coded = [dataclasses.replace(c, embeddings="", sha256="") for c in coded]
    meta = {
        "nbits": codec.nbits,
        "n_centroids": codec.n_centroids,
        "dim": codec.dim,
        "codes_dtype": codec.codes_dtype.name,
        "keep_full": config.keep_full,
        "assignment": config.assignment,
        "assignment_method": method,
        "approximate_assignment": method != "exact",
        "coded_by": coder.label,
        "kmeans_niter": config.kmeans_niter,
        "seed": config.seed,
        "trained_on": trained_on,
        "seconds": seconds,
        "sha256": {**{f"{CODEC_DIR}/{k}": v for k, v in digests.items()},
                   **{f"{IVF_DIR}/{k}": v for k, v in ivf_digests.items()}},  # fmt: skip
    }
    return CompressionResult(coded, meta, unused)


def train_codec(
    folder: Path, chunks: list[ChunkInfo], dim: int, config: CodecConfig, n_tokens: int
) -> tuple[ResidualCodec, int]:
    """Centroids by spherical k-means on a seeded sample of the tokens, then bucket
    statistics from the residuals of (up to FIT_ROWS of) that sample."""
    k = config.n_centroids or n_centroids_for(n_tokens)
    k = min(k, n_tokens)
    size = sample_size_for(n_tokens, k)
    rng = np.random.default_rng(config.seed)
    rows = np.sort(rng.choice(n_tokens, size=size, replace=False))
    sample = read_rows(folder, chunks, rows, dim)
    centroids = train_centroids(
        sample, k, niter=config.kmeans_niter, seed=config.seed, assignment=config.assignment
    )
    fit = sample[np.sort(rng.choice(len(sample), size=min(FIT_ROWS, len(sample)), replace=False))]
    codes = Assigner(centroids, config.assignment, seed=config.seed)(fit)
    return ResidualCodec.fit(fit, centroids, codes, config.nbits or 2), size


def read_rows(folder: Path, chunks: list[ChunkInfo], rows: np.ndarray, dim: int) -> np.ndarray:
    """float32 embeddings of sorted global token `rows`, read from the chunk files."""
    out = np.empty((len(rows), dim), dtype=np.float32)
    for chunk in chunks:
        lo = np.searchsorted(rows, chunk.first_token)
        hi = np.searchsorted(rows, chunk.first_token + chunk.n_embeddings)
        if lo < hi:
            array = chunk_embeddings(folder, chunk, dim)
            out[lo:hi] = array[rows[lo:hi] - chunk.first_token]
    return out


class ChunkCoder(Protocol):
    """Codes chunks with a codec: writes each chunk's codes and residuals files into the
    folder and returns the chunks' records in order; `label` names where it ran."""

    label: str

    def __call__(self, folder: Path, chunks: list[ChunkInfo], codec: ResidualCodec,
                 config: CodecConfig, progress: Callable[[int], None] | None,
                 ) -> list[ChunkInfo]: ...  # fmt: skip


class LocalCoder:
    """Every chunk coded in this process, one after another."""

    label = "local"

    def __call__(self, folder: Path, chunks: list[ChunkInfo], codec: ResidualCodec,
                 config: CodecConfig, progress: Callable[[int], None] | None = None,
                 ) -> list[ChunkInfo]:  # fmt: skip
        assign = Assigner(codec.centroids32, config.assignment, seed=config.seed)
        return [code_chunk(folder, c, codec, assign, progress) for c in chunks]


def code_chunk(
    folder: Path,
    chunk: ChunkInfo,
    codec: ResidualCodec,
    assign: Assigner,
    progress: Callable[[int], None] | None = None,
) -> ChunkInfo:
    """Write a chunk's codes and packed residuals next to its embeddings."""
    embeddings = chunk_embeddings(folder, chunk, codec.dim)
    return write_codes(folder, chunk, codec, code_blocks(embeddings, codec, assign), progress)


def write_codes(
    folder: Path,
    chunk: ChunkInfo,
    codec: ResidualCodec,
    blocks: Iterable[tuple[int, np.ndarray, np.ndarray]],
    progress: Callable[[int], None] | None = None,
) -> ChunkInfo:
    """Write a chunk's codes and packed residuals, given as (first row, codes, residuals)
    blocks covering it, each file fsynced and renamed into place; the chunk's record."""
    n = chunk.n_embeddings
    codes_name, residuals_name = compressed_chunk_files(chunk.index)
    codes_out = _open(folder / codes_name, (n,), codec.codes_dtype)
    residuals_out = _open(folder / residuals_name, (n, codec.packed_dim), np.uint8)
    for start, codes, residuals in blocks:
        codes_out[start : start + len(codes)] = codes
        residuals_out[start : start + len(codes)] = residuals
        if progress is not None:
            progress(len(codes))
    codes_digest, residuals_digest = chunk_digest(codes_out), chunk_digest(residuals_out)
    _close(codes_out, folder / codes_name)
    _close(residuals_out, folder / residuals_name)
    return dataclasses.replace(
        chunk,
        codes=codes_name,
        residuals=residuals_name,
        codes_sha256=codes_digest,
        residuals_sha256=residuals_digest,
    )


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


def write_ivf(folder: Path, chunks: list[ChunkInfo], n_centroids: int) -> dict[str, str]:
    """Build ivf/ from the chunks' codes; the SHA-256 of its files by name."""
    n_docs = sum(c.n_docs for c in chunks)
    ivf = InvertedFile.build(chunk_code_parts(folder, chunks), n_centroids, n_docs)
    ivf.save(folder / IVF_DIR)
    return {p.name: file_digest(p) for p in sorted((folder / IVF_DIR).glob("*.npy"))}


def chunk_code_parts(folder: Path, chunks: list[ChunkInfo]) -> Iterator[tuple[np.ndarray, ...]]:
    """(codes, document of each token) of every chunk, read from its files."""
    for chunk in chunks:
        lens = np.load(folder / chunk.doclens).astype(np.int64)
        codes = np.load(folder / chunk.codes, mmap_mode="r")
        docs = np.repeat(np.arange(chunk.first_doc, chunk.first_doc + chunk.n_docs), lens)
        yield np.asarray(codes), docs


def chunk_embeddings(folder: Path, chunk: ChunkInfo, dim: int) -> np.ndarray:
    """A chunk's embeddings file, memory-mapped (float16 or float32)."""
    path = folder / chunk.embeddings
    dtype = np.load(path, mmap_mode="r").dtype.name
    return load_npy(path, dtype=dtype, shape=(chunk.n_embeddings, dim), mmap=True)


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
