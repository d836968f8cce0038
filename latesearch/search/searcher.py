"""`Searcher`: query encoding, candidate generation and exact MaxSim scoring over one
on-disk index, in three modes: "e2e" (end to end: the engine of `latesearch.search.engine`
on a compressed index, the paper's faiss ANN candidates (Section 3.6) on an uncompressed
one), "rerank" (BM25 candidates, Section 3.5), "exact" (every document), "hybrid" (BM25
and end-to-end rankings fused, `latesearch.search.fusion`), and on an index with a dense
view "dense" (its pooled vectors alone, exact) and "fused" (MaxSim and the dense view
fused, `latesearch.search.dense_view`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from latesearch.data._io import first_non_text
from latesearch.errors import IndexCorruptError, InputError
from latesearch.indexing import IndexStore
from latesearch.indexing.components import ANN_DIR, BM25_DIR, require
from latesearch.indexing.components.bm25_statistics import BM25Statistics
from latesearch.modeling import ColBERT
from latesearch.search import dense_view
from latesearch.search.engine import Engine, EngineParams
from latesearch.search.engine.residual_scoring import exact_scores
from latesearch.search.exact import exhaustive_top_k
from latesearch.search.first_stage import ann_candidates, bm25_candidates, bm25_ranked, restrict
from latesearch.search.fusion import DEFAULT_DEPTH, check_fusion, fuse, fuse_union
from latesearch.search.ranking import top_k
from latesearch.search.rerank import DEFAULT_MAX_TOKENS, score_documents
from latesearch.search.timing import SearchTimings

MODES = ("e2e", "rerank", "exact", "hybrid", "dense", "fused")
Ranked = tuple[np.ndarray, np.ndarray]  # (scores, doc indices), best first


class Searcher:
    """Searches `store` with the model `load_model()` returns (called on first use).

    Scoring runs on `device` (default: the model's), in float16 on CUDA, float32 on CPU;
    embeddings are gathered from the memory map on CPU and then moved there.
    """

    def __init__(
        self,
        store: IndexStore,
        load_model: Callable[[], ColBERT],
        *,
        device: str | torch.device | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.store, self._load_model = store, load_model
        self.device = torch.device(device) if device is not None else None
        self.max_tokens = max_tokens
        self._model: ColBERT | None = None
        self._bm25: Any = None
        self._ann: Any = None
        self._engine: Engine | None = None
        self._dense_encoder: Any = None
        self.last_timings: SearchTimings | None = None

    # ------------------------------------------------------------------ components
    @property
    def model(self) -> ColBERT:
        if self._model is None:
            self._model = self._load_model()
        return self._model

    @property
    def bm25(self) -> Any:
        if self._bm25 is None:
            from latesearch.indexing.components.bm25 import BM25Index

            bm25 = BM25Index.load(require(self.store, BM25_DIR, "rerank/bm25"))
            self.store.check_current()  # not replaced while it was being read
            _check_size(self.store, BM25_DIR, len(bm25.doc_ids), self.store.n_docs)
            self._bm25 = bm25
        return self._bm25

    @property
    def ann(self) -> Any:
        if self._ann is None:
            from latesearch.indexing.components.ann import TokenANNIndex

            ann = TokenANNIndex.load(require(self.store, ANN_DIR, "e2e"))
            self.store.check_current()
            _check_size(self.store, ANN_DIR, len(ann), self.store.n_embeddings)
            self._ann = ann
        return self._ann

    @property
    def engine(self) -> Engine:
        """The compressed index's search engine (the inverted file memory-mapped)."""
        if self._engine is None:
            self._engine = Engine(self.store)
        return self._engine

    @property
    def dense_encoder(self) -> Any:
        """The query encoder of a "backbone" dense view (loaded on first use)."""
        if self._dense_encoder is None:
            from latesearch.modeling.dense import DenseEncoder

            path = self.store.manifest.config.dense.model
            self._dense_encoder = DenseEncoder.from_pretrained(path, device=self.model.device)
        return self._dense_encoder

    def reset_components(self) -> None:
        """Forget loaded components (after one was added or replaced)."""
        self._bm25 = self._ann = self._engine = None

    # ------------------------------------------------------------------ searching
    def search(
        self,
        queries: Sequence[str],
        k: int,
        mode: str = "e2e",
        *,
        k_prime: int | None = None,
        nprobe: int | None = None,
        bm25_k: int = 1000,
        batch_size: int = 128,
        device: str | torch.device | None = None,
        ncells: int | None = None,
        centroid_score_threshold: float | None = None,
        ndocs: int | None = None,
        source: str = "auto",
        allowed: np.ndarray | None = None,
        fusion: str | None = None,
        hybrid_weight: float = 0.5,
        encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
        bm25_statistics: BM25Statistics | None = None,
    ) -> list[Ranked]:
        """The top-`k` (scores, doc indices) of each query; timings in `last_timings`.
        `allowed`: sorted doc indices, the only ones that may be returned (a filter's).
        `encoded`: the queries' embeddings and mask (n, Lq, dim), (n, Lq) from this index's
        model, already computed (a sharded index encodes once for all its shards); not
        for the "dense" and "fused" modes, which also need the pooled vectors.
        `bm25_statistics`: a whole collection's BM25 statistics for the queries' terms, to
        score BM25 ("rerank", "hybrid") as that collection would (a sharded index's).

        `ncells`, `centroid_score_threshold` and `ndocs` tune the engine (compressed
        indexes; None: `EngineParams.for_k`'s defaults for k and the model); `k_prime` and
        `nprobe` the faiss ANN (uncompressed). `source`: where exact scores read vectors
        ("auto": uncompressed where stored, else decompressed residuals; "full";
        "residual")."""
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}", field="mode")
        texts = check_queries(queries)
        for name, value in (("k", k), ("bm25_k", bm25_k), ("batch_size", batch_size)):
            check_positive(name, value)
        for name, value in (("k_prime", k_prime), ("nprobe", nprobe)):
            if value is not None:
                check_positive(name, value)
        knobs = {"ncells": ncells, "ndocs": ndocs, "centroid_score_threshold":
                 centroid_score_threshold,
                 "query_augmentation": self.store.colbert_config.query_augmentation}
        params = EngineParams.for_k(k, **knobs)
        depth = max(k, DEFAULT_DEPTH)  # hybrid: each side's depth, and the engine's settings
        wide = EngineParams.for_k(depth, **knobs)
        self.store.check_source(source)  # a bad source fails before any work
        if mode in ("hybrid", "fused"):
            fusion = check_fusion(fusion, hybrid_weight, mode)
        engine = mode in ("e2e", "hybrid", "fused") and self.store.compressed
        _ = self.model
        if mode in ("dense", "fused"):
            self.store.dense_chunks()  # ConfigError without a dense view
            if self.store.dense_source == "backbone":
                _ = self.dense_encoder
        if mode in ("rerank", "hybrid"):
            _ = self.bm25
        if engine:
            _ = self.engine
        elif mode in ("e2e", "hybrid", "fused"):
            _ = self.ann
        if encoded is not None:
            encoded = self._check_encoded(encoded, len(texts), mode)
        timings = SearchTimings(n_queries=len(texts), mode=mode)
        started = time.perf_counter()
        out: list[Ranked] = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            if mode == "dense":
                scores = self.dense_scores(batch, timings)
                with timings.stage("score"):
                    out.extend(dense_view.ranked(row, k, allowed) for row in scores)
                continue
            if mode == "fused":
                Q, mask, scores = self._encode_both(batch, timings, device)
                late = self._e2e(Q, mask, depth, wide, timings, source, allowed, engine,
                                 k_prime, nprobe)  # fmt: skip
                for i, row in enumerate(scores):
                    out.append(self._fuse(Q[i : i + 1], mask[i : i + 1], late[i], row, k,
                                          depth, allowed, fusion, hybrid_weight, timings,
                                          source))  # fmt: skip
                continue
            if encoded is None:
                Q, mask, _ = self._encode(batch, timings, device)
            else:
                Q, mask = self._place(encoded, start, len(batch), timings, device)
            if mode == "hybrid":
                dense = self._e2e(Q, mask, depth, wide, timings, source, allowed, engine,
                                  k_prime, nprobe)  # fmt: skip
                with timings.stage("candidates"):
                    lexical = bm25_ranked(self.store, self.bm25, batch, depth, allowed,
                                          bm25_statistics)  # fmt: skip
                with timings.stage("score"):
                    out.extend(fuse(d, b, k, fusion=fusion, weight=hybrid_weight)
                               for d, b in zip(dense, lexical, strict=True))  # fmt: skip
                continue
            if mode == "exact" and allowed is not None:  # every allowed document scored
                out.extend(self._rerank(Q, mask, [allowed] * len(batch), k, timings, source))
                continue
            if mode == "exact":
                out.extend(self._exact(Q, mask, k, timings, source))
                continue
            if mode == "e2e":
                out.extend(self._e2e(Q, mask, k, params, timings, source, allowed, engine,
                                     k_prime, nprobe))  # fmt: skip
                continue
            with timings.stage("candidates"):
                cands = bm25_candidates(self.store, self.bm25, batch, bm25_k, allowed,
                                        bm25_statistics)  # fmt: skip
            out.extend(self._rerank(Q, mask, cands, k, timings, source))
        timings.total = time.perf_counter() - started
        self.last_timings = timings
        return out

    def rerank(
        self,
        queries: Sequence[str],
        candidates: Sequence[np.ndarray],
        k: int | None = None,
        *,
        device: str | torch.device | None = None,
        timings: SearchTimings | None = None,
        source: str = "auto",
        encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[Ranked]:
        """Exact MaxSim of each query against its own candidate doc indices; top-`k` (all
        candidates when k is None); `encoded` as in `search`."""
        texts = check_queries(queries)
        if len(candidates) != len(texts):
            raise InputError(
                f"{len(texts)} queries but {len(candidates)} candidate lists", field="candidates"
            )
        if k is not None:
            check_positive("k", k)
        _ = self.model  # loaded outside the timings
        timings = timings or SearchTimings(mode="rerank")
        timings.n_queries = len(texts)
        started = time.perf_counter()
        if encoded is None:
            Q, mask, _ = self._encode(texts, timings, device)
        else:
            encoded = self._check_encoded(encoded, len(texts), "rerank")
            Q, mask = self._place(encoded, 0, len(texts), timings, device)
        out = self._rerank(Q, mask, candidates, k, timings, source)
        timings.total += time.perf_counter() - started
        self.last_timings = timings
        return out

    # ------------------------------------------------------------------ stages
    def _check_encoded(self, encoded: Any, n: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """`encoded` checked against the queries and this index's model."""
        if mode in ("dense", "fused"):
            raise InputError(f'mode "{mode}" encodes its own queries (pooled vectors); '
                             "pass no encoded queries", field="encoded")  # fmt: skip
        try:
            Q, mask = (torch.as_tensor(t) for t in encoded)
        except (TypeError, ValueError) as err:
            raise InputError("encoded must be (embeddings, mask)", field="encoded") from err
        dim = self.store.dim
        if Q.ndim != 3 or Q.shape[0] != n or Q.shape[2] != dim or mask.shape != Q.shape[:2]:
            raise InputError(
                f"encoded must be embeddings ({n}, Lq, {dim}) and a mask ({n}, Lq) for {n} "
                f"queries, got {tuple(Q.shape)} and {tuple(mask.shape)}", field="encoded",
            )  # fmt: skip
        return Q, mask.to(torch.bool)

    def _place(
        self, encoded: tuple[torch.Tensor, torch.Tensor], start: int, n: int,
        timings: SearchTimings, device: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Queries start..start+n of `encoded` on the scoring device, as `_encode` leaves
        them."""
        target = self._target(device, timings)
        return _on_device(encoded[0][start : start + n], encoded[1][start : start + n], target)

    def _target(self, device: Any, timings: SearchTimings) -> torch.device:
        """The scoring device: the call's, else the searcher's, else the model's."""
        target = torch.device(device) if device is not None else self.device or self.model.device
        timings.device = str(target)
        return target

    def _encode(
        self, texts: list[str], timings: SearchTimings, device: Any, *, pooled: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Query embeddings and mask on the scoring device (float16 on CUDA, float32
        elsewhere); with `pooled`, also the queries' pooled vectors from the same pass."""
        model = self.model
        target = self._target(device, timings)
        with timings.stage("encode", target):
            vectors = None
            if pooled:
                Q, mask, vectors = model.encode_queries_and_pooled(texts)
            else:
                Q, mask = model.encode_queries(texts, to_cpu=False, return_mask=True)
            return (*_on_device(Q, mask, target), vectors)

    def _encode_both(self, texts: list[str], timings: SearchTimings, device: Any):
        """Token embeddings and mask of the queries, and their dense scores against every
        document: one forward pass where the dense view is the model's own pooled states."""
        if self.store.dense_source == "backbone":
            Q, mask, _ = self._encode(texts, timings, device)
            return Q, mask, self.dense_scores(texts, timings)
        Q, mask, pooled = self._encode(texts, timings, device, pooled=True)
        with timings.stage("candidates"):
            return Q, mask, self.store.dense_scores(pooled.numpy())

    def dense_scores(self, texts: list[str], timings: SearchTimings | None = None) -> np.ndarray:
        """(len(texts), n_docs) cosine of each query's dense vector with every document's
        (ConfigError without a dense view)."""
        timings = timings or SearchTimings(n_queries=len(texts), mode="dense")
        self.store.dense_chunks()
        encoder = self.dense_encoder if self.store.dense_source == "backbone" else None
        with timings.stage("encode"):
            vectors = dense_view.query_vectors(self.store, self.model, encoder, texts)
        with timings.stage("candidates"):
            return self.store.dense_scores(vectors)

    def _fuse(self, Q, mask, late: Ranked, dense: np.ndarray, k: int, depth: int, allowed,
              fusion, weight: float, timings: SearchTimings, source: str) -> Ranked:  # fmt: skip
        """One query's fused ranking: the union of MaxSim's and the dense view's top
        `depth`, each document with both scores (MaxSim computed where the end-to-end
        search did not return it)."""
        late_scores, late_docs = late
        dense_docs = dense_view.ranked(dense, depth, allowed)[1]
        missing = np.setdiff1d(dense_docs, late_docs)
        extra = exact_scores(self.store, Q, mask, missing, timings=timings, source=source,
                             similarity=self.store.colbert_config.similarity)  # fmt: skip
        with timings.stage("score"):
            docs = np.concatenate([late_docs, missing]).astype(np.int64)
            colbert = np.concatenate([late_scores, extra])
            return fuse_union(docs, colbert, dense[docs], k, fusion=fusion, weight=weight)

    def _e2e(self, Q, mask, k, params, timings, source, allowed, engine, k_prime, nprobe):
        """End-to-end top-`k` (the engine, or faiss candidates re-ranked)."""
        if engine:
            return self.engine.search(Q, mask, k, params, timings, source=source, allowed=allowed)
        with timings.stage("candidates"):
            cands = ann_candidates(self.ann, Q, mask, k_prime=k_prime, nprobe=nprobe)
            if allowed is not None:
                cands = [restrict(c, allowed, k) for c in cands]
        return self._rerank(Q, mask, cands, k, timings, source)

    def _rerank(self, Q, mask, candidates, k: int | None, timings, source) -> list[Ranked]:
        out = []
        for i, cands in enumerate(candidates):
            idx = np.asarray(cands, dtype=np.int64)
            scores = score_documents(
                self.store, Q[i : i + 1], mask[i : i + 1], idx, **self._scoring(Q, timings),
                source=source,
            )[0].numpy()  # fmt: skip
            with timings.stage("score"):
                out.append(top_k(scores, idx, idx.size if k is None else k))
        return out

    def _exact(self, Q, mask, k: int, timings, source) -> list[Ranked]:
        scores, idx = exhaustive_top_k(self.store, Q, mask, k, **self._scoring(Q, timings),
                                       source=source)  # fmt: skip
        with timings.stage("score"):
            return [top_k(s, i, k) for s, i in zip(scores, idx, strict=True)]

    def _scoring(self, Q: torch.Tensor, timings: SearchTimings) -> dict[str, Any]:
        return {
            "similarity": self.store.colbert_config.similarity,
            "dtype": Q.dtype,
            "timings": timings,
            "max_tokens": self.max_tokens,
        }


def check_queries(queries: Sequence[str]) -> list[str]:
    """A list of non-blank query strings, or InputError naming the bad one."""
    if isinstance(queries, str) or not isinstance(queries, Sequence):
        raise InputError("queries must be a list of strings", field="queries")
    texts = list(queries)
    for n, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"query {n} is {type(text).__name__}, not a string", field="query")
        if not text.strip():
            raise InputError(f"query {n} is empty", field="query")
        bad = first_non_text(text)
        if bad is not None:
            raise InputError(f"query {n} holds the character U+{ord(bad):04X}, which is not "
                             "text (a lone surrogate or a control character)", field="query")
    return texts


def check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}", field=name)


def _check_size(store: IndexStore, name: str, found: int, expected: int) -> None:
    if found != expected:
        raise IndexCorruptError(
            f"{store.folder / name}: holds {found} entries but the index has {expected}; "
            "it is stale: rebuild it (add_bm25() / add_ann())"
        )


def _on_device(Q: torch.Tensor, mask: torch.Tensor,
               target: torch.device) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Query embeddings and mask as scoring takes them: on `target`, float16 on CUDA,
    float32 elsewhere."""
    dtype = torch.float16 if target.type == "cuda" else torch.float32
    return Q.to(device=target, dtype=dtype), mask.to(target)
