"""`Index`: build, load and search a ColBERT index in one object.

index = Index.build("corpus.jsonl", "indexes/corpus", bm25=True)
index = Index.load("indexes/corpus")
hits = index.search("query text", k=10)                      # end-to-end (ANN)
hits = index.search(["q1", "q2"], k=1000)                     # list of lists
hits = index.search("query text", k=10, mode="rerank")        # BM25 top-1000 + MaxSim
hits = index.search("query text", k=10, mode="exact")         # every document
hits = index.rerank("query text", ["doc-17", "doc-3"], k=10)  # given candidates
hits = index.search("query text", explain=True)               # why: hit.explanation
print(hits[0].render_highlights(style="ansi"))                # the words that matched
index.add("more.jsonl")                                       # new documents
index.delete(["doc-3"])                                       # documents removed
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch

from latesearch.errors import ConfigError, InputError
from latesearch.indexing import (
    IndexConfig,
    IndexStore,
    UpdateSummary,
    VerifyReport,
    build_index,
    hub,
    update_index,
)
from latesearch.indexing.components import (
    ANN_DIR,
    BM25_DIR,
    MissingComponentError,
    build_ann,
    build_bm25,
    builders,
    present_components,
    updaters,
)
from latesearch.indexing.components.calibration import (
    CALIBRATION_DIR,
    Calibration,
    calibration_of,
    fit_judged,
)
from latesearch.indexing.field_indexes import add_field_indexes
from latesearch.indexing.filters import compile_filter
from latesearch.indexing.reading import folder_changes
from latesearch.modeling import ColBERT
from latesearch.modeling.onnx import attach_onnx, check_backend
from latesearch.search.explain import Explanation, explain_documents
from latesearch.search.highlight import highlights
from latesearch.search.models import ModelMismatchError, load_index_model
from latesearch.search.modes import get_mode, servable_modes
from latesearch.search.request import SearchRequest
from latesearch.search.results import Hit, Hits
from latesearch.search.searcher import Ranked, Searcher, check_queries
from latesearch.search.timing import SearchTimings

__all__ = ["Hit", "Hits", "Index", "MissingComponentError", "ModelMismatchError",
           "component_builders"]  # fmt: skip

ModelArg = ColBERT | str | os.PathLike | None


def component_builders(
    *,
    bm25: bool = False,
    ann: bool | None = None,
    bm25_config: Any = None,
    ann_config: Any = None,
) -> list[Any]:
    """`extra_builders` for `build_index` (used by the `latesearch index` CLI)."""
    return builders(bm25=bm25, ann=ann, bm25_config=bm25_config, ann_config=ann_config)


class Index:
    """A ColBERT index on disk (memory-mapped) plus the model that encodes its queries.

    The model is loaded on the first query: the one given, or the manifest's
    `model_source`; its fingerprint must match the index's unless `check_model=False`.
    `last_timings` holds the per-stage `SearchTimings` of the latest search or rerank.
    `backend="onnx"` encodes queries with ONNX Runtime (`onnx_precision` "fp32" or "int8",
    `onnx_threads`; needs latesearch[onnx]), exported from the checked model and cached.
    """

    def __init__(
        self,
        store: IndexStore,
        model: ModelArg = None,
        *,
        device: str | torch.device | None = None,
        check_model: bool = True,
        backend: str = "torch",
        onnx_precision: str = "fp32",
        onnx_threads: int | None = None,
    ) -> None:
        check_backend(backend, onnx_precision, onnx_threads)  # fails before any loading
        self.store = store
        self._device, self._check_model = device, check_model
        self._calibration: tuple[Calibration, str] | None = None  # and where it comes from
        self._calibration_of: IndexStore | None = None  # the store it was read from

        self._shared: Callable[[], ColBERT] | None = None  # see `use_model`
        # what identifies the model `load` would load (None: a ColBERT object was given)
        self.model_key: tuple[Any, ...] | None = None
        if not isinstance(model, ColBERT):
            manifest = store.manifest
            self.model_key = (manifest.model_fingerprint, str(model or manifest.model_source),
                              json.dumps(manifest.colbert_config, sort_keys=True, default=str),
                              str(device), backend, onnx_precision, onnx_threads)  # fmt: skip

        def load() -> ColBERT:
            if self._shared is not None:  # another index's, checked as one given
                return load_index_model(store, self._shared(), check=check_model)
            loaded = load_index_model(store, model, device=device, check=check_model)
            current = getattr(loaded, "onnx_encoder", None)
            if backend == "onnx" and (current is None or current.precision != onnx_precision):
                attach_onnx(loaded, onnx_precision, threads=onnx_threads)
            return loaded

        self.searcher = Searcher(store, load, device=device)

    # ------------------------------------------------------------------ building / loading
    @classmethod
    def build(
        cls,
        collection: Any,
        folder: str | os.PathLike,
        model: ModelArg = None,
        *,
        bm25: bool = False,
        ann: bool | None = None,
        ann_config: Any = None,
        bm25_config: Any = None,
        overwrite: bool = False,
        resume: bool = False,
        progress: bool = True,
        device: str | torch.device | None = None,
        config: IndexConfig | None = None,
        ray: bool | str | None = None,
        **index_config_fields: Any,
    ) -> Index:
        """Encode `collection` into `folder`, compressed (by default with the codec of new
        indexes, `indexing.config.NEW_CODEC`; `nbits=None` keeps the uncompressed store);
        with `bm25` the BM25 component is built inside the index before it is published,
        and the faiss ANN component with `ann` (None: only for an uncompressed index, whose
        end-to-end mode needs it). Extra keyword arguments are `IndexConfig` fields (nbits,
        keep_full, batch_size, doc_maxlen, ...) overriding `config`. `ray` encodes on a Ray
        cluster (True or "auto": the one running, else a local one; "local"; or an address
        like "ray://head:10001"; `IndexConfig.ray`)."""
        config = config or IndexConfig()
        if ray is not None and ray is not False:
            index_config_fields["ray"] = "auto" if ray is True else ray
        if index_config_fields:
            config = config.replace(**index_config_fields)
        if ann and config.codec.compressed and not config.codec.keep_full:
            raise ConfigError(
                "ann=True needs uncompressed vectors: a compressed index searches end to end "
                "with its engine (build with keep_full=True, or nbits=None, for a faiss ANN)"
            )
        store = build_index(
            collection,
            folder,
            model,
            config,
            overwrite=overwrite,
            resume=resume,
            progress=progress,
            extra_builders=builders(
                bm25=bm25, ann=ann, bm25_config=bm25_config, ann_config=ann_config
            ),
        )
        return cls(store, model, device=device)

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        model: ModelArg = None,
        *,
        device: str | torch.device | None = None,
        check_model: bool = True,
        backend: str = "torch",
        onnx_precision: str = "fp32",
        onnx_threads: int | None = None,
    ) -> Index:
        """Open (memory-map) an index; the model is loaded on the first query (`backend`:
        "torch", or "onnx" with `onnx_precision` and `onnx_threads`, see `Index`)."""
        return cls(IndexStore.open(folder), model, device=device, check_model=check_model,
                   backend=backend, onnx_precision=onnx_precision,
                   onnx_threads=onnx_threads)  # fmt: skip

    # ------------------------------------------------------------------ the hub
    def push_to_hub(self, repo_id: str, **options: Any) -> str:
        """Upload the index (verified first: every checksum) with its hub manifest and a
        generated card to a Hugging Face Hub dataset repository; the commit's URL.
        `options`: `model_repo`, `model_revision` (where the query model is published,
        when it is neither the default nor a hub checkpoint), `evaluation` (a mapping of
        measures for the card), `collection` (its name), `private`, `revision`,
        `commit_message`, `repo_type`, `token`, `api` (see `latesearch.indexing.hub.push`).
        Running it again after an interruption resumes the upload."""
        return hub.push(self.folder, repo_id, **options)

    @classmethod
    def from_hub(
        cls,
        repo_id: str,
        *,
        revision: str | None = None,
        folder: str | os.PathLike | None = None,
        repo_type: str = hub.REPO_TYPE,
        verify: bool = False,
        token: str | None = None,
        api: Any = None,
        **load_options: Any,
    ) -> Index:
        """A prebuilt index from the Hugging Face Hub, at `revision` (a branch, tag or
        commit; None: the default branch): downloaded into `folder` (default: a cache
        folder per commit, `hub.cached_folder`) and verified before it is used (every
        file's hash, the index's checksums, the model's fingerprint); an interrupted
        download resumes. A copy already pulled is reused (its sizes checked; `verify`
        re-hashes it). `load_options` are `Index.load`'s."""
        target = hub.fetch(repo_id, revision=revision, folder=folder, repo_type=repo_type,
                           token=token, api=api)  # fmt: skip
        index = cls.load(target, **load_options)
        if verify:
            index.verify()
        if load_options.get("check_model", True):
            _ = index.model  # the model's fingerprint checked now, not at the first query
        return index

    def use_model(self, model: Callable[[], ColBERT]) -> None:
        """Encode queries with the model `model()` returns when the first query needs it
        (e.g. another index's with the same `model_key`, so that a server holding many
        indexes of one model loads it once); its fingerprint is checked as ever."""
        self._shared = model

    def reloaded(self) -> Index:
        """A new `Index` on the version of the folder on disk now (after an update published
        by another object or process), sharing this one's model; this one is unchanged and
        keeps reading the version it opened."""
        return Index(IndexStore.open(self.folder), self.model, device=self._device,
                     check_model=self._check_model)  # fmt: skip

    def add_bm25(self, config: Any = None) -> Path:
        """Build (or rebuild) the `bm25/` component from the stored texts, atomically."""
        path = self.store.add_component(BM25_DIR, lambda tmp: build_bm25(tmp, self.store, config))
        self.searcher.reset_components()
        return path

    def add_ann(self, config: Any = None) -> Path:
        """Build (or rebuild) the `ann/` component (faiss IVFPQ, or flat when tiny)."""
        path = self.store.add_component(ANN_DIR, lambda tmp: build_ann(tmp, self.store, config))
        self.searcher.reset_components()
        return path

    def create_field_index(self, fields: str | list[str]) -> frozenset[str]:
        """Give metadata field(s) a field index, so that a filter on them costs what it
        selects rather than a scan of every document's metadata (as `IndexConfig.
        filter_fields` does at build time); kept by every later update. Published as a new
        version, atomically like `add`. Returns every indexed field."""
        store = add_field_indexes(self.folder, [fields] if isinstance(fields, str) else fields)
        self.store.close()
        self.store = self.searcher.store = store
        self.searcher.reset_components()
        return store.indexed_fields

    # ------------------------------------------------------------------ updating
    def add(
        self, collection: Any, *, replace: bool = False, progress: bool = True
    ) -> UpdateSummary:
        """Encode the documents of `collection` (a path or an iterable, as `build`
        takes) with the index's model and add them, updating bm25/ and ann/ too (ANN
        appended to without retraining). An id the index already holds is an error unless
        `replace`. Atomic: after a crash or Ctrl-C the index is as it was."""
        return self.update(add=collection, replace=replace, progress=progress)

    def delete(self, doc_ids: str | list[str] | None = None, *, filter: Any = None,  # noqa: A002
               missing: str = "raise") -> UpdateSummary:  # fmt: skip
        """Remove documents by id (an unknown id raises `UnknownDocumentError` unless
        missing="skip"; the summary's `unknown` lists them), or every document whose
        metadata match `filter` (the search filter language, e.g. `{"year": {"$lt":
        2000}}`; a bad filter is an InputError naming its field, before anything changes;
        one matching nothing changes nothing). Atomic, like `add`."""
        if (doc_ids is None) == (filter is None):
            raise InputError("give either ids to delete or a filter", field="doc_ids")
        if filter is not None:
            return self.update(delete_filter=compile_filter(filter))
        return self.update(delete=doc_ids, missing=missing)

    def update(
        self,
        *,
        add: Any = None,
        delete: str | list[str] = (),
        replace: bool = False,
        missing: str = "raise",
        progress: bool = True,
        delete_filter: Any = None,
        max_docs: int | None = None,
    ) -> UpdateSummary:
        """Delete `delete` (and the documents matching `delete_filter`) and add `add` in
        one atomic step (see `add` and `delete`); the index may hold at most `max_docs`
        documents after it (and at most its `IndexConfig.max_docs`)."""
        store, summary = update_index(
            self.folder,
            add=add,
            delete=delete,
            delete_filter=None if delete_filter is None else compile_filter(delete_filter),
            max_docs=max_docs,
            model=self.model if add is not None else None,
            replace=replace,
            missing=missing,
            progress=progress,
            updaters=updaters(),
        )
        self.store.close()
        self.store = self.searcher.store = store
        self.searcher.reset_components()
        return summary

    def sync(self, folder: str | os.PathLike, *, progress: bool = True) -> UpdateSummary:
        """Bring an index built from a folder of documents (`Index.build(folder)`) in line
        with it, in one atomic update: documents of new files added, of files whose
        modification time or size changed replaced, of removed files deleted. The
        summary's `files` says how many files were new, changed and removed."""
        on_error = self.store.manifest.index_config.get("on_error", "raise")
        changes = folder_changes(self.store.all_metadata(), folder, on_error)
        if not changes:
            summary = UpdateSummary(docs=len(self), embeddings=self.store.n_embeddings)
        else:
            summary = self.update(add=changes.documents or None, delete=changes.delete,
                                  replace=True, progress=progress)  # fmt: skip
        summary.files = str(changes)
        return summary

    # ------------------------------------------------------------------ properties
    @property
    def folder(self) -> Path:
        return self.store.folder

    @property
    def model(self) -> ColBERT:
        return self.searcher.model

    @property
    def components(self) -> list[str]:
        """The search components present: 'bm25', 'ann'."""
        return present_components(self.store)

    def describe(self) -> dict[str, Any]:
        """documents, embeddings, model, components, servable modes, and the calibration
        in use (its `source`, "index" or "shipped", and what it was fitted on) or None."""
        store, calibration = self.store, self.calibration
        about = None if calibration is None else calibration.describe(self.calibration_source)
        return {"documents": store.n_docs, "embeddings": store.n_embeddings,
                "model": store.manifest.model_source, "components": self.components,
                "modes": servable_modes(store), "calibration": about}  # fmt: skip

    def verify(self) -> VerifyReport:
        """Re-hash every file of the index against its checksums (reads it all);
        IndexCorruptError names the first file that differs. The report lists files with
        no checksum (an index or component written by an older latesearch)."""
        return self.store.verify()

    def is_current(self) -> bool:
        """Whether the folder on disk is still the version this object opened (an update
        by another object or process publishes a new one: see `reloaded`)."""
        return self.store.is_current()

    @property
    def last_timings(self) -> SearchTimings | None:
        return self.searcher.last_timings

    def __len__(self) -> int:
        return self.store.n_docs

    def __repr__(self) -> str:
        return f"Index({str(self.folder)!r}, n_docs={len(self)}, components={self.components})"

    # ------------------------------------------------------------------ searching
    @overload
    def search(self, queries: str, k: int | None = ..., mode: str | None = ...,
               **options: Any) -> Hits: ...  # fmt: skip
    @overload
    def search(self, queries: list[str], k: int | None = ..., mode: str | None = ...,
               **options: Any) -> list[Hits]: ...  # fmt: skip
    def search(
        self,
        queries: str | list[str],
        k: int | None = None,
        mode: str | None = None,
        *,
        request: SearchRequest | None = None,
        encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
        **options: Any,
    ) -> Hits | list[Hits]:
        """Top-`k` documents (10) of one query (→ Hits) or of a list of queries (→ list of
        Hits) in `mode` ("e2e"), or as `request` (a `SearchRequest`) says.

        Modes (`latesearch.search.modes`): "e2e" on a compressed index is the engine
        (`latesearch.search.engine`), on an uncompressed one faiss candidates re-ranked
        exactly; "rerank": BM25's top `bm25_k` re-ranked exactly; "exact": every document
        scored; "hybrid": BM25 and "e2e" fused; on an index with a dense view "dense" (its
        pooled vectors alone) and "fused" ("e2e" and the dense view fused).

        `options` are `SearchRequest`'s flat options (`latesearch.search.request.OPTIONS`):
        `filter` (a dict, or its JSON text: only documents whose metadata match, e.g.
        `{"year": {"$gte": 2020}}`; it restricts the candidates before they are scored),
        `return_text`, `return_metadata`, `min_relevance` (a calibrated index: only hits
        at least this likely relevant, see `calibrate`), `explain` (each hit's
        `explanation` and `highlights`, computed after the search from the vectors its
        score came from; implies `return_text`); the engine's `ncells`,
        `centroid_score_threshold`, `ndocs` (None: `EngineParams.auto`); faiss's
        `k_prime`, `nprobe`; `bm25_k`, `bm25_statistics`; `fusion` ("rrf", "score",
        "zscore"), `hybrid_weight` (the ColBERT side's weight, 0.5); `source` (where exact
        scores read vectors: "auto", "full", "residual"), `batch_size`, `device`.

        `encoded`: the queries' embeddings and mask as `model.encode_queries(texts,
        return_mask=True)` returns them, when already computed (not for "dense"/"fused").
        """
        request = as_request(request, k, mode, options)
        texts, single = _as_list(queries)
        allowed = None if request.filter is None else self.store.matching(request.compiled_filter)
        encoding = 0.0
        if request.explain and encoded is None and get_mode(request.mode).queries == "tokens":
            started = time.perf_counter()  # encoded once, for the search and the explanations
            encoded = self.model.encode_queries(texts, batch_size=request.batch_size,
                                                return_mask=True)  # fmt: skip
            encoding = time.perf_counter() - started
        ranked = self.searcher.search(texts, request, allowed=allowed, encoded=encoded)
        if encoding and self.searcher.last_timings is not None:
            self.searcher.last_timings.encode += encoding
            self.searcher.last_timings.total += encoding
        maxsim = get_mode(request.mode).maxsim_scores
        if request.min_relevance is not None:
            check_cut(self.folder, self.calibration, request.mode)
        counted = self._counted(texts, encoded) if maxsim else [None] * len(texts)
        results = [self._hits(r, request.return_text or request.explain,
                              return_metadata=request.return_metadata, counted=n)
                   for r, n in zip(ranked, counted, strict=True)]  # fmt: skip
        if request.min_relevance is not None:
            cut = request.min_relevance
            results = [Hits([h for h in hits if h.relevance >= cut]) for hits in results]
            ranked = [(s[: len(h)], i[: len(h)]) for (s, i), h in zip(ranked, results,
                                                                       strict=True)]  # fmt: skip
        if request.explain:
            for i, (hits, (_, idx)) in enumerate(zip(results, ranked, strict=True)):
                query = None if encoded is None else tuple(t[i : i + 1] for t in encoded)
                self._explain_hits(texts[i], hits, idx, request, query)
        return results[0] if single else results

    @property
    def calibration(self) -> Calibration | None:
        """The score -> probability of relevance mapping hits use: the index's own
        (`calibrate`), else the one shipped with the default model for an index built with
        that model; None. `calibration_source` says which."""
        if self._calibration_of is not self.store:
            self._calibration = calibration_of(self.store.folder,
                                               self.store.manifest.model_fingerprint)  # fmt: skip
            self._calibration_of = self.store
        return None if self._calibration is None else self._calibration[0]

    @property
    def calibration_source(self) -> str | None:
        """Where `calibration` comes from: "index" (its own), "shipped" (the default
        model's), or None (no calibration)."""
        return None if self.calibration is None else self._calibration[1]

    def calibrate(self, queries: dict[str, str], qrels: dict[str, dict[str, int]], *,
                  mode: str = "e2e", depth: int = 100, keep: bool = True,
                  **options: Any) -> Calibration:  # fmt: skip
        """Fit the probability that a hit is relevant from its bounded score (isotonic
        regression, `components.calibration`) on the top `depth` hits in `mode` of the
        judged `queries` (id -> text; `qrels`: id -> {doc_id: relevance}, > 0 relevant),
        and keep it with the index (`calibration/`; not with `keep=False`): hits then
        carry `relevance`, and searches take `min_relevance`. Fit it on queries you do not
        evaluate on."""
        check_maxsim(mode, "mode")
        fitted = fit_judged(lambda texts: self.search(texts, k=depth, mode=mode, **options),
                            queries, qrels, mode=mode, depth=depth,
                            model_fingerprint=self.store.manifest.model_fingerprint)  # fmt: skip
        if keep:
            self.store.add_component(CALIBRATION_DIR, fitted.save)
            self._calibration_of = None
        return fitted

    def explain(self, query: str, doc_id: str, *, source: str = "auto") -> Explanation:
        """Why `doc_id` scores what it does for `query`: per scored query token (markers
        and [MASK] expansions included), the document token that won its MaxSim, that
        token's span in the stored title or text, the similarity and its share of the
        score (`search.explain.Explanation`). `source`: the vectors, as `search`'s."""
        check_queries([query])
        index = self.store.doc_index(doc_id)
        explained = explain_documents(self.store, self.model, query, [index], source=source)[0]
        return self._calibrated(explained)

    def _calibrated(self, explanation: Explanation) -> Explanation:
        """The explanation with the hit's `relevance` and the `calibration` it comes from."""
        if self.calibration is not None and explanation.matches:
            bounded = explanation.score / len(explanation.matches)
            explanation.relevance = float(self.calibration.relevance([bounded])[0])
            explanation.calibration = self.calibration_source
        return explanation

    def _explain_hits(self, query: str, hits: Hits, idx: np.ndarray, request: SearchRequest,
                      encoded: tuple[torch.Tensor, torch.Tensor] | None) -> None:  # fmt: skip
        """Each hit's explanation and highlights (a fused hit's: of its MaxSim part)."""
        explained = explain_documents(self.store, self.model, query, idx,
                                      source=request.source, encoded=encoded)  # fmt: skip
        for hit, explanation in zip(hits, explained, strict=True):
            hit.explanation = self._calibrated(explanation)
            hit.highlights = highlights(explanation, hit.title or "", hit.text or "")

    def _counted(self, texts: list[str],
                 encoded: tuple[torch.Tensor, torch.Tensor] | None) -> list[int]:  # fmt: skip
        """The number of scored query tokens of each query (the bounded score's divisor)."""
        if encoded is not None:
            return [int(n) for n in torch.as_tensor(encoded[1]).bool().sum(1).tolist()]
        return self.model.tokenizer.queries(texts).output_mask.sum(1).tolist()

    def rerank(
        self,
        query: str | list[str],
        candidate_ids: list[str] | list[list[str]],
        k: int | None = None,
        *,
        missing: str = "raise",
        return_text: bool = False,
        device: str | torch.device | None = None,
        filter: Any = None,  # noqa: A002
        return_metadata: bool = False,
        encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
        source: str = "auto",
    ) -> Hits | list[Hits]:
        """Exact MaxSim of `query` against `candidate_ids` (duplicates counted once); the
        top-`k` (all when None). An id the index lacks raises `UnknownDocumentError` with
        missing="raise"; with "skip" it is left out and listed in the result's `skipped`.
        A list of queries takes a list of candidate lists and returns a list of Hits.
        `filter` drops the candidates whose metadata do not match (see `search`); `encoded`
        and `source` as in `search`."""
        texts, lists, single = candidate_lists(query, candidate_ids)
        _ = self.searcher.model  # loaded before the clock starts
        timings = SearchTimings(mode="rerank")
        indices, skipped = [], []
        with timings.stage("candidates"):
            allowed = None if filter is None else self.store.matching(filter)
            for ids in lists:
                found, unknown = self.store.doc_indices(list(dict.fromkeys(ids)), missing=missing)
                if allowed is not None:
                    found = found[np.isin(found, allowed)]
                indices.append(found)
                skipped.append(unknown)
        timings.total = timings.candidates
        ranked = self.searcher.rerank(texts, indices, k, device=device, timings=timings,
                                      encoded=encoded, source=source)  # fmt: skip
        counted = self._counted(texts, encoded)
        results = [self._hits(r, return_text, s, return_metadata=return_metadata, counted=n)
                   for r, s, n in zip(ranked, skipped, counted, strict=True)]  # fmt: skip
        return results[0] if single else results

    def _hits(self, ranked: Ranked, return_text: bool, skipped: list[str] = (), *,
              return_metadata: bool = False, counted: int | None = None) -> Hits:  # fmt: skip
        """Hits of (scores, doc indices); `counted`: the query's scored tokens, for the
        bounded score of MaxSim scores."""
        scores, idx = ranked
        ids = self.store.doc_ids[np.asarray(idx, dtype=np.int64)] if len(idx) else []
        wanted = (return_text or return_metadata) and len(idx)
        docs = self.store.documents(idx) if wanted else None
        hits = []
        calibration = self.calibration if counted else None
        for rank, (doc_id, score) in enumerate(zip(ids, scores.tolist(), strict=True)):
            hit = Hit(doc_id=doc_id, score=float(score), rank=rank + 1)
            if counted:
                hit.bounded_score = float(score) / counted
            if calibration is not None:
                hit.relevance = float(calibration.relevance([hit.bounded_score])[0])
                hit.calibration = self.calibration_source
            if docs is not None and return_text:
                hit.title, hit.text = docs[rank]["title"] or "", docs[rank]["text"]
            if docs is not None and return_metadata:
                hit.metadata = docs[rank]["metadata"]
            hits.append(hit)
        return Hits(hits, list(skipped))


def check_maxsim(mode: str, field: str) -> None:
    """InputError on `field` unless `mode` scores by MaxSim, as calibrations need."""
    if not get_mode(mode).maxsim_scores:
        raise InputError(f'{field}: calibrations are of MaxSim modes (e2e, rerank, exact), '
                         f'not "{mode}"', field=field)  # fmt: skip


def check_cut(folder: Path, calibration: Calibration | None, mode: str) -> None:
    """`min_relevance` needs a calibration (of the index at `folder`) and a MaxSim mode."""
    if calibration is None:
        raise InputError(f"{folder}: min_relevance needs a calibrated index (latesearch "
                         "calibrate; an index of the default model has one already)",
                         field="min_relevance")  # fmt: skip
    check_maxsim(mode, "min_relevance")


def candidate_lists(query: str | list[str], candidate_ids: Any
                    ) -> tuple[list[str], list[list[str]], bool]:  # fmt: skip
    """(queries, one candidate list per query, whether one query was given) of a rerank
    call, checked."""
    texts, single = _as_list(query)
    lists = [candidate_ids] if single else list(candidate_ids)
    if len(lists) != len(texts) or any(isinstance(c, str) for c in lists):
        raise InputError("candidate_ids must be a list of ids (one query) or one list per "
                         "query", field="candidate_ids")  # fmt: skip
    return texts, lists, single


def _as_list(queries: str | list[str]) -> tuple[list[str], bool]:
    if isinstance(queries, str):
        return check_queries([queries]), True
    return check_queries(queries), False


def as_request(request: SearchRequest | None, k: int | None, mode: str | None,
               options: dict[str, Any]) -> SearchRequest:  # fmt: skip
    """`request`, or one made of `k`, `mode` and flat `options` (not both)."""
    if request is None:
        return SearchRequest.of(k=k, mode=mode, **options)
    if not isinstance(request, SearchRequest):
        raise InputError(f"request must be a SearchRequest, got {type(request).__name__}",
                         field="request")  # fmt: skip
    if k is not None or mode is not None or options:
        raise InputError("give either a request or k, mode and options, not both",
                         field="request")  # fmt: skip
    return request
