"""The optional search components stored inside an index folder: `bm25/` (BM25 first
stage: `bm25`, with the collection statistics of `bm25_statistics`) and `ann/` (faiss IVFPQ
over all document token embeddings: `ann`), built from an `IndexStore` and kept current by
updates. This module names them, builds and updates them, and `require`s them for a mode."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from latesearch.errors import ConfigError, MissingComponentError
from latesearch.indexing.checksums import check_component
from latesearch.indexing.storage import IndexStore
from latesearch.indexing.updating import ComponentUpdater, IndexChange

BM25_DIR, ANN_DIR = "bm25", "ann"
MODE_COMPONENTS = {"rerank": BM25_DIR, "e2e": ANN_DIR}  # "exact" needs none


def present_components(store: IndexStore) -> list[str]:
    """The search components the index holds: some of 'bm25', 'ann'."""
    return [name for name in (BM25_DIR, ANN_DIR) if (store.folder / name).is_dir()]


def servable_modes(store: IndexStore) -> list[str]:
    """The search modes the index can answer: "exact" always, "rerank" with bm25/, "e2e"
    on a compressed index (its engine) or with ann/, "hybrid" where both of those work;
    "dense", and "fused" where e2e works, on an index with a dense view."""
    present = present_components(store)
    modes = ["exact"] + [mode for mode, name in MODE_COMPONENTS.items() if name in present]
    if store.compressed and "e2e" not in modes:
        modes.append("e2e")
    if "rerank" in modes and "e2e" in modes:
        modes.append("hybrid")  # BM25 and end to end, fused
    if store.has_dense:
        modes.append("dense")
        if "e2e" in modes:
            modes.append("fused")  # end to end and the dense view, fused
    return modes


TEXT_BATCH = 1024
RETRAIN_GROWTH = 4.0  # update_ann trains again past this growth over its training size

Builder = Callable[[Path, IndexStore], None]


def require(store: IndexStore, name: str, mode: str) -> Path:
    """The component folder, or a MissingComponentError saying how to add it
    (StaleIndexError if an update has replaced the index folder since `store` opened it)."""
    store.check_current()
    folder = store.folder / name
    if not folder.is_dir():
        how = {
            BM25_DIR: "Index.load(...).add_bm25(), or build with --bm25 / Index.build(bm25=True)",
            ANN_DIR: "Index.load(...).add_ann(), or build without --no-ann",
        }[name]
        raise MissingComponentError(
            f"{store.folder}: mode={mode!r} needs the {name}/ component, which this index "
            f"lacks; add it with {how}"
        )
    check_component(folder, full=False)  # sizes only; `verify` re-hashes
    return folder


def bm25_documents(store: IndexStore) -> Iterator[tuple[str, str]]:
    """(doc_id, title + join + text) of every document, read from the index's doc store the
    way the encoder saw them."""
    join = store.manifest.config.title_join
    for start in range(0, store.n_docs, TEXT_BATCH):
        for doc in store.documents(np.arange(start, min(start + TEXT_BATCH, store.n_docs))):
            title = doc.get("title") or ""
            text = f"{title}{join}{doc['text']}" if title.strip() else doc["text"]
            yield doc["doc_id"], text


def build_bm25(folder: Path, store: IndexStore, config: Any = None) -> None:
    """Write a BM25 index of the store's documents into `folder`."""
    from latesearch.indexing.components.bm25 import BM25Index

    BM25Index.build(bm25_documents(store), config).save(folder)


def build_ann(folder: Path, store: IndexStore, config: Any = None) -> None:
    """Write a token-level ANN index of the store's embeddings into `folder`; its metric
    follows the model's similarity (cosine or l2)."""
    from latesearch.indexing.components.ann import ANNConfig, TokenANNIndex

    if not store.vectors.has_full:
        raise ConfigError(
            f"{store.folder}: the faiss ANN component indexes uncompressed vectors, which this "
            "compressed index does not keep (its end-to-end search is the engine; build with "
            "keep_full=True to add one anyway)"
        )
    config = dataclasses.replace(config or ANNConfig(), metric=store.colbert_config.similarity)
    TokenANNIndex.build(ChunkedEmbeddings(store), store.token_to_doc(), config).save(folder)


def update_bm25(folder: Path, old: IndexStore, new: IndexStore, change: IndexChange) -> None:
    """BM25 after an update: rebuilt from the new index's texts with the old settings (its
    statistics, document frequencies and lengths, depend on every document)."""
    from latesearch.indexing.components.bm25 import CONFIG_FILE, BM25Config

    build_bm25(folder, new, BM25Config.load(old.folder / BM25_DIR / CONFIG_FILE))


def update_ann(folder: Path, old: IndexStore, new: IndexStore, change: IndexChange) -> None:
    """The ANN index after an update, trained again only when it must be.

    Additions only: the new documents' embeddings are appended to the old index (same
    centroids and codebooks). With deletions, every kept embedding moves, so all of them
    are encoded again into an emptied copy of the old index (no training). It is rebuilt
    from scratch, training included, when its kind changes with the new size (flat below
    `flat_below` embeddings, IVFPQ above) or the index grew past `RETRAIN_GROWTH` times the
    size it was trained for (its partitions would be too few); `Index.add_ann()` retrains
    on demand.
    """
    from latesearch.indexing.components.ann import TokenANNIndex

    ann = TokenANNIndex.load(old.folder / ANN_DIR, mmap=False)
    n, kind = new.n_embeddings, ann.config.kind_for(new.n_embeddings)
    trained_for = int(ann.manifest.get("built_for") or len(ann))
    if kind != ann.kind or (kind == "ivfpq" and n > RETRAIN_GROWTH * trained_for):
        build_ann(folder, new, ann.config)
        return
    if change.tokens_moved:
        ann = ann.emptied()
        ann.add(ChunkedEmbeddings(new), new.token_to_doc())
    else:
        start = change.first_added_token
        ann.add(ChunkedEmbeddings(new, start), new.token_to_doc()[start:])
    ann.save(folder)


def updaters() -> dict[str, ComponentUpdater]:
    """`updaters` for `update_index`: one per component this layer builds."""
    from latesearch.indexing.components.calibration import CALIBRATION_DIR, update_calibration

    return {BM25_DIR: update_bm25, ANN_DIR: update_ann, CALIBRATION_DIR: update_calibration}


def builders(
    *,
    bm25: bool = False,
    ann: bool | None = None,
    bm25_config: Any = None,
    ann_config: Any = None,
) -> list[Builder]:
    """`extra_builders` for `build_index`: each writes its component into the staging folder.
    `ann` None builds the faiss ANN only for an uncompressed index (a compressed one searches
    end to end with its engine)."""
    out: list[Builder] = []
    if bm25:
        out.append(lambda staging, store: build_bm25(staging / BM25_DIR, store, bm25_config))

    def add_ann(staging: Path, store: IndexStore) -> None:
        if ann or not store.compressed:
            build_ann(staging / ANN_DIR, store, ann_config)

    if ann or ann is None:
        out.append(add_ann)
    return out


class ChunkedEmbeddings:
    """The token embeddings of a store from global token `start` on, as one read-only
    (N, dim) array-like over its memory-mapped chunks: supports `.shape`, `.dtype`,
    `[a:b]` and `[int array]`."""

    def __init__(self, store: IndexStore, start: int = 0) -> None:
        self.store, self.start = store, start
        self.shape = (store.n_embeddings - start, store.dim)
        self.dtype = np.dtype(store.dtype)
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            block = self.store.token_range(self.start + start, self.start + stop)
            return block if step == 1 else block[::step]
        rows = np.asarray(key, dtype=np.int64).reshape(-1) + self.start
        out = np.empty((rows.size, self.shape[1]), dtype=self.dtype)
        for first, array in self.store.vectors.iter_embedding_chunks():
            hit = (rows >= first) & (rows < first + array.shape[0])
            if hit.any():
                out[hit] = array[rows[hit] - first]
        return out
