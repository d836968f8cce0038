"""`build_index`: encode a collection once into a durable on-disk index (paper Section 3.4).

The build is staged in `<folder>.building/` and renamed into place on success. Each finished
chunk is recorded in `progress.json` there, so an interrupted build can be resumed.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latesearch._atomic import check_replaceable, replace_folder
from latesearch.compressed.arrays import chunk_digest, save_npy
from latesearch.data import Document, check_collection
from latesearch.errors import ConfigError, InputError
from latesearch.indexing.buildstate import PROGRESS, BuildState, describe_source
from latesearch.indexing.compression import CompressionResult, compress_chunks
from latesearch.indexing.config import IndexConfig
from latesearch.indexing.device_pool import DevicePool
from latesearch.indexing.docstore import DocStoreWriter, metadata_json
from latesearch.indexing.encoder_run import DocumentEncoder, EncodedGroup, EncoderSettings
from latesearch.indexing.files import IndexExistsError, folder_bytes, writer_lock
from latesearch.indexing.manifest import (
    CHUNKS_DIR,
    COMPRESSED_FORMAT_VERSION,
    DOC_ID_OFFSETS,
    DOC_IDS,
    DOCSTORE,
    FORMAT_VERSION,
    MANIFEST,
    ChunkInfo,
    Manifest,
    chunk_files,
    dense_chunk_file,
)
from latesearch.indexing.pooling import PooledGroup, pool_group, save_spans, text_tokens
from latesearch.indexing.reading import StoredIds, documents_of, total_documents
from latesearch.indexing.storage import IndexStore, building_folder
from latesearch.indexing.summary import BuildSummary
from latesearch.modeling import ColBERT, resolve_device
from latesearch.modeling.backbones import usable_positions
from latesearch.modeling.default import default_model_path
from latesearch.modeling.dense import DenseEncoder

ExtraBuilder = Callable[[Path, IndexStore], None]

FIRST_GROUP_BATCHES = 2  # batches in a build's first group, which measures throughput
RAY_SPILL = "ray-spill"  # where Ray actors leave encoded shards (ray_transport="shared")


@dataclass
class Group:
    """Documents read together (B of them): the unit of length sorting."""

    # doc_id, title, text, metadata JSON (None: none)
    rows: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # what the encoders see


def build_index(
    collection: Any,
    folder: str | os.PathLike,
    model: ColBERT | str | os.PathLike | None = None,
    config: IndexConfig | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    extra_builders: Sequence[ExtraBuilder] = (),
    on_chunk: Callable[[ChunkInfo], None] | None = None,
) -> IndexStore:
    """Encode every document of `collection` once and store the index in `folder`.

    `collection`: a path (MS MARCO TSV, BEIR JSONL or folder, TREC SGML) or an iterable of
    (doc_id, text) pairs or dicts. `model`: a ColBERT, a checkpoint path, or None for the
    default model. `extra_builders` are called as `fn(staging_folder, store)` after the
    embeddings are complete and before the rename, to add components such as `bm25/` or
    `ann/` inside the index. `on_chunk` is called after each chunk is durably recorded.
    """
    config = config or IndexConfig()
    return _Build(collection, Path(folder), config, progress).run(
        model, overwrite=overwrite, resume=resume, extra=extra_builders, on_chunk=on_chunk
    )


class _Build:
    def __init__(self, collection: Any, folder: Path, config: IndexConfig, progress: bool):
        self.collection, self.folder, self.config = collection, folder, config
        self.tmp = building_folder(folder)
        self.show_progress = progress
        self.doc_pooling = None  # the model's own document pooling, set when it loads

    # ------------------------------------------------------------------ driver
    def run(self, model, *, overwrite, resume, extra, on_chunk) -> IndexStore:
        _check_target(self.folder, overwrite=overwrite)
        if not resume and not overwrite and self.tmp.is_dir() and BuildState.load(self.tmp):
            raise self._interrupted()  # said before the model loads (tens of seconds)
        check_collection(self.collection, on_error=self.config.on_error)  # so is bad input
        devices = _resolve_devices(self.config, model)
        model = _load_model(model, self.config, devices[0])
        self.doc_pooling = model.config.doc_pooling  # pools at encode time, as the model does
        if self.doc_pooling is not None and self.config.codec.pool_factor > 1:
            raise ConfigError(f"pool_factor {self.config.codec.pool_factor}: the model pools "
                              "documents itself (doc_pooling); build with pool_factor=1",
                              field="pool_factor")  # fmt: skip
        check_unit_vectors(model.config.to_dict(), self.config)
        self.dense_encoder = None
        if self.config.dense.source == "backbone":
            self.dense_encoder = backbone_dense_encoder(model, self.config, devices[0])
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with writer_lock(self.folder):
            state = self._start_state(model, resume=resume, overwrite=overwrite)
            (self.tmp / CHUNKS_DIR).mkdir(parents=True, exist_ok=True)
            self.docstore = DocStoreWriter(self.tmp / DOCSTORE)
            self.docstore.index_fields(self.config.filter_fields)
            try:
                self._encode_all(model, devices, state, on_chunk)
                summary = self._finish(state, devices)
            except BaseException as err:
                self.docstore.close()
                if not state.chunks:  # nothing to resume (bad input, say): nothing left
                    shutil.rmtree(self.tmp, ignore_errors=True)
                self._explain(err, state)
                raise
            return self._publish(state, summary, model, extra)

    def _interrupted(self) -> IndexExistsError:
        return IndexExistsError(
            f"{self.tmp}: an interrupted build of {self.folder} is there; "
            "resume it (--resume / resume=True) or start again (--overwrite / overwrite=True)"
        )

    def _start_state(self, model: ColBERT, *, resume: bool, overwrite: bool) -> BuildState:
        """A fresh state, or the saved one of an interrupted build (checked) on resume."""
        fresh = BuildState(
            model_fingerprint=model.fingerprint(),
            colbert_config=_effective_config(model, self.config),
            index_config=self.config.to_dict(),
            collection=describe_source(self.collection),
        )
        saved = BuildState.load(self.tmp) if self.tmp.is_dir() else None
        self.resumed = saved is not None and resume
        if saved is not None and resume:
            saved.check_resumable(fresh, self.tmp)
            saved.index_config = fresh.index_config
            _remove_unfinished(self.tmp, saved)
            return saved
        if saved is not None and not overwrite:
            raise self._interrupted()
        if resume:
            print(f"latesearch: nothing to resume in {self.tmp}; starting", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return fresh

    # ------------------------------------------------------------------ encoding
    def _encode_all(self, model, devices, state: BuildState, on_chunk) -> None:
        self.started, self.base_seconds = time.monotonic(), state.seconds
        self.committed = 0  # documents saved by this run (its throughput sizes groups)
        self.docstore.truncate(state.n_docs)
        self.seen = StoredIds(self.docstore, stored=state.n_docs)
        self.read_stats, docs = documents_of(self.collection, self.config, self.seen)
        _skip_finished(docs, state, self.docstore)
        bar = _progress_bar(self.collection, state.docs_consumed, self.show_progress)
        settings = EncoderSettings(
            batch_size=self.config.run.batch_size,
            tokenizer_workers=self.config.run.tokenizer_workers,
            length_bucketing=self.config.run.length_bucketing,
            storage_dtype=self.config.codec.dtype,
            compute_dtype=self.config.run.compute_dtype,
            doc_maxlen=self.config.doc_maxlen,
            pooled=self.config.dense.source == "pooled",
            windows=self.config.windows,
        )
        if self.config.ray.address is not None:
            from latesearch.indexing.ray_pool import RayEncoderPool

            encoder: Any = RayEncoderPool(
                model, settings, address=self.config.ray.address, workers=self.config.ray.workers,
                cpus_per_worker=self.config.ray.cpus_per_worker,
                transport=self.config.ray.transport, spill=self.tmp / RAY_SPILL,
                progress=bar.update,
            )  # fmt: skip
        elif len(devices) > 1:
            encoder = DevicePool(model, devices, settings, progress=bar.update)
        else:
            encoder = DocumentEncoder(model, settings, progress=bar.update)
        try:
            groups = self._groups(docs)
            for group, encoded in encoder.encode_stream(groups):
                self._commit(group, encoded, state, on_chunk)
        finally:
            encoder.close()
            bar.close()

    def _groups(self, docs: Iterator[Document]) -> Iterator[tuple[Group, list[str]]]:
        """Groups of documents (see `_group_size`) and the texts the encoder sees (title
        joined to text)."""
        while read := list(itertools.islice(docs, self._group_size())):
            group = Group([(d.doc_id, d.title, d.text, metadata_json(d.doc_id, d.metadata))
                           for d in read])  # fmt: skip
            group.texts = [d.full_text(self.config.title_join) for d in read]
            yield group, group.texts

    def _group_size(self) -> int:
        """B documents, cut short so that work is saved at least every `checkpoint_docs`
        documents and about every `checkpoint_seconds` of encoding at the throughput seen
        so far (before any is seen, a first group of FIRST_GROUP_BATCHES batches measures
        it)."""
        config = self.config.run
        size = min(config.group_size, config.checkpoint_docs or config.group_size)
        if config.checkpoint_seconds:
            seconds = time.monotonic() - self.started
            if self.committed == 0 or seconds <= 0:
                size = min(size, FIRST_GROUP_BATCHES * config.batch_size)
            else:
                rate = self.committed / seconds
                size = min(size, max(config.batch_size, int(rate * config.checkpoint_seconds)))
        return size

    def _commit(self, group: Group, encoded: EncodedGroup, state: BuildState, on_chunk) -> None:
        """Write the group's chunks, each durably recorded before the next."""
        n, per = len(group.rows), self.config.run.docs_per_chunk
        if self.dense_encoder is not None:  # the backbone's pass, after the token pass
            dense = self.dense_encoder.encode(group.texts, batch_size=self.config.run.batch_size)
            encoded.dense = dense.to(torch.float16)
        pooled = None
        if self.config.codec.pool_factor > 1 or self.doc_pooling is not None:
            # every build path's documents pass here
            pooled = pool_group(encoded.embeddings, encoded.doclens, self.config.codec.pool_factor,
                                self.doc_pooling)  # fmt: skip
            encoded.embeddings, encoded.doclens = pooled.embeddings, pooled.doclens
        offsets = np.concatenate([[0], np.cumsum(encoded.doclens.numpy(), dtype=np.int64)])
        for a in range(0, n, per):
            b = min(a + per, n)
            info = self._write_chunk(state, encoded, offsets, a, b, pooled)
            self.docstore.add(info.first_doc, group.rows[a:b])
            self.seen.mark_stored(row[0] for row in group.rows[a:b])
            state.chunks.append(info)
            state.docs_consumed += b - a
            self.committed += b - a
            state.truncated_docs += int(encoded.truncated[a:b].sum())
            state.empty_docs += int(encoded.empty[a:b].sum())
            state.seconds = self.base_seconds + time.monotonic() - self.started
            state.save(self.tmp)
            if on_chunk is not None:
                on_chunk(info)

    def _write_chunk(self, state, encoded, offsets, a: int, b: int,
                     pooled: PooledGroup | None) -> ChunkInfo:  # fmt: skip
        index = len(state.chunks)
        emb_name, lens_name = chunk_files(index)
        embeddings = encoded.embeddings[int(offsets[a]) : int(offsets[b])].numpy()
        doclens = encoded.doclens[a:b].numpy().astype(np.int32)
        save_npy(self.tmp / emb_name, embeddings)
        save_npy(self.tmp / lens_name, doclens)
        optional = {}  # ChunkInfo fields of the dense view and the pooling spans
        if encoded.dense is not None:
            vectors = encoded.dense[a:b].numpy()
            save_npy(self.tmp / dense_chunk_file(index), vectors)
            optional = {"dense": dense_chunk_file(index), "dense_sha256": chunk_digest(vectors)}
        if pooled is not None:
            text = np.concatenate([[0], np.cumsum(pooled.textlens, dtype=np.int64)])
            optional |= save_spans(self.tmp, index, pooled.spans[text[a] : text[b]],
                                   pooled.textlens[a:b])  # fmt: skip
        return ChunkInfo(
            index=index,
            first_doc=state.n_docs,
            n_docs=b - a,
            first_token=state.n_embeddings,
            n_embeddings=int(embeddings.shape[0]),
            embeddings=emb_name,
            doclens=lens_name,
            sha256=chunk_digest(embeddings),
            doclens_sha256=chunk_digest(doclens),
            **optional,
        )

    # ------------------------------------------------------------------ finishing
    def _finish(self, state: BuildState, devices: list[str]) -> BuildSummary:
        if state.n_docs == 0:
            self.docstore.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise InputError(f"{_source_name(self.collection)}: no documents to index")
        limit = self.config.max_docs
        if limit is not None and state.n_docs > limit:
            self.docstore.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise InputError(f"{_source_name(self.collection)}: {state.n_docs:,} documents; "
                             f"the index's max_docs is {limit:,}", field="max_docs")  # fmt: skip
        self.docstore.write_id_map(self.tmp, state.n_docs, DOC_IDS, DOC_ID_OFFSETS)
        self.docstore.close()
        skipped = {k: int(v) for k, v in self.read_stats.skipped.items() if v}
        return BuildSummary(
            docs=state.n_docs,
            embeddings=state.n_embeddings,
            text_tokens=text_tokens(self.tmp, state.chunks),
            truncated_docs=state.truncated_docs,
            empty_docs=state.empty_docs,
            skipped=skipped,
            seconds=round(self.base_seconds + time.monotonic() - self.started, 3),
            devices=[str(d) for d in devices],
            dtype=self.config.codec.dtype,
            resumed=self.resumed,
        )

    def _publish(self, state, summary, model, extra: Sequence[ExtraBuilder]) -> IndexStore:
        chunks, codec, unused = state.chunks, None, []
        if self.config.codec.compressed:  # the uncompressed chunks stay until the rename
            result = self._compress(state, model.config.dim)
            chunks, codec, unused = result.chunks, result.codec, result.unused
        manifest = Manifest(
            format_version=COMPRESSED_FORMAT_VERSION if codec else FORMAT_VERSION,
            model_source=str(getattr(model, "source", "")),
            model_fingerprint=state.model_fingerprint,
            colbert_config=state.colbert_config,
            index_config=self.config.to_dict(),
            n_docs=state.n_docs,
            n_embeddings=state.n_embeddings,
            dim=model.config.dim,
            dtype=self.config.codec.dtype,
            chunks=chunks,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            collection=state.collection,
            codec=codec,
            dense_dim=_dense_dim(self.tmp, chunks),
        )
        manifest.write(self.tmp)
        if extra:
            with IndexStore.open(self.tmp) as store:
                for build_extra in extra:
                    build_extra(self.tmp, store)
        (self.tmp / PROGRESS).unlink()
        for path in unused:
            path.unlink()
        summary.bytes_on_disk = folder_bytes(self.tmp)
        manifest.stats = summary.to_dict()
        manifest.seal(self.tmp)
        replace_folder(self.tmp, self.folder)  # an old index survives until this point
        return IndexStore.open(self.folder)

    def _compress(self, state: BuildState, dim: int) -> CompressionResult:
        """Centroids, codes and residuals of every chunk, and the inverted file."""
        from tqdm.auto import tqdm

        bar = tqdm(total=state.n_embeddings, unit="token", unit_scale=True, desc="compressing",
                   disable=not self.show_progress, dynamic_ncols=True)  # fmt: skip
        coder = None
        if self.config.ray.address is not None:  # coded where it was encoded
            from latesearch.indexing.ray_coding import RayCoder

            coder = RayCoder.for_config(self.config.ray)
        try:
            return compress_chunks(self.tmp, state.chunks, dim, self.config.codec,
                                   progress=bar.update, coder=coder)  # fmt: skip
        finally:
            bar.close()

    def _explain(self, err: BaseException, state: BuildState) -> None:
        """Tell the user what is kept and how to continue."""
        if not state.chunks:
            return
        reason = "interrupted" if isinstance(err, KeyboardInterrupt) else "stopped"
        print(
            f"latesearch: indexing {reason}; {state.n_docs:,} documents in "
            f"{len(state.chunks)} finished chunk(s) are kept in {self.tmp}. "
            "Run again with --resume (resume=True) to continue.",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------- helpers
def _source_name(collection: Any) -> str:
    return str(collection) if isinstance(collection, str | os.PathLike) else "<collection>"


def _skip_finished(docs: Iterator[Document], state: BuildState, store: DocStoreWriter) -> None:
    """On resume: pass over the documents of finished chunks without encoding them,
    checking that they are the ones the index holds."""
    stored = store.iter_ids()
    for position in range(state.docs_consumed):
        doc, expected = next(docs, None), next(stored, None)
        if doc is None or expected is None or doc.doc_id != expected:
            found = "the collection ended" if doc is None else f"it is now {doc.doc_id!r}"
            raise InputError(
                f"document {position + 1} changed since the interrupted build (which stored "
                f"{expected!r}; {found}); start again with --overwrite"
            )


def _progress_bar(collection: Any, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    total = total_documents(collection) if enabled else None
    return tqdm(
        total=total,
        initial=initial,
        unit="doc",
        smoothing=0.1,
        dynamic_ncols=True,
        disable=not enabled,
        desc="indexing",
    )


def _check_target(folder: Path, *, overwrite: bool) -> None:
    if overwrite:  # replaces an older index, never an unrelated folder or file
        check_replaceable(folder, MANIFEST)
    elif folder.exists():
        if folder.is_dir() and not any(folder.iterdir()):
            return  # an empty folder is fine
        raise IndexExistsError(f"{folder}: already exists; pass --overwrite to replace it")


def _remove_unfinished(tmp: Path, state: BuildState) -> None:
    """Delete chunk files an interrupted run wrote but did not record."""
    finished = {name for c in state.chunks for name in c.files()}
    for path in (tmp / CHUNKS_DIR).glob("*"):
        if f"{CHUNKS_DIR}/{path.name}" not in finished:
            path.unlink()


def _resolve_devices(config: IndexConfig, model: Any) -> list[str]:
    if config.run.devices:
        devices = [resolve_device(d) for d in config.run.devices]
        for device in devices:
            if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
                raise ConfigError(f"IndexConfig.devices: {device} does not exist")
        return [str(d) for d in devices]
    if torch.cuda.device_count() > 1:
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if isinstance(model, ColBERT):
        return [str(model.device)]
    return [str(resolve_device(None))]


def _dense_dim(folder: Path, chunks: list[ChunkInfo]) -> int:
    """The dimension of the chunks' pooled dense vectors (0: no dense view)."""
    if not chunks or not chunks[0].dense:
        return 0
    return int(np.load(folder / chunks[0].dense, mmap_mode="r").shape[1])


def backbone_dense_encoder(model: ColBERT, config: IndexConfig, device: str) -> DenseEncoder:
    """The encoder of a "backbone" dense view: `config.dense.model`, else the default
    model's original backbone (only for the default model)."""
    if config.dense.model is None and Path(getattr(model, "source", "")) != default_model_path():
        raise ConfigError(
            'IndexConfig.dense="backbone" needs dense_model (a sentence-transformers folder) '
            "for a model other than the default, whose backbone is known"
        )
    return DenseEncoder.from_pretrained(config.dense.model, device=device)


def check_unit_vectors(colbert_config: dict[str, Any], config: IndexConfig) -> None:
    """The compressed format codes unit vectors around unit centroids; a model whose vectors
    are not normalized (Hofstätter's ColBERT) is indexed uncompressed only."""
    if config.codec.compressed and not colbert_config.get("normalize", True):
        raise ConfigError(
            "this model's token vectors are not normalized (ColBERTConfig.normalize=False): "
            "the compressed index needs unit vectors; build with nbits=None"
        )


def _load_model(model: Any, config: IndexConfig, device: str) -> ColBERT:
    if isinstance(model, ColBERT):
        limit = usable_positions(model.backbone.config)
        if config.doc_maxlen and limit and config.doc_maxlen > limit:
            raise ConfigError(
                f"IndexConfig.doc_maxlen={config.doc_maxlen} exceeds the {limit} tokens the "
                f"backbone takes (max_position_embeddings)"
            )
        if torch.device(device) != model.device:
            model = copy.deepcopy(model).to(device)
        return model
    if model is not None and not isinstance(model, str | os.PathLike):
        raise ConfigError(f"model must be a ColBERT, a path or None, got {type(model).__name__}")
    overrides = {"doc_maxlen": config.doc_maxlen} if config.doc_maxlen else {}
    return ColBERT.from_pretrained(model, device=device, **overrides)


def _effective_config(model: ColBERT, config: IndexConfig) -> dict[str, Any]:
    if config.doc_maxlen:
        return model.config.replace(doc_maxlen=config.doc_maxlen).to_dict()
    return model.config.to_dict()
