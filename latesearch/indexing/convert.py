"""`compress_index`: a compressed copy of an uncompressed index, without encoding anything
again (the vectors are read from its chunks). Useful to move an index of the paper's format
to the compressed one, or to compare settings (nbits, centroids) on the same vectors."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from latesearch._atomic import check_replaceable, replace_folder
from latesearch.compressed.codec import ResidualCodec
from latesearch.errors import ConfigError
from latesearch.indexing.builder import check_unit_vectors
from latesearch.indexing.components import BM25_DIR
from latesearch.indexing.compression import compress_chunks
from latesearch.indexing.config import CodecConfig, IndexConfig
from latesearch.indexing.files import IndexExistsError, folder_bytes, link_or_copy, writer_lock
from latesearch.indexing.manifest import (
    CHUNKS_DIR,
    CODEC_DIR,
    COMPRESSED_FORMAT_VERSION,
    DOC_ID_OFFSETS,
    DOC_IDS,
    DOCSTORE,
    MANIFEST,
    ChunkInfo,
)
from latesearch.indexing.pooling import pool_chunks, text_tokens
from latesearch.indexing.storage import IndexStore


def compress_index(
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    nbits: int | None = None,
    keep_full: bool | None = None,
    codec_from: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **config_fields: Any,
) -> IndexStore:
    """Write a compressed version of the uncompressed index `source` to `target`.

    `config_fields` are other `IndexConfig` fields of the compression (n_centroids,
    kmeans_niter, assignment, seed). `codec_from`: a compressed index whose centroids and
    buckets are reused instead of training new ones. The bm25/ component is carried over;
    ann/ is not (the engine replaces it). `pool_factor` > 1 pools an unpooled source's
    vectors first, as a build with it would. `nbits`, `keep_full` and an unpooled source's
    `pool_factor` default to those of new indexes (`CodecConfig`'s). Staged in
    `<target>.building`, renamed when done.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise IndexExistsError(f"{target}: already exists; pass overwrite=True to replace it")
    check_replaceable(target, MANIFEST)
    started = time.monotonic()
    with IndexStore.open(source) as src:
        if src.compressed:
            raise ConfigError(f"{src.folder}: already compressed")
        src.verify()  # its vectors are read and coded: never give damage fresh checksums
        config = IndexConfig.from_dict(src.manifest.index_config, source="index_config")
        pooled, new = config.codec.pool_factor, CodecConfig()
        nbits = new.nbits if nbits is None else nbits
        keep_full = new.keep_full if keep_full is None else keep_full
        if pooled == 1:
            config_fields.setdefault("pool_factor", new.pool_factor)
        config = config.replace(nbits=nbits, keep_full=keep_full, **config_fields)
        if config.codec.pool_factor != pooled and pooled != 1:
            raise ConfigError(f"{src.folder}: already pooled (pool_factor {pooled})")
        check_unit_vectors(src.manifest.colbert_config, config)
        codec = None
        if codec_from is not None:
            codec = ResidualCodec.load(Path(codec_from) / CODEC_DIR)
            if codec.nbits != nbits:
                raise ConfigError(f"{codec_from}: its codec has {codec.nbits} bits, not {nbits}")
            if codec.dim != src.dim:
                raise ConfigError(f"{codec_from}: its codec is {codec.dim}-d, not {src.dim}-d")
        stage = target.with_name(target.name + ".building")
        target.parent.mkdir(parents=True, exist_ok=True)
        with writer_lock(target):
            shutil.rmtree(stage, ignore_errors=True)
            try:
                chunks = _stage(src, stage, config.codec.pool_factor)
                n_embeddings = sum(c.n_embeddings for c in chunks)
                bar = _bar(n_embeddings, progress)
                try:
                    result = compress_chunks(stage, chunks, src.dim, config.codec, codec=codec,
                                             progress=bar.update)  # fmt: skip
                finally:
                    bar.close()
                for path in result.unused:
                    path.unlink()
                stats = {**src.manifest.stats, "compressed_from": str(src.folder),
                         "embeddings": n_embeddings, "text_tokens": text_tokens(stage, chunks),
                         "compress_seconds": round(time.monotonic() - started, 3)}  # fmt: skip
                manifest = dataclasses.replace(
                    src.manifest,
                    format_version=COMPRESSED_FORMAT_VERSION,
                    index_config=_config_dict(config),
                    chunks=result.chunks,
                    n_embeddings=n_embeddings,
                    codec=result.codec,
                    created=datetime.now(UTC).isoformat(timespec="seconds"),
                    stats=stats,
                    files={},  # recorded by `seal`
                )
                manifest.write(stage)
                manifest.stats["bytes_on_disk"] = folder_bytes(stage)
                manifest.seal(stage)
                replace_folder(stage, target)
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
    return IndexStore.open(target)


def _stage(src: IndexStore, stage: Path, pool_factor: int) -> list[ChunkInfo]:
    """Hard links of the source's chunks (or their pooled copies where `pool_factor` pools
    an unpooled source), ids and doc store (and bm25/) in `stage`; the staged chunks."""
    (stage / CHUNKS_DIR).mkdir(parents=True)
    chunks = src.chunks
    if pool_factor > 1 and not any(c.spans for c in chunks):
        chunks = pool_chunks(src, stage, pool_factor)
    else:
        for chunk in src.chunks:
            for name in chunk.files():
                link_or_copy(src.folder / name, stage / name)
    for name in (DOC_IDS, DOC_ID_OFFSETS, DOCSTORE):
        link_or_copy(src.folder / name, stage / name)
    if (src.folder / BM25_DIR).is_dir():
        shutil.copytree(src.folder / BM25_DIR, stage / BM25_DIR, copy_function=_link)
    return chunks


def _link(source: str, target: str) -> None:
    link_or_copy(Path(source), Path(target))


def _config_dict(config: IndexConfig) -> dict[str, Any]:
    return config.replace(devices=None).to_dict()


def _bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="token", unit_scale=True, desc="compressing",
                disable=not enabled, dynamic_ncols=True)  # fmt: skip
