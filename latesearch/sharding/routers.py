"""Where a sharded index's shards live: in this process (`LocalShards`) or in Ray actors,
one or more per shard, on any node of a cluster (`RayShards`). Both run the same
`ShardWorker` and answer `call(method, per-shard arguments)` with one result per shard."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latesearch.index import Index
from latesearch.indexing import UpdateSummary, VerifyReport
from latesearch.indexing.components.bm25_statistics import BM25Statistics
from latesearch.search.first_stage import bm25_ranked
from latesearch.search.request import SearchRequest
from latesearch.search.results import Hits


class ShardWorker:
    """One shard: an ordinary `Index`, searched with queries encoded elsewhere."""

    def __init__(self, folder: str, model: Any = None, device: str | None = None,
                 check_model: bool = True) -> None:  # fmt: skip
        self.index = Index.load(folder, model, device=device, check_model=check_model)

    def search(self, texts: list[str], request: SearchRequest,
               encoded: tuple[np.ndarray, np.ndarray] | None) -> list[Hits]:  # fmt: skip
        tensors = None if encoded is None else _tensors(encoded)
        return self.index.search(texts, request=request, encoded=tensors)

    def rerank(
        self, texts: list[str], candidates: list[list[str]], k: int | None,
        encoded: tuple[np.ndarray, np.ndarray], options: dict[str, Any],
    ) -> list[Hits]:  # fmt: skip
        return self.index.rerank(texts, candidates, k, encoded=_tensors(encoded), **options)

    def sides(self, texts: list[str], request: SearchRequest,
              encoded: tuple[np.ndarray, np.ndarray]) -> list[tuple[Hits, Hits]]:  # fmt: skip
        """The two rankings a "hybrid" or "fused" search fuses, each query's top
        `request.depth` of this shard: ("e2e" hits, BM25 hits with BM25 scores) or
        ("e2e", "dense")."""
        depth = request.depth
        late = self.search(texts, request.inner(k=depth, mode="e2e"), encoded)
        if request.mode == "fused":
            other = self.index.search(texts, request=request.inner(k=depth, mode="dense"))
        else:
            other = self.lexical(texts, depth, request)
        return list(zip(late, other, strict=True))

    def lexical(self, texts: list[str], depth: int, request: SearchRequest) -> list[Hits]:
        """Each query's BM25 top `depth` here, with BM25 scores (by the request's
        collection statistics where given), filtered by its filter."""
        store = self.index.store
        allowed = None if request.filter is None else store.matching(request.compiled_filter)
        ranked = bm25_ranked(store, self.index.searcher.bm25, texts, depth, allowed,
                             request.bm25.statistics)  # fmt: skip
        return [self.index._hits(r, request.return_text,
                                 return_metadata=request.return_metadata)
                for r in ranked]  # fmt: skip

    def bm25_statistics(self, texts: list[str]) -> BM25Statistics | None:
        """This shard's BM25 statistics of the queries' terms; None where its bm25/ cannot
        score with a whole collection's (saved without document lengths, or a BM25 variant
        other than Lucene's)."""
        bm25 = self.index.searcher.bm25
        return bm25.statistics(texts) if bm25.rescorable else None

    def scores_of(self, texts: list[str], maxsim_ids: list[list[str]],
                  dense_ids: list[list[str]], encoded: tuple[np.ndarray, np.ndarray],
                  source: str) -> list[tuple[list[float], list[float]]]:  # fmt: skip
        """Each query's exact MaxSim with `maxsim_ids[q]` and dense scores of
        `dense_ids[q]` (ids this shard holds), in the order given."""
        store, searcher = self.index.store, self.index.searcher
        indices = [store.doc_indices(ids)[0] for ids in maxsim_ids]
        ranked = [(np.zeros(0), idx) for idx in indices]
        if any(idx.size for idx in indices):
            ranked = searcher.rerank(texts, indices, None, encoded=_tensors(encoded),
                                     source=source)  # fmt: skip
        maxsim = []
        for idx, (scores, order) in zip(indices, ranked, strict=True):
            by_doc = dict(zip(order.tolist(), scores.tolist(), strict=True))
            maxsim.append([by_doc[i] for i in idx.tolist()])
        wanted = [q for q, ids in enumerate(dense_ids) if ids]
        dense: list[list[float]] = [[] for _ in texts]
        if wanted:
            rows = searcher.dense_scores([texts[q] for q in wanted])
            for row, q in zip(rows, wanted, strict=True):
                dense[q] = row[store.doc_indices(dense_ids[q])[0]].tolist()
        return list(zip(maxsim, dense, strict=True))

    def update(self, add: list[Any] | None, delete: list[str], replace: bool,
               missing: str, delete_filter: Any = None) -> UpdateSummary:  # fmt: skip
        """`Index.update`; with nothing to add or delete, the shard is left as it is."""
        if not add and not delete and delete_filter is None:
            store = self.index.store
            return UpdateSummary(docs=store.n_docs, embeddings=store.n_embeddings)
        return self.index.update(add=add, delete=delete, replace=replace, missing=missing,
                                 progress=False, delete_filter=delete_filter)  # fmt: skip

    def create_field_index(self, fields: list[str]) -> frozenset[str]:
        """`Index.create_field_index` on this shard: every field it indexes."""
        return self.index.create_field_index(fields)

    def matching(self, spec: Any) -> int:
        """How many documents of this shard the (compiled) filter `spec` matches."""
        return len(self.index.store.matching(spec))

    def known(self, doc_ids: list[str]) -> list[str]:
        """The ids among `doc_ids` this shard holds."""
        found, _ = self.index.store.doc_indices(doc_ids, missing="skip")
        return [str(i) for i in self.index.store.doc_ids[found]] if len(found) else []

    def folder_state(self) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """What `sync` compares with a folder: the shard's `on_error` setting and (doc_id,
        metadata) of its documents."""
        store = self.index.store
        return store.manifest.index_config.get("on_error", "raise"), store.all_metadata()

    def size(self) -> tuple[int, int]:
        """(documents, token embeddings)."""
        return self.index.store.n_docs, self.index.store.n_embeddings

    def verify(self) -> VerifyReport:
        return self.index.verify()

    def current(self) -> bool:
        """Whether the shard on disk is the version this worker opened."""
        return self.index.is_current()

    def describe(self) -> dict[str, Any]:
        """What the shard holds: documents, embeddings, model source, components, modes,
        calibration (`Index.describe`)."""
        return self.index.describe()

    def reload(self) -> None:
        """Reopen the shard (another replica changed it)."""
        self.index = self.index.reloaded()

    def pid(self) -> int:
        return os.getpid()


def _tensors(encoded: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.array(encoded[0])), torch.from_numpy(np.array(encoded[1]))


class LocalShards:
    """Every shard in this process, called in turn."""

    def __init__(self, folders: Sequence[Path], model: Any = None, device: str | None = None,
                 check_model: bool = True) -> None:  # fmt: skip
        self.device, self.check = device, check_model
        self.workers = [ShardWorker(str(f), model, device, check_model) for f in folders]

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """workers[i].method(*args[i]) for every shard i."""
        return [getattr(w, method)(*a) for w, a in zip(self.workers, args, strict=True)]

    def write(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """A write (an update) on every shard."""
        return self.call(method, args)

    def shared(self, value: Any) -> Any:
        """A value every shard reads (here: itself)."""
        return value

    def close(self) -> None:
        self.workers = []


class RayShards:
    """Shards in Ray actors (`replicas` per shard, called round-robin), placed by Ray on
    any node; calls to different shards run in parallel."""

    def __init__(self, folders: Sequence[Path], model: Any = None, *, address: str,
                 replicas: int = 1, cpus_per_actor: float = 1, gpus_per_actor: float = 0,
                 device: str | None = None, check_model: bool = True) -> None:  # fmt: skip
        from latesearch.indexing.ray_pool import connect

        ray = self.ray = connect(address)
        # kept while the actors live: Ray restarts a dead actor from this very object
        shared_model = self._model = ray.put(model) if model is not None and not isinstance(
            model, str | os.PathLike) else model  # fmt: skip
        actor = ray.remote(num_cpus=cpus_per_actor, num_gpus=gpus_per_actor,
                           max_restarts=3, max_task_retries=3)(ShardWorker)  # fmt: skip
        self.actors = [
            [actor.remote(str(f), shared_model, device, check_model) for _ in range(replicas)]
            for f in folders
        ]
        self._turn = 0

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Every shard's method on its arguments, in parallel; one result per shard."""
        self._turn += 1
        refs = [getattr(replicas[self._turn % len(replicas)], method).remote(*a)
                for replicas, a in zip(self.actors, args, strict=True)]  # fmt: skip
        return self.ray.get(refs)

    def write(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """A write (an update) on each shard's first replica, in parallel; the other
        replicas then reopen the shard."""
        first = [replicas[0] for replicas in self.actors]
        results = self.ray.get([getattr(a, method).remote(*x)
                                for a, x in zip(first, args, strict=True)])  # fmt: skip
        self.ray.get([r.reload.remote() for replicas in self.actors for r in replicas[1:]])
        return results

    def shared(self, value: Any) -> Any:
        """`value` put once into Ray's object store, read by every actor."""
        return self.ray.put(value)

    def close(self) -> None:
        """Stop the actors (the cluster stays up)."""
        for replicas in self.actors:
            for actor in replicas:
                self.ray.kill(actor)
        self.actors = []
