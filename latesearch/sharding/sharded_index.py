"""`ShardedIndex`: N ordinary indexes behind one `Index`-like object.

index = ShardedIndex.build("corpus.jsonl", "indexes/corpus", n_shards=4)   # local
index = ShardedIndex.load("indexes/corpus", ray="auto")   # shards in Ray actors
hits = index.search("query text", k=10)

A document lives in the shard its id hashes to (`routing.shard_of`), so additions and
deletions go to the shard that owns the id. A query is encoded once, here; the encoded
query goes to every shard, each returns its top k with exact MaxSim scores, and the top k of
their union is the answer: for the exact modes ("exact", "rerank" of the same candidates,
given ids) it is the unsharded index's answer, since the global top k lies in the union of
the shards' top k. BM25 ("rerank" candidates, "hybrid") is scored with the whole
collection's statistics, every shard's added up (`indexing.components.bm25_statistics`), so each
shard's BM25 top k is the one an unsharded index finds among its documents; "rerank" then
equals the unsharded index. "e2e" searches each shard with its own centroids: at settings
that keep every candidate it also equals the unsharded index; at the defaults each shard
searches as widely as a whole index would. "dense" (exact scores of pooled vectors; each
shard encodes the query's pooled vector) merges exactly too. "hybrid" and "fused" merge
each of the two rankings they fuse and fuse them here (`latesearch.sharding.fusing`): they
equal the unsharded index where "e2e" does.

Hits carry `relevance` from one calibration over the merged scores: the sharded index's
own (`calibrate`, kept in its `calibration/` beside `shards.json`), else the default
model's shipped one for shards of that model; `min_relevance` cuts the merged hits.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from latesearch._atomic import check_replaceable, replace_folder
from latesearch._configio import check_positive
from latesearch.data import read_collection
from latesearch.errors import ConfigError, InputError
from latesearch.index import (
    Index,
    _as_list,
    as_request,
    candidate_lists,
    check_cut,
    check_maxsim,
)
from latesearch.indexing import IndexConfig, IndexStore, UpdateSummary, hub
from latesearch.indexing.components.bm25_statistics import BM25Statistics
from latesearch.indexing.components.calibration import (
    CALIBRATION_DIR,
    Calibration,
    calibration_of,
    fit_judged,
)
from latesearch.indexing.docstore import check_field_name
from latesearch.indexing.files import IndexExistsError
from latesearch.indexing.filters import compile_filter
from latesearch.indexing.reading import folder_changes
from latesearch.indexing.storage import UnknownDocumentError
from latesearch.modeling import ColBERT
from latesearch.search.models import load_index_model
from latesearch.search.modes import get_mode, mode_names
from latesearch.search.request import SearchRequest
from latesearch.search.results import Hits
from latesearch.sharding.fusing import fused_search, merge_side
from latesearch.sharding.manifest import SHARDS_MANIFEST, ShardsManifest, shard_name
from latesearch.sharding.parallel_build import build_in_parallel
from latesearch.sharding.routers import LocalShards, RayShards
from latesearch.sharding.routing import by_shard, shard_of
from latesearch.sharding.split import split_collection


class ShardedIndex:
    """Shards (ordinary indexes, each loadable alone) named by `shards.json`, searched
    through `LocalShards` or `RayShards`; the same search/rerank/add/delete as `Index`."""

    def __init__(self, folder: Path, manifest: ShardsManifest, router: Any, model: ColBERT):
        self.folder, self.manifest, self.router, self.model = folder, manifest, router, model
        self.last_timings = None  # the shards time their own searches
        self._calibration: tuple[Calibration, str] | None | bool = False  # False: unread

    # ------------------------------------------------------------------ building / loading
    @classmethod
    def build(
        cls,
        collection: Any,
        folder: str | os.PathLike,
        model: Any = None,
        *,
        n_shards: int,
        ray: bool | str | None = None,
        parallel_shards: bool = False,
        bm25: bool = False,
        ann: bool | None = None,
        overwrite: bool = False,
        resume: bool = False,
        progress: bool = True,
        config: IndexConfig | None = None,
        **index_config_fields: Any,
    ) -> ShardedIndex:
        """Split `collection` by document id into `n_shards` and build each shard as an
        ordinary index (`Index.build`'s options). With `ray` the shards are built one after
        another, each encoded and coded on the Ray cluster; with `parallel_shards` too, all
        at once, each by a Ray task on any node (`sharding.parallel_build`; `folder` on
        storage every node mounts). Staged in `<folder>.building/` and renamed into place
        when every shard is built; `resume` continues an interrupted build, shard by shard."""
        check_positive("n_shards", n_shards, error=ConfigError)
        if parallel_shards and (ray is None or ray is False):
            raise ConfigError("parallel_shards builds the shards in Ray tasks: give ray too")
        config = config or IndexConfig()
        if ray is not None and ray is not False:
            index_config_fields["ray"] = "auto" if ray is True else ray
        if index_config_fields:
            config = config.replace(**index_config_fields)
        folder = Path(folder)
        _check_target(folder, overwrite=overwrite)
        tmp = folder.with_name(folder.name + ".building")
        if tmp.exists() and not resume:
            if not overwrite:
                raise IndexExistsError(
                    f"{tmp}: an interrupted sharded build of {folder} is there; resume it "
                    "(--resume / resume=True) or start again (--overwrite / overwrite=True)"
                )
            shutil.rmtree(tmp)
        if not isinstance(model, ColBERT):  # one load for every shard
            model = ColBERT.from_pretrained(model, device="cpu", **(
                {"doc_maxlen": config.doc_maxlen} if config.doc_maxlen else {}))  # fmt: skip
        names = [shard_name(i) for i in range(n_shards)]
        files = split_collection(collection, tmp, n_shards, config)
        todo = [(part, tmp / name) for name, part in zip(names, files, strict=True)
                if not (tmp / name / "manifest.json").is_file()]  # not built before a stop
        if parallel_shards:
            build_in_parallel(todo, model, config, bm25=bm25, ann=ann)
        for part, target in [] if parallel_shards else todo:
            started = target.with_name(target.name + ".building").is_dir()  # stopped in it
            Index.build(part, target, model, config=config, bm25=bm25, ann=ann,
                        resume=resume and started, overwrite=True, progress=progress)  # fmt: skip
        shutil.rmtree(files[0].parent)
        manifest = ShardsManifest(shards=tuple(names), model_fingerprint=model.fingerprint())
        manifest.save(tmp / SHARDS_MANIFEST)
        replace_folder(tmp, folder)
        return cls.load(folder, model)

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        model: Any = None,
        *,
        ray: bool | str | None = None,
        replicas: int = 1,
        cpus_per_actor: float = 1,
        gpus_per_actor: float = 0,
        device: str | None = None,
        check_model: bool = True,
    ) -> ShardedIndex:
        """Open a sharded index: its shards in this process, or with `ray` (True or "auto",
        "local", or an address) in Ray actors, `replicas` per shard, each asking Ray for
        `cpus_per_actor` CPUs and `gpus_per_actor` GPUs. Queries are encoded here, by the
        model the shards were built with (or `model`, checked against them)."""
        folder = Path(folder)
        manifest = ShardsManifest.load(folder / SHARDS_MANIFEST)
        folders = [folder / name for name in manifest.shards]
        for path in folders:
            if not (path / "manifest.json").is_file():
                raise ConfigError(f"{folder / SHARDS_MANIFEST}: shard {path.name} is missing")
        with IndexStore.open(folders[0]) as first:
            encoder = load_index_model(first, model, device=device, check=check_model)
        if ray is None or ray is False:
            router: Any = LocalShards(folders, encoder, device, check_model)
        else:
            router = RayShards(folders, model, address="auto" if ray is True else ray,
                               replicas=replicas, cpus_per_actor=cpus_per_actor,
                               gpus_per_actor=gpus_per_actor, device=device,
                               check_model=check_model)  # fmt: skip
        return cls(folder, manifest, router, encoder)

    def push_to_hub(self, repo_id: str, **options: Any) -> str:
        """`Index.push_to_hub` for every shard and `shards.json`, as one repository."""
        return hub.push(self.folder, repo_id, kind="sharded", indexes=self.manifest.shards,
                        **options)  # fmt: skip

    @classmethod
    def from_hub(cls, repo_id: str, *, revision: str | None = None,
                 folder: str | os.PathLike | None = None, token: str | None = None,
                 api: Any = None, **load_options: Any) -> ShardedIndex:  # fmt: skip
        """`Index.from_hub` for a sharded index (every shard verified); `load_options` are
        `ShardedIndex.load`'s."""
        target = hub.fetch(repo_id, revision=revision, folder=folder, token=token, api=api)
        return cls.load(target, **load_options)

    def close(self) -> None:
        self.router.close()

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ searching
    def search(
        self,
        queries: str | list[str],
        k: int | None = None,
        mode: str | None = None,
        *,
        request: SearchRequest | None = None,
        **options: Any,
    ) -> Hits | list[Hits]:
        """`Index.search` over every shard, merged as the mode says (`SearchMode.sharded`;
        see the module's docstring for which modes merge exactly)."""
        request = as_request(request, k, mode, options)
        search_mode = get_mode(request.mode)
        if request.explain and search_mode.sharded != "top_k":
            raise InputError(f'explain on a sharded index: modes whose shards rank alone (e2e, '
                             f'exact), not "{request.mode}"', field="explain")  # fmt: skip
        texts, single = _as_list(queries)
        cut = request.min_relevance
        if cut is not None:  # cut here, after the merge, by this index's calibration
            check_cut(self.folder, self.calibration, request.mode)
            request = dataclasses.replace(request, min_relevance=None)
        encoded = None
        if search_mode.queries != "none":  # encoded once, here, for every shard
            encoded = self.router.shared(self._encode(texts))
        if search_mode.bm25_scored:  # BM25 scored with the whole collection's statistics
            statistics = self._bm25_statistics(texts)
            request = dataclasses.replace(
                request, bm25=dataclasses.replace(request.bm25, statistics=statistics))
        merge = {"top_k": self._top_k, "bm25_then_exact": self._bm25_then_maxsim,
                 "fuse_sides": self._fused}[search_mode.sharded]  # fmt: skip
        results = [self._calibrated(hits, cut) for hits in merge(texts, request, encoded)]
        return results[0] if single else results

    @property
    def calibration(self) -> Calibration | None:
        """The score -> probability of relevance mapping of the merged hits: this sharded
        index's own (`calibrate`), else the default model's shipped one for shards of that
        model; None. `calibration_source` says which ("index" or "shipped")."""
        if self._calibration is False:
            self._calibration = calibration_of(self.folder, self.manifest.model_fingerprint)
        return None if self._calibration is None else self._calibration[0]

    @property
    def calibration_source(self) -> str | None:
        return None if self.calibration is None else self._calibration[1]

    def calibrate(self, queries: dict[str, str], qrels: dict[str, dict[str, int]], *,
                  mode: str = "e2e", depth: int = 100, keep: bool = True,
                  **options: Any) -> Calibration:  # fmt: skip
        """`Index.calibrate` over the merged hits of every shard, kept (unless `keep` is
        False) in this index's `calibration/`, beside `shards.json`."""
        check_maxsim(mode, "mode")
        fitted = fit_judged(lambda texts: self.search(texts, k=depth, mode=mode, **options),
                            queries, qrels, mode=mode, depth=depth,
                            model_fingerprint=self.manifest.model_fingerprint)  # fmt: skip
        if keep:
            (self.folder / CALIBRATION_DIR).mkdir(exist_ok=True)
            fitted.save(self.folder / CALIBRATION_DIR)
            self._calibration = False
        return fitted

    def _calibrated(self, hits: Hits, cut: float | None = None) -> Hits:
        """The merged hits with this index's `relevance` (and their explanations), those
        below `cut` dropped."""
        calibration, source = self.calibration, self.calibration_source
        for hit in hits:
            relevance = None
            if calibration is not None and hit.bounded_score is not None:
                relevance = float(calibration.relevance([hit.bounded_score])[0])
            hit.relevance, hit.calibration = relevance, source if relevance is not None else None
            if hit.explanation is not None:
                hit.explanation.relevance = relevance
                hit.explanation.calibration = hit.calibration
        if cut is None:
            return hits
        return Hits([h for h in hits if h.relevance >= cut], hits.skipped)

    def _top_k(self, texts: list[str], request: SearchRequest, encoded: Any) -> list[Hits]:
        """Each shard's top k, merged by score."""
        n = self.manifest.n_shards
        per_shard = self.router.call("search", [(texts, request, encoded)] * n)
        return [_merge([shard[q] for shard in per_shard], request.k) for q in range(len(texts))]

    def _fused(self, texts: list[str], request: SearchRequest, encoded: Any) -> list[Hits]:
        return fused_search(self.router, self.manifest.n_shards, texts, request, encoded)

    def rerank(
        self,
        query: str | list[str],
        candidate_ids: list[str] | list[list[str]],
        k: int | None = None,
        **options: Any,
    ) -> Hits | list[Hits]:
        """`Index.rerank`: each candidate is scored by the shard that owns it; the hits
        merged (missing="skip" lists the ids no shard holds)."""
        texts, lists, single = candidate_lists(query, candidate_ids)
        merged = self._scored(texts, lists, k, self.router.shared(self._encode(texts)), options)
        merged = [self._calibrated(hits) for hits in merged]
        return merged[0] if single else merged

    def _bm25_then_maxsim(self, texts: list[str], request: SearchRequest,
                          encoded: Any) -> list[Hits]:  # fmt: skip
        """mode="rerank": the collection's BM25 top `bm25_k` (each shard's, by the whole
        collection's statistics, merged), then the exact MaxSim of those candidates."""
        depth, n = request.bm25.depth, self.manifest.n_shards
        found = self.router.call("lexical", [(texts, depth, request)] * n)
        lists = [[h.doc_id for h in merge_side([shard[q] for shard in found], depth)]
                 for q in range(len(texts))]  # fmt: skip
        options = {"return_text": request.return_text, "device": request.device,
                   "return_metadata": request.return_metadata, "source": request.source}
        return self._scored(texts, lists, request.k, encoded, options)

    def _scored(self, texts: list[str], lists: list[list[str]], k: int | None, encoded: Any,
                options: dict[str, Any]) -> list[Hits]:  # fmt: skip
        """Exact MaxSim of each query's candidate ids, each scored by its shard, merged."""
        n = self.manifest.n_shards
        routed = [by_shard(dict.fromkeys(ids), n) for ids in lists]
        per_shard = self.router.call("rerank", [
            (texts, [r.get(s, []) for r in routed], k, encoded, options) for s in range(n)
        ])  # fmt: skip
        merged = []
        for q, ids in enumerate(lists):
            hits = _merge([shard[q] for shard in per_shard], k)
            missing = {i for shard in per_shard for i in shard[q].skipped}
            hits.skipped = [i for i in dict.fromkeys(ids) if i in missing]
            merged.append(hits)
        return merged

    def _bm25_statistics(self, texts: list[str]) -> BM25Statistics | None:
        """Every shard's BM25 statistics of the queries' terms, added up: the collection's
        (None where a shard cannot score with them: each then uses its own)."""
        parts = self.router.call("bm25_statistics", [(texts,)] * self.manifest.n_shards)
        return None if any(p is None for p in parts) else BM25Statistics.combine(parts)

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        Q, mask = self.model.encode_queries(texts, return_mask=True)
        return Q.float().cpu().numpy(), mask.cpu().numpy()

    # ------------------------------------------------------------------ updating
    def update(self, *, add: Any = None, delete: str | list[str] = (), replace: bool = False,
               missing: str = "raise", progress: bool = False, delete_filter: Any = None,
               max_docs: int | None = None) -> UpdateSummary:  # fmt: skip
        """`delete` (and the documents matching `delete_filter`) then `add` (`Index.update`'s
        arguments), each routed by id."""
        total = UpdateSummary()
        if delete_filter is not None:
            total = self.delete(filter=delete_filter)
        if delete:
            deleted = self.delete(delete, missing=missing)
            deleted.deleted += total.deleted
            total = deleted
        if add is not None:
            added = self.add(add, replace=replace, max_docs=max_docs)
            added.deleted, added.unknown = total.deleted, total.unknown
            total = added
        if not delete and add is None and delete_filter is None:
            total.docs, total.embeddings = (int(x) for x in np.sum(self._sizes(), axis=0))
        return total

    def sync(self, folder: str | os.PathLike, *, progress: bool = False) -> UpdateSummary:
        """`Index.sync` over every shard: the documents of new and changed files of
        `folder` added (replacing those of changed files), of removed files deleted, each
        in the shard its id routes to (atomic per shard, not across shards)."""
        states = self.router.call("folder_state", [()] * self.manifest.n_shards)
        stored = [row for _, rows in states for row in rows]
        changes = folder_changes(stored, folder, states[0][0])
        if not changes:
            summary = self.update()
        else:
            summary = self.update(add=changes.documents or None, delete=changes.delete,
                                  replace=True, progress=progress)  # fmt: skip
        summary.files = str(changes)
        return summary

    def is_current(self) -> bool:
        """Whether every shard on disk is the version its worker opened."""
        return all(self.router.call("current", [()] * self.manifest.n_shards))

    def reloaded(self) -> ShardedIndex:
        """The shards as they are on disk now: a new object over new local workers (this
        one keeps answering from the versions it opened), or, with Ray actors, this object
        once every actor has reopened its shard."""
        if isinstance(self.router, LocalShards):
            folders = [self.folder / name for name in self.manifest.shards]
            router = LocalShards(folders, self.model, self.router.device, self.router.check)
            return ShardedIndex(self.folder, self.manifest, router, self.model)
        self.router.write("reload", [()] * self.manifest.n_shards)
        return self

    def describe(self) -> dict[str, Any]:
        """documents, embeddings, model, components and modes (those every shard has and
        that merge), the calibration of the merged hits (`calibration`), and the
        shards."""
        parts = self.router.call("describe", [()] * self.manifest.n_shards)
        common = [c for c in parts[0]["components"] if all(c in p["components"] for p in parts)]
        modes = [m for m in mode_names() if all(m in p["modes"] for p in parts)]
        calibration = self.calibration
        if calibration is not None:
            calibration = calibration.describe(self.calibration_source)
        return {"documents": sum(p["documents"] for p in parts),
                "embeddings": sum(p["embeddings"] for p in parts), "model": parts[0]["model"],
                "components": common, "modes": modes, "shards": list(self.manifest.shards),
                "calibration": calibration}  # fmt: skip

    def add(self, collection: Any, *, replace: bool = False,
            max_docs: int | None = None) -> UpdateSummary:  # fmt: skip
        """Add the documents of `collection`, each to the shard its id routes to (each
        shard's update is atomic, the whole is not); the index may hold at most `max_docs`
        documents after it (InputError on field "documents", before any shard changes)."""
        n = self.manifest.n_shards
        parts: list[list[Any]] = [[] for _ in range(n)]
        for doc in read_collection(collection):
            parts[shard_of(doc.doc_id, n)].append(doc)
        if not replace or max_docs is not None:  # refused before any shard changes
            held = self.router.call("known", [([d.doc_id for d in p],) for p in parts])
            present = [i for h in held for i in h]
            now = len(self)
            after = now + sum(map(len, parts)) - len(present)
            if max_docs is not None and after > max(max_docs, now):
                raise InputError(f"the update would leave {after:,} documents in the index; "
                                 f"the limit is {max_docs:,} (it holds {now:,})",
                                 field="documents")  # fmt: skip
            if present and not replace:
                raise InputError(f"{len(present)} id(s) already in the index: {present[:5]}; "
                                 "pass replace=True to replace them", field="doc_id")  # fmt: skip
        return self._update([(p or None, [], replace, "raise") for p in parts])

    def delete(self, doc_ids: str | list[str] | None = None, *, filter: Any = None,  # noqa: A002
               missing: str = "raise") -> UpdateSummary:  # fmt: skip
        """Remove documents by id from the shards that hold them; with missing="raise" an
        id no shard holds raises `UnknownDocumentError` before anything is deleted. Or
        remove every document matching `filter` (`Index.delete`), from every shard: a bad
        filter, or one that would empty a shard, is refused before any shard changes."""
        if (doc_ids is None) == (filter is None):
            raise InputError("give either ids to delete or a filter", field="doc_ids")
        if filter is not None:
            return self._delete_matching(compile_filter(filter))
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        n = self.manifest.n_shards
        routed = by_shard(dict.fromkeys(ids), n)
        if missing == "raise":
            held = self.router.call("known", [(routed.get(s, []),) for s in range(n)])
            unknown = [i for i in dict.fromkeys(ids) if i not in {x for h in held for x in h}]
            if unknown:
                raise UnknownDocumentError(f"{len(unknown)} id(s) not in the index: "
                                           f"{unknown[:5]}")  # fmt: skip
        elif missing != "skip":
            raise InputError(f'missing must be "raise" or "skip", got {missing!r}',
                             field="missing")  # fmt: skip
        return self._update([(None, routed.get(s, []), False, "skip") for s in range(n)])

    def create_field_index(self, fields: str | list[str]) -> frozenset[str]:
        """`Index.create_field_index` on every shard (each shard's update is atomic, the
        whole is not; a name that cannot be a field is an InputError before any shard
        changes). Returns the fields every shard indexes."""
        names = [fields] if isinstance(fields, str) else list(fields)
        for name in names:
            check_field_name(name)
        indexed = self.router.write("create_field_index", [(names,)] * self.manifest.n_shards)
        return frozenset.intersection(*map(frozenset, indexed))

    def _delete_matching(self, compiled: Any) -> UpdateSummary:
        n = self.manifest.n_shards
        matched = self.router.call("matching", [(compiled,)] * n)
        emptied = [name for name, m, (docs, _) in zip(self.manifest.shards, matched,
                                                      self._sizes(), strict=True)
                   if m and m == docs]  # fmt: skip
        if emptied:
            raise InputError(f"the filter matches every document of shard {emptied[0]}; a "
                             "shard cannot be left empty", field="filter")  # fmt: skip
        return self._update([(None, [], False, "skip", compiled if m else None)
                             for m in matched])  # fmt: skip

    def _update(self, args: list[tuple[Any, ...]]) -> UpdateSummary:
        """`update` on every shard (a shard asked for nothing is left as it is and only
        reports its size), the summaries added up."""
        total = UpdateSummary()
        for r in self.router.write("update", args):
            total.added += r.added
            total.deleted += r.deleted
            total.replaced += r.replaced
            total.unknown += r.unknown
            total.seconds += r.seconds
            total.docs += r.docs
            total.embeddings += r.embeddings
            total.components = r.components or total.components
        return total

    def _sizes(self) -> list[tuple[int, int]]:
        return self.router.call("size", [()] * self.manifest.n_shards)

    # ------------------------------------------------------------------ properties
    def verify(self) -> list[Any]:
        """Every shard's `VerifyReport` (IndexCorruptError names the first bad file)."""
        return self.router.call("verify", [()] * self.manifest.n_shards)

    def __len__(self) -> int:
        return int(sum(d for d, _ in self._sizes()))

    def __repr__(self) -> str:
        return (f"ShardedIndex({str(self.folder)!r}, n_shards={self.manifest.n_shards}, "
                f"router={type(self.router).__name__})")  # fmt: skip


def _merge(parts: list[Hits], k: int | None) -> Hits:
    """The top `k` of the shards' hits by score (ties: the earlier shard first)."""
    pooled = [hit for part in parts for hit in part]
    pooled.sort(key=lambda h: -h.score)
    top = pooled if k is None else pooled[:k]
    return Hits([dataclasses.replace(h, rank=rank + 1) for rank, h in enumerate(top)])


def _check_target(folder: Path, *, overwrite: bool) -> None:
    if overwrite:
        check_replaceable(folder, SHARDS_MANIFEST)
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise IndexExistsError(f"{folder}: already exists; pass --overwrite to replace it")

