"""`Searcher`: the stages every search mode is made of, over one on-disk index: query
encoding (on the scoring device), end-to-end search (the engine of `search.engine` on a
compressed index, the paper's faiss ANN candidates on an uncompressed one), BM25, exact
MaxSim of candidates or of every document, and the dense view's scores. `search` runs a
`SearchRequest` in its mode (`search.modes`: one module per mode)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from latesearch._configio import check_positive
from latesearch.data._io import first_non_text
from latesearch.errors import IndexCorruptError, InputError
from latesearch.indexing import IndexStore
from latesearch.indexing.components import ANN_DIR, BM25_DIR, require
from latesearch.modeling import ColBERT
from latesearch.search import dense_view
from latesearch.search.engine import Engine
from latesearch.search.exact import exhaustive_top_k
from latesearch.search.first_stage import ann_candidates, bm25_ranked, restrict
from latesearch.search.modes import Batch, SearchMode, get_mode
from latesearch.search.modes.base import Ranked
from latesearch.search.ranking import top_k
from latesearch.search.request import SearchRequest
from latesearch.search.rerank import DEFAULT_MAX_TOKENS, score_documents
from latesearch.search.timing import SearchTimings


class Searcher:
    """Searches `store` with the model `load_model()` returns (called on first use).

    Scoring runs on `device` (default: the model's), in float16 on CUDA, float32 on CPU;
    embeddings are gathered from the memory map on CPU and then moved there.

    Searches may run from several threads at once: components are loaded once (under a
    lock) and `last_timings` is the calling thread's latest search.
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
        self._loading = threading.RLock()  # components are loaded once, by one thread
        self._local = threading.local()  # each thread's last timings

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_loading", "_local")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _loading=threading.RLock(), _local=threading.local())

    @property
    def last_timings(self) -> SearchTimings | None:
        """The per-stage timings of this thread's latest search or rerank."""
        return getattr(self._local, "timings", None)

    @last_timings.setter
    def last_timings(self, timings: SearchTimings | None) -> None:
        self._local.timings = timings

    def _loaded(self, name: str, load: Callable[[], Any]) -> Any:
        """The component in attribute `name`, loaded by `load()` the first time."""
        value = getattr(self, name)
        if value is None:
            with self._loading:
                value = getattr(self, name)
                if value is None:
                    value = load()
                    setattr(self, name, value)
        return value

    # ------------------------------------------------------------------ components
    @property
    def model(self) -> ColBERT:
        return self._loaded("_model", self._load_model)

    @property
    def bm25(self) -> Any:
        def load() -> Any:
            from latesearch.indexing.components.bm25 import BM25Index

            bm25 = BM25Index.load(require(self.store, BM25_DIR, "rerank/bm25"))
            self.store.check_current()  # not replaced while it was being read
            _check_size(self.store, BM25_DIR, len(bm25.doc_ids), self.store.n_docs)
            return bm25

        return self._loaded("_bm25", load)

    @property
    def ann(self) -> Any:
        def load() -> Any:
            from latesearch.indexing.components.ann import TokenANNIndex

            ann = TokenANNIndex.load(require(self.store, ANN_DIR, "e2e"))
            self.store.check_current()
            _check_size(self.store, ANN_DIR, len(ann), self.store.n_embeddings)
            return ann

        return self._loaded("_ann", load)

    @property
    def engine(self) -> Engine:
        """The compressed index's search engine (the inverted file memory-mapped)."""
        return self._loaded("_engine", lambda: Engine(self.store))

    @property
    def dense_encoder(self) -> Any:
        """The query encoder of a "backbone" dense view (loaded on first use)."""

        def load() -> Any:
            from latesearch.modeling.dense import DenseEncoder

            path = self.store.manifest.config.dense.model
            return DenseEncoder.from_pretrained(path, device=self.model.device)

        return self._loaded("_dense_encoder", load)

    def reset_components(self) -> None:
        """Forget loaded components (after one was added or replaced)."""
        self._bm25 = self._ann = self._engine = None

    # ------------------------------------------------------------------ searching
    def search(
        self,
        queries: Sequence[str],
        request: SearchRequest,
        *,
        allowed: np.ndarray | None = None,
        encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[Ranked]:
        """Each query's top `request.k` (scores, doc indices) in `request.mode`; timings in
        `last_timings`. `allowed`: sorted doc indices, the only ones that may be returned
        (a filter's). `encoded`: the queries' embeddings and mask (n, Lq, dim), (n, Lq)
        from this index's model, already computed (a sharded index encodes once for all
        its shards); not for modes that encode their own (dense view) queries."""
        mode = get_mode(request.mode)
        texts = check_queries(queries)
        _ = self.model
        mode.prepare(self, request)  # components loaded (or refused) before any work
        self.store.check_source(request.source)
        if encoded is not None:
            encoded = self._check_encoded(encoded, len(texts), mode)
        timings = SearchTimings(n_queries=len(texts), mode=mode.name)
        started = time.perf_counter()
        out: list[Ranked] = []
        for start in range(0, len(texts), request.batch_size):
            part = texts[start : start + request.batch_size]
            batch = Batch(part, None, None, None, allowed, timings)
            if mode.queries == "both":
                batch.Q, batch.mask, batch.dense = self._encode_both(part, timings,
                                                                     request.device)  # fmt: skip
            elif mode.queries == "tokens" and encoded is None:
                batch.Q, batch.mask, _ = self._encode(part, timings, request.device)
            elif mode.queries == "tokens":
                batch.Q, batch.mask = self._place(encoded, start, len(part), timings,
                                                  request.device)  # fmt: skip
            out.extend(mode.run(self, batch, request))
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
            encoded = self._check_encoded(encoded, len(texts), None)
            Q, mask = self._place(encoded, 0, len(texts), timings, device)
        out = self._rerank(Q, mask, candidates, k, timings, source)
        timings.total += time.perf_counter() - started
        self.last_timings = timings
        return out

    # ------------------------------------------------------------------ stages
    def _check_encoded(self, encoded: Any, n: int,
                       mode: SearchMode | None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """`encoded` checked against the queries and this index's model."""
        if mode is not None and mode.queries != "tokens":
            raise InputError(f'mode "{mode.name}" encodes its own queries (pooled vectors); '
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

    # ------------------------------------------------------------------ stages of modes
    def end_to_end(self, batch: Batch, k: int, request: SearchRequest) -> list[Ranked]:
        """Each query's end-to-end top `k`: the engine (compressed), or faiss candidates
        re-ranked exactly (uncompressed)."""
        Q, mask, timings = batch.Q, batch.mask, batch.timings
        if self.store.compressed:
            params = request.engine.params()
            return self.engine.search(Q, mask, k, params, timings, source=request.source,
                                      allowed=batch.allowed)  # fmt: skip
        with timings.stage("candidates"):
            cands = ann_candidates(self.ann, Q, mask, k_prime=request.ann.k_prime,
                                   nprobe=request.ann.nprobe)  # fmt: skip
            if batch.allowed is not None:
                cands = [restrict(c, batch.allowed, k) for c in cands]
        return self.score_candidates(batch, cands, k, request.source)

    def lexical(self, batch: Batch, depth: int, request: SearchRequest) -> list[Ranked]:
        """Each query's BM25 top `depth` (scores, doc indices), scored with the request's
        collection statistics where given."""
        with batch.timings.stage("candidates"):
            return bm25_ranked(self.store, self.bm25, batch.texts, depth, batch.allowed,
                               request.bm25.statistics)  # fmt: skip

    def score_candidates(self, batch: Batch, candidates: Sequence[np.ndarray], k: int | None,
                         source: str) -> list[Ranked]:  # fmt: skip
        """Exact MaxSim of each query against its own candidate doc indices; its top `k`
        (every candidate when None)."""
        return self._rerank(batch.Q, batch.mask, candidates, k, batch.timings, source)

    def exhaustive(self, batch: Batch, k: int, source: str) -> list[Ranked]:
        """Each query's top `k` of every document, by exact MaxSim."""
        scores, idx = exhaustive_top_k(self.store, batch.Q, batch.mask, k,
                                       **self._scoring(batch.Q, batch.timings),
                                       source=source)  # fmt: skip
        with batch.timings.stage("score"):
            return [top_k(s, i, k) for s, i in zip(scores, idx, strict=True)]

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
            raise InputError(
                f"query {n} holds the character U+{ord(bad):04X}, which is not "
                "text (a lone surrogate or a control character)",
                field="query",
            )
    return texts


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
