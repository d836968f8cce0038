"""Compressing the chunks of an index folder: centroids trained on a sample of its token
embeddings, every token assigned and its residual quantized, the inverted file written
(the format's stages are in `latesearch.compressed`; this orchestrates them over chunks).

Used by a build (after every chunk is encoded, before the index is published), by updates
(new chunks coded with the index's existing codec) and by `compress_index` (an existing
uncompressed index to a compressed one, without encoding again). The uncompressed chunk
files stay until the caller has published the result, so an interruption can resume.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from latesearch.compressed.arrays import file_digest, load_npy
from latesearch.compressed.centroids import (
    Assigner,
    method_for,
    n_centroids_for,
    sample_size_for,
    train_centroids,
)
from latesearch.compressed.codec import ResidualCodec
from latesearch.compressed.coding import code_blocks, write_coded
from latesearch.compressed.ivf import InvertedFile
from latesearch.indexing.config import CodecConfig
from latesearch.indexing.manifest import (
    CODEC_DIR,
    IVF_DIR,
    ChunkInfo,
    compressed_chunk_files,
    norms_chunk_file,
)

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
    """Write a chunk's codes and packed residuals files from (first row, codes, residuals)
    blocks covering it (`write_coded`); the chunk's record."""
    codes_name, residuals_name = compressed_chunk_files(chunk.index)
    norms_name = norms_chunk_file(chunk.index)
    codes_digest, residuals_digest, norms_digest = write_coded(
        folder / codes_name, folder / residuals_name, chunk.n_embeddings, codec, blocks,
        progress, norms_path=folder / norms_name,
    )  # fmt: skip
    return dataclasses.replace(
        chunk,
        codes=codes_name,
        residuals=residuals_name,
        norms=norms_name,
        codes_sha256=codes_digest,
        residuals_sha256=residuals_digest,
        norms_sha256=norms_digest,
    )


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

