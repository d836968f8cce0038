"""`update_index`: add documents to a finished index and delete documents from it.

An update never touches the live folder until it is complete: the new version is staged in
`<folder>.updating/` (unchanged chunk files hard-linked, changed chunks rewritten, the doc
store copied and edited, new documents encoded into a side index `<folder>.adding/` by the
normal build), its manifest is written, the search components are updated by the callers'
updaters, and the staged folder is then renamed onto the old one. A crash or Ctrl-C at any
point before that rename leaves the old index exactly as it was.

Internal indices stay contiguous: deleted documents are removed from the chunks, doc store
and id list (later documents move down), added ones are appended in collection order; a
replaced document is deleted and appended again.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from latesearch._atomic import replace_folder
from latesearch.compressed.arrays import chunk_digest, save_npy
from latesearch.compressed.centroids import Assigner
from latesearch.compressed.coding import code_blocks
from latesearch.errors import ConfigError, InputError
from latesearch.indexing.builder import build_index
from latesearch.indexing.checksums import check_component
from latesearch.indexing.compression import write_ivf
from latesearch.indexing.config import IndexConfig
from latesearch.indexing.docstore import DocStoreWriter
from latesearch.indexing.files import folder_bytes, link_or_copy, writer_lock
from latesearch.indexing.filters import CompiledFilter
from latesearch.indexing.manifest import (
    CHUNKS_DIR,
    CODEC_DIR,
    DOC_ID_OFFSETS,
    DOC_IDS,
    DOCSTORE,
    IVF_DIR,
    ChunkInfo,
    Manifest,
    chunk_files,
    component_dirs,
    compressed_chunk_files,
    dense_chunk_file,
    norms_chunk_file,
    span_chunk_files,
)
from latesearch.indexing.pooling import load_spans, save_spans, text_tokens
from latesearch.indexing.reading import documents_of
from latesearch.indexing.storage import IndexStore, building_folder


@dataclass
class IndexChange:
    """How an update changed document and token positions (for component updaters)."""

    removed: np.ndarray  # old internal indices of the deleted documents, sorted
    doc_map: np.ndarray  # (old n_docs,) new index of every old document, -1 if deleted
    first_added_token: int  # global token offset of the first added document's embeddings
    added: int

    @property
    def tokens_moved(self) -> bool:
        """Whether any kept embedding changed its global position (only deletions do that)."""
        return bool(self.removed.size)


# (component folder to write, the index before, the index after, the change)
ComponentUpdater = Callable[[Path, IndexStore, IndexStore, IndexChange], None]


@dataclass
class UpdateSummary:
    """What an update did."""

    added: int = 0
    deleted: int = 0
    replaced: int = 0
    docs: int = 0
    embeddings: int = 0
    components: tuple[str, ...] = ()
    unknown: list[str] = field(default_factory=list)  # ids to delete the index lacked
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "components": list(self.components)}

    def __str__(self) -> str:
        comps = ", ".join(self.components) or "none"
        return (
            f"added {self.added:,} (replacing {self.replaced:,}), deleted {self.deleted:,}; "
            f"the index now holds {self.docs:,} documents, {self.embeddings:,} embeddings; "
            f"components updated: {comps}; {self.seconds:.1f} s"
        )


def updating_folder(folder: str | os.PathLike) -> Path:
    """Where an update of `folder` is staged: `<folder>.updating` next to it."""
    folder = Path(folder)
    return folder.with_name(folder.name + ".updating")


def update_index(
    folder: str | os.PathLike,
    *,
    add: Any = None,
    delete: Iterable[str] = (),
    model: Any = None,
    replace: bool = False,
    missing: str = "raise",
    progress: bool = True,
    updaters: Mapping[str, ComponentUpdater] | None = None,
    delete_filter: CompiledFilter | None = None,
    max_docs: int | None = None,
) -> tuple[IndexStore, UpdateSummary]:
    """Delete the documents `delete` and add the collection `add` in one atomic update.

    `add`: a path or an iterable of documents (as `build_index` takes), encoded with
    `model` (a ColBERT whose fingerprint must match the index's; required with `add`) and
    the index's own IndexConfig. An added id that the index already holds is an error
    unless `replace`, which replaces that document. `missing` ("raise" or "skip") is what
    an unknown id in `delete` does. `updaters` maps every component folder of the index
    (e.g. "bm25", "ann") to the function that writes its new version. `delete_filter` (a
    `compile_filter` result) also deletes every document it matches, evaluated on the
    version being updated, under the writer's lock. The index may hold at most `max_docs`
    documents after the update, and at most its IndexConfig's `max_docs` (InputError
    naming field "documents", before anything is encoded).
    Returns the reopened index and a summary; with nothing deleted and nothing to add,
    the index is left as it was.
    """
    folder, updaters = Path(folder), dict(updaters or {})
    started = time.monotonic()
    delete = [delete] if isinstance(delete, str) else list(delete)
    if add is None and not delete and delete_filter is None:
        raise InputError("nothing to update: give documents to add or ids to delete")
    with writer_lock(folder):
        old = IndexStore.open(folder)
        try:
            components = _components(old, updaters)
            config = _index_config(old)
            removed, unknown = old.doc_indices(list(dict.fromkeys(delete)), missing=missing,
                                               field="delete")  # fmt: skip
            if delete_filter is not None:
                removed = np.union1d(removed, old.matching(delete_filter)).astype(np.int64)
            if add is not None:
                if model is None:
                    raise ConfigError("adding documents needs the index's model (model=...)")
                add = add if isinstance(add, str | os.PathLike) else list(add)
                replaced, n_new = _check_new_ids(old, add, config, replace=replace,
                                                 removed=removed)  # fmt: skip
            else:
                replaced, n_new = np.zeros(0, dtype=np.int64), 0
            removed = np.union1d(removed, replaced).astype(np.int64)
            if add is None and not removed.size:  # e.g. a filter that matches nothing
                summary = UpdateSummary(docs=old.n_docs, embeddings=old.n_embeddings,
                                        components=tuple(components))  # fmt: skip
                summary.unknown, summary.seconds = unknown, round(time.monotonic() - started, 3)
                return IndexStore.open(folder), summary
            _check_size(old.n_docs - removed.size + n_new, old.n_docs, config, max_docs)
            update = _Update(old, folder, config, {n: updaters[n] for n in components})
            summary = update.run(add, model, removed, progress=progress)
        finally:
            old.close()
    summary.deleted, summary.replaced = len(removed) - len(replaced), len(replaced)
    summary.unknown = unknown
    summary.seconds = round(time.monotonic() - started, 3)
    return IndexStore.open(folder), summary


def _check_size(after: int, now: int, config: IndexConfig, max_docs: int | None) -> None:
    """InputError (field "documents") when an update that adds would leave more
    documents than `max_docs` or the index's own limit (`IndexConfig.max_docs`)."""
    limits = [n for n in (max_docs, config.max_docs) if n is not None]
    if limits and after > now and after > min(limits):
        raise InputError(f"the update would leave {after:,} documents in the index; the "
                         f"limit is {min(limits):,} (it holds {now:,})",
                         field="documents")  # fmt: skip


def _components(store: IndexStore, updaters: Mapping[str, ComponentUpdater]) -> list[str]:
    """The component folders of the index; each must have an updater (never left stale)."""
    names = [path.name for path in component_dirs(store.folder)]
    stale = [n for n in names if n not in updaters]
    if stale:
        raise ConfigError(
            f"{store.folder}: no updater for the component(s) {stale}; they would be left "
            "out of date (update through latesearch.Index, or remove them first)"
        )
    return names


def _index_config(store: IndexStore) -> IndexConfig:
    """The index's IndexConfig; its format (compressed or not) is the manifest's, which
    configs saved before compression existed do not name."""
    source = f"{store.folder / 'manifest.json'}: index_config"
    config = IndexConfig.from_dict(store.manifest.index_config, source=source)
    codec = store.manifest.codec
    return config.replace(
        devices=None,  # the build's devices may not exist here
        nbits=None if codec is None else codec["nbits"],
        keep_full=bool(codec and codec.get("keep_full")),
    )


def _check_new_ids(
    old: IndexStore, add: Any, config: IndexConfig, *, replace: bool, removed: np.ndarray
) -> tuple[np.ndarray, int]:
    """Read the new documents' ids (before encoding anything): the old indices of those the
    index already holds and this update does not delete, which `replace` allows and
    otherwise is an error naming them; and how many documents are added."""
    _, docs = documents_of(add, config)
    ids = [doc.doc_id for doc in docs]
    if not ids:
        name = str(add) if isinstance(add, str | os.PathLike) else "<documents>"
        raise InputError(f"{name}: no documents to add")
    found, _ = old.doc_indices(ids, missing="skip")
    found = np.setdiff1d(found, removed)
    if found.size and not replace:
        held = set(old.doc_ids[found])
        position = next(n for n, doc_id in enumerate(ids) if doc_id in held)
        more = f" (and {found.size - 1} more)" if found.size > 1 else ""
        where = str(add) if isinstance(add, str | os.PathLike) else f"documents[{position}]"
        raise InputError(
            f"document id {ids[position]!r}{more} is already in the index {old.folder}; "
            "pass replace=True (--replace) to replace such documents",
            path=where, field="doc_id",
        )  # fmt: skip
    return found, len(ids)


class _Update:
    def __init__(self, old: IndexStore, folder: Path, config: IndexConfig,
                 updaters: Mapping[str, ComponentUpdater]) -> None:  # fmt: skip
        self.old, self.folder, self.config, self.updaters = old, folder, config, updaters
        self.stage = updating_folder(folder)
        self.side = folder.with_name(folder.name + ".adding")
        self.assign: Assigner | None = None

    def run(self, add: Any, model: Any, removed: np.ndarray, *, progress: bool) -> UpdateSummary:
        old = self.old
        keep = np.ones(old.n_docs, dtype=bool)
        keep[removed] = False
        kept = old.n_docs - removed.size
        leftovers = (self.stage, self.side, building_folder(self.side))  # never resumed
        for path in leftovers:  # left by an update that was interrupted
            shutil.rmtree(path, ignore_errors=True)
        try:
            added = self._encode(add, model, progress) if add is not None else None
            n_added = added.n_docs if added is not None else 0
            if kept + n_added == 0:
                raise InputError("the update would leave the index empty; delete it instead")
            (self.stage / CHUNKS_DIR).mkdir(parents=True)
            chunks = self._stage_chunks(keep, added)
            codec_meta = self._stage_codec(chunks)
            self._stage_docstore(removed, added, kept)
            change = IndexChange(
                removed=removed,
                doc_map=np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int64),
                first_added_token=int(old.doclens[keep].sum(dtype=np.int64)),
                added=n_added,
            )
            manifest = self._manifest(chunks, added, change, codec_meta)
            manifest.write(self.stage)
            with IndexStore.open(self.stage) as new:
                for name, update in self.updaters.items():
                    check_component(old.folder / name, full=True)  # what it reads is intact
                    update(self.stage / name, old, new, change)
            manifest.stats["bytes_on_disk"] = folder_bytes(self.stage)
            manifest.seal(self.stage)
            if added is not None:
                added.close()
            shutil.rmtree(self.side, ignore_errors=True)
            replace_folder(self.stage, self.folder)  # the old index survives until here
        except BaseException:
            for path in leftovers:
                shutil.rmtree(path, ignore_errors=True)
            raise
        return UpdateSummary(
            added=n_added,
            docs=manifest.n_docs,
            embeddings=manifest.n_embeddings,
            components=tuple(self.updaters),
        )

    # ------------------------------------------------------------------ steps
    def _encode(self, add: Any, model: Any, progress: bool) -> IndexStore:
        """The new documents as an index of their own, built the normal way (uncompressed:
        a compressed index codes them with its own centroids when they are staged)."""
        side_config = self.config.replace(nbits=None, keep_full=False)
        added = build_index(add, self.side, model, side_config, progress=progress)
        ours, theirs = self.old.manifest, added.manifest
        if theirs.model_fingerprint != ours.model_fingerprint:
            added.close()
            raise ConfigError(
                f"the model's fingerprint {theirs.model_fingerprint[:12]} differs from the "
                f"index's {ours.model_fingerprint[:12]}: add with the model that built it"
            )
        if theirs.colbert_config != ours.colbert_config or theirs.dtype != ours.dtype:
            added.close()
            raise ConfigError("the new documents were encoded with another ColBERT config")
        return added

    def _stage_chunks(self, keep: np.ndarray, added: IndexStore | None) -> list[ChunkInfo]:
        """Kept chunks hard-linked, chunks that lose documents rewritten, new ones appended
        (`keep`: which old documents stay; every added one does). A compressed index codes
        the new documents with its own centroids and buckets."""
        sources = [(self.old, keep)]
        if added is not None:
            sources.append((added, np.ones(added.n_docs, dtype=bool)))
        self._verify_rewritten(keep)
        out: list[ChunkInfo] = []
        doc = token = 0
        for store, kept in sources:
            for i, info in enumerate(store.chunks):
                span = slice(info.first_doc, info.first_doc + info.n_docs)
                lens, mask = store.doclens[span], kept[span]
                if not mask.any():
                    continue
                new = ChunkInfo(len(out), doc, 0, token, 0, "", "")
                if mask.all() and store.compressed == self.old.compressed:
                    new = self._link_chunk(store, info, new)
                else:
                    rows = np.repeat(mask, lens.astype(np.int64))
                    new = self._write_chunk(store, i, rows, lens[mask], new)
                    new = self._write_dense(store, i, mask, new)
                    new = self._write_spans(store, info, mask, new)
                out.append(new)
                doc, token = doc + new.n_docs, token + new.n_embeddings
        return out

    def _verify_rewritten(self, keep: np.ndarray) -> None:
        """Re-hash, before anything is written, every old chunk this update rewrites from
        its data (the ones losing documents), so that a damaged chunk is refused rather
        than given a fresh checksum. Chunks kept whole are linked with their checksums
        unchanged: damage to them stays detectable by `verify`."""
        for i, info in enumerate(self.old.chunks):
            kept = keep[info.first_doc : info.first_doc + info.n_docs]
            if kept.any() and not kept.all():
                self.old.verify_chunk(i)

    def _link_chunk(self, store: IndexStore, info: ChunkInfo, new: ChunkInfo) -> ChunkInfo:
        """An unchanged chunk: its files hard-linked under the new chunk number."""
        emb_name, lens_name = chunk_files(new.index)
        codes_name, residuals_name = compressed_chunk_files(new.index)
        spans_name, textlens_name = span_chunk_files(new.index)
        names = {info.embeddings: emb_name, info.doclens: lens_name, info.codes: codes_name,
                 info.residuals: residuals_name, info.norms: norms_chunk_file(new.index),
                 info.dense: dense_chunk_file(new.index), info.spans: spans_name,
                 info.textlens: textlens_name}  # fmt: skip
        for old_name, new_name in names.items():
            if old_name:
                link_or_copy(store.folder / old_name, self.stage / new_name)
        return dataclasses.replace(
            info,
            index=new.index,
            first_doc=new.first_doc,
            first_token=new.first_token,
            embeddings=emb_name if info.embeddings else "",
            doclens=lens_name,
            codes=codes_name if info.codes else "",
            residuals=residuals_name if info.residuals else "",
            norms=norms_chunk_file(new.index) if info.norms else "",
            dense=dense_chunk_file(new.index) if info.dense else "",
            spans=spans_name if info.spans else "",
            textlens=textlens_name if info.textlens else "",
        )

    def _write_spans(self, store: IndexStore, info: ChunkInfo, kept: np.ndarray,
                     new: ChunkInfo) -> ChunkInfo:  # fmt: skip
        """The token spans of a rewritten chunk's kept documents (a pooled index)."""
        loaded = load_spans(store.folder, info)
        if loaded is None:
            return new
        spans, textlens = loaded
        rows = np.repeat(kept, textlens.astype(np.int64))
        return dataclasses.replace(
            new, **save_spans(self.stage, new.index, spans[rows], textlens[kept])
        )

    def _write_dense(self, store: IndexStore, i: int, kept: np.ndarray,
                     new: ChunkInfo) -> ChunkInfo:  # fmt: skip
        """The pooled vectors of a rewritten chunk's kept documents (a dense view)."""
        if not self.old.has_dense:
            return new
        if not store.has_dense:
            raise ConfigError("the new documents were encoded without the index's dense view")
        vectors = np.asarray(store.dense_chunks()[i])[kept]
        save_npy(self.stage / dense_chunk_file(new.index), vectors)
        return dataclasses.replace(new, dense=dense_chunk_file(new.index),
                                   dense_sha256=chunk_digest(vectors))  # fmt: skip

    def _write_chunk(self, store: IndexStore, i: int, rows: np.ndarray, lens: np.ndarray,
                     new: ChunkInfo) -> ChunkInfo:  # fmt: skip
        """A chunk that lost documents (`rows`: its kept tokens), or a new chunk to code."""
        emb_name, lens_name = chunk_files(new.index)
        codes_name, residuals_name = compressed_chunk_files(new.index)
        lens = lens.astype(np.int32)
        save_npy(self.stage / lens_name, lens)
        new = dataclasses.replace(new, n_docs=int(lens.size), n_embeddings=int(rows.sum()),
                                  doclens=lens_name, doclens_sha256=chunk_digest(lens))  # fmt: skip
        whole = bool(rows.all())  # a new chunk: its files are used as they are
        keep_full = not self.old.compressed or self.config.codec.keep_full
        if keep_full and whole:
            info = store.chunks[i]
            link_or_copy(store.folder / info.embeddings, self.stage / emb_name)
            new = dataclasses.replace(new, embeddings=emb_name, sha256=info.sha256)
        elif keep_full:
            embeddings = np.asarray(store.embeddings_flat()[i])[rows]
            save_npy(self.stage / emb_name, embeddings)
            new = dataclasses.replace(new, embeddings=emb_name, sha256=chunk_digest(embeddings))
        if not self.old.compressed:
            return new
        norms = None  # an old chunk coded without stored norms keeps none
        if store.compressed:  # an old chunk losing documents
            codes = np.asarray(store.codes_flat()[i])[rows]
            residuals = np.asarray(store.residuals_flat()[i])[rows]
            stored = store.vectors.norms_flat()[i]
            norms = None if stored is None else np.asarray(stored)[rows]
        else:  # new documents, coded with the index's codec a block at a time
            codec = self.old.codec
            vectors = store.embeddings_flat()[i]
            vectors = vectors if whole else np.asarray(vectors)[rows]
            codes = np.empty(len(vectors), dtype=codec.codes_dtype)
            residuals = np.empty((len(vectors), codec.packed_dim), dtype=np.uint8)
            for start, block_codes, block_residuals in code_blocks(vectors, codec,
                                                                   self._assigner()):  # fmt: skip
                codes[start : start + len(block_codes)] = block_codes
                residuals[start : start + len(block_codes)] = block_residuals
            norms = codec.stored_norms(codes, residuals)
        save_npy(self.stage / codes_name, codes)
        save_npy(self.stage / residuals_name, residuals)
        new = dataclasses.replace(
            new, codes=codes_name, residuals=residuals_name,
            codes_sha256=chunk_digest(codes), residuals_sha256=chunk_digest(residuals),
        )  # fmt: skip
        if norms is None:
            return new
        save_npy(self.stage / norms_chunk_file(new.index), norms)
        return dataclasses.replace(new, norms=norms_chunk_file(new.index),
                                   norms_sha256=chunk_digest(norms))  # fmt: skip

    def _assigner(self) -> Assigner:
        if self.assign is None:
            assert self.old.codec is not None
            codec = self.config.codec
            self.assign = Assigner(self.old.codec.centroids32, codec.assignment, seed=codec.seed)
        return self.assign

    def _stage_codec(self, chunks: list[ChunkInfo]) -> dict[str, Any] | None:
        """A compressed index: its codec linked, its inverted file rebuilt from the staged
        codes (document numbers change with deletions); the manifest's new `codec` entry."""
        meta = self.old.manifest.codec
        if meta is None:
            return None
        self.old.verify_codec()
        (self.stage / CODEC_DIR).mkdir()
        for path in (self.old.folder / CODEC_DIR).iterdir():
            link_or_copy(path, self.stage / CODEC_DIR / path.name)
        assert self.old.codec is not None
        digests = write_ivf(self.stage, chunks, self.old.codec.n_centroids)
        sha = {k: v for k, v in meta.get("sha256", {}).items() if not k.startswith(IVF_DIR)}
        sha.update({f"{IVF_DIR}/{name}": digest for name, digest in digests.items()})
        return {**meta, "sha256": sha}

    def _stage_docstore(self, removed: np.ndarray, added: IndexStore | None, kept: int):
        """The old doc store copied, the removed documents deleted, the added appended."""
        self.old.verify_file(DOCSTORE)  # never carry damaged texts into a new version
        shutil.copyfile(self.old.folder / DOCSTORE, self.stage / DOCSTORE)
        writer = DocStoreWriter(self.stage / DOCSTORE)
        try:
            writer.remove(removed)
            n_docs = kept
            if added is not None:
                writer.append_from(added.folder / DOCSTORE, kept)
                n_docs += added.n_docs
            writer.write_id_map(self.stage, n_docs, DOC_IDS, DOC_ID_OFFSETS)
        finally:
            writer.close()

    def _manifest(self, chunks, added: IndexStore | None, change: IndexChange,
                  codec: dict[str, Any] | None) -> Manifest:  # fmt: skip
        old = self.old.manifest
        n_docs = sum(c.n_docs for c in chunks)
        n_embeddings = sum(c.n_embeddings for c in chunks)
        stats = dict(old.stats)
        history = list(stats.get("updates", []))
        history.append({
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "added": change.added,
            "removed": int(change.removed.size),
            "docs": n_docs,
        })  # fmt: skip
        stats.update(docs=n_docs, embeddings=n_embeddings, updates=history,
                     text_tokens=text_tokens(self.stage, chunks))  # fmt: skip
        if added is not None:
            for name in ("truncated_docs", "empty_docs"):
                stats[name] = int(stats.get(name, 0)) + int(added.manifest.stats.get(name, 0))
        return Manifest(
            **{**old.to_dict(), "chunks": chunks, "n_docs": n_docs,
               "n_embeddings": n_embeddings, "stats": stats, "codec": codec,
               "files": {}},  # recorded by `seal`
        )  # fmt: skip
