"""`SearchRequest`: one search, validated once, in one place.

A request holds k, the mode, the metadata filter, what the hits carry (text, metadata,
explanations), and one group of parameters per concern: the engine's (`EngineOptions`,
compressed indexes), faiss's (`ANNOptions`, uncompressed), BM25's (`BM25Options`) and
fusion's (`FusionOptions`). Every
front door builds the same object: `Index.search(..., **options)` and `ShardedIndex.search`
through `SearchRequest.of`, the CLI from its flags, the HTTP API from its JSON body or URL.
The flat option names they all use, with their help, are `OPTIONS`: the CLI's flags and
the HTTP schema are generated from it.

Every error is an `InputError` naming the option (its flat name: `bm25_k`, `ncells`, ...).
Limits (`SearchLimits`) bound k and candidate depths: the library's are generous, a
server's are its `ServeConfig`'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from latesearch._configio import check_positive
from latesearch.errors import InputError, UnknownOptionError
from latesearch.indexing.components.bm25_statistics import BM25Statistics
from latesearch.indexing.filters import CompiledFilter, compile_filter, parse_filter
from latesearch.indexing.vectors import SOURCES
from latesearch.search.engine.params import ParamOverrides, check_threshold
from latesearch.search.fusion import (
    DEFAULT_DEPTH,
    DEFAULT_FUSION,
    FUSIONS,
    check_fusion,
    check_weight,
)
from latesearch.search.modes import mode_names


@dataclass(frozen=True)
class SearchLimits:
    """The largest `k` and candidate depth (`bm25_k`, `k_prime`, `ndocs`) a request may
    ask for. The library's defaults only stop mistakes (k=10**9); a server sets its own."""

    max_k: int = 100_000
    max_candidates: int = 1_000_000


@dataclass(frozen=True)
class EngineOptions:
    """The engine's knobs on a compressed index; None: chosen per query by
    `EngineParams.auto` from k, the index and the query (`ncells` centroids per query token,
    pruning threshold t_cs, `ndocs` documents kept by centroid interaction)."""

    ncells: int | None = None
    centroid_score_threshold: float | None = None
    ndocs: int | None = None

    def params(self) -> ParamOverrides:
        return ParamOverrides(**dataclasses.asdict(self))


@dataclass(frozen=True)
class ANNOptions:
    """faiss IVFPQ candidates on an uncompressed index: `k_prime` neighbours per query
    vector, `nprobe` partitions probed (None: `ANNConfig`'s defaults)."""

    k_prime: int | None = None
    nprobe: int | None = None


@dataclass(frozen=True)
class BM25Options:
    """BM25's top `depth` documents ("rerank" re-ranks them); `statistics`: a larger
    collection's (`BM25Statistics`), this index being part of it (a sharded index's)."""

    depth: int = 1000
    statistics: Any = None


@dataclass(frozen=True)
class FusionOptions:
    """How "hybrid" and "fused" fuse two rankings: `method` (None: the mode's default,
    `search.fusion.DEFAULT_FUSION`), the ColBERT side's `weight`, and each side's `depth`
    (None: max(k, 100))."""

    method: str | None = None
    weight: float = 0.5
    depth: int | None = None

    def depth_for(self, k: int) -> int:
        return max(k, DEFAULT_DEPTH) if self.depth is None else self.depth


@dataclass(frozen=True)
class Option:
    """One flat search option: its name (Python keyword, JSON field, CLI flag), type,
    default, help, and where it lives in a `SearchRequest` (group, field; None: the
    request's own field). `url`: the GET parameter, where it is another name; `http`:
    whether the HTTP API takes it; `cli`: whether the searching commands take it as a flag
    (`--name-with-dashes`)."""

    name: str
    kind: type
    default: Any
    help: str
    path: tuple[str, str] | None = None
    url: str | None = None
    http: bool = True
    cli: bool = False


OPTIONS = (
    Option("k", int, 10, "results per query"),
    Option("mode", str, "e2e", "search mode"),
    Option("filter", dict, None, 'metadata filter, e.g. {"year": {"$gte": 2020}} (operators '
           "$eq $ne $in $nin $gt $gte $lt $lte $exists, $and $or $not)", cli=True),
    Option("return_text", bool, False, "include titles and texts", url="text"),
    Option("return_metadata", bool, False, "include documents' metadata", url="meta"),
    Option("min_relevance", float, None, "drop hits whose calibrated probability of "
           "relevance is below this, 0-1 (an index calibrated by `latesearch calibrate`)",
           cli=True),
    Option("explain", bool, False, "per hit: each query token's best document token, its "
           "span, similarity and share of the score; highlights (implies text)"),
    Option("ncells", int, None, "e2e, compressed: centroids per query token (by k: 1/3/4)",
           ("engine", "ncells"), cli=True),
    Option("centroid_score_threshold", float, None, "e2e, compressed: centroid pruning "
           "threshold (by k: 0.5/0.45/0.4)", ("engine", "centroid_score_threshold"),
           http=False, cli=True),
    Option("ndocs", int, None, "e2e, compressed: documents kept by centroid interaction",
           ("engine", "ndocs"), cli=True),
    Option("k_prime", int, None, "e2e, uncompressed: faiss neighbours per query vector",
           ("ann", "k_prime"), cli=True),
    Option("nprobe", int, None, "e2e, uncompressed: faiss partitions probed",
           ("ann", "nprobe"), cli=True),
    Option("bm25_k", int, 1000, "rerank: BM25 candidates", ("bm25", "depth"), cli=True),
    Option("bm25_statistics", object, None, "a whole collection's BM25 statistics",
           ("bm25", "statistics"), http=False),
    Option("fusion", str, None, "hybrid / fused: rrf, score or zscore (hybrid: rrf, fused: "
           "zscore)", ("fusion", "method"), cli=True),
    Option("hybrid_weight", float, 0.5, "hybrid / fused: the ColBERT side's weight, 0-1",
           ("fusion", "weight"), cli=True),
    Option("fusion_depth", int, None, "hybrid / fused: each side's depth (max(k, 100))",
           ("fusion", "depth"), http=False),
    Option("source", str, "auto", "where exact scores read vectors: auto, full, residual",
           http=False),
    Option("batch_size", int, 128, "queries encoded and searched at once", http=False),
    Option("device", object, None, "scoring device (default: the model's)", http=False),
)  # fmt: skip
BY_NAME = {option.name: option for option in OPTIONS}
_COUNTS = {"k", "ncells", "ndocs", "k_prime", "nprobe", "bm25_k", "fusion_depth", "batch_size"}
_DEPTHS = {"ndocs": "max_candidates", "k_prime": "max_candidates", "bm25_k": "max_candidates",
           "fusion_depth": "max_candidates", "k": "max_k"}  # fmt: skip


@dataclass(frozen=True)
class SearchRequest:
    """One search: `k` hits per query in `mode` (one of `modes.mode_names()`), restricted
    to documents matching `filter` (checked and kept as an object; a JSON text is parsed),
    with their text / metadata when asked; parameters per concern; `source` (where exact
    scores read vectors), `batch_size` and `device` say how it runs. Build one with
    `SearchRequest.of(k=..., mode=..., **flat_options)`; every field is checked on
    construction."""

    k: int = 10
    mode: str = "e2e"
    filter: dict[str, Any] | None = None
    return_text: bool = False
    return_metadata: bool = False
    explain: bool = False
    min_relevance: float | None = None
    engine: EngineOptions = field(default_factory=EngineOptions)
    ann: ANNOptions = field(default_factory=ANNOptions)
    bm25: BM25Options = field(default_factory=BM25Options)
    fusion: FusionOptions = field(default_factory=FusionOptions)
    source: str = "auto"
    batch_size: int = 128
    device: Any = None
    limits: SearchLimits = field(default_factory=SearchLimits, compare=False, repr=False)
    # the filter as SQL, compiled once here (None without a filter)
    compiled_filter: CompiledFilter | None = field(default=None, init=False, compare=False,
                                                   repr=False)  # fmt: skip

    def __post_init__(self) -> None:
        if self.mode not in mode_names():
            raise InputError(f"mode must be one of {list(mode_names())}, got {self.mode!r}",
                             field="mode")  # fmt: skip
        for name, value in self.flat().items():
            if name in _COUNTS and value is not None:
                check_positive(name, value)
                limit = getattr(self.limits, _DEPTHS.get(name, ""), None)
                if limit is not None and value > limit:
                    raise InputError(f"{name} is {value}; the limit is {limit}", field=name)
        for name in ("return_text", "return_metadata", "explain"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be true or false, got "
                                 f"{getattr(self, name)!r}", field=name)  # fmt: skip
        cut = self.min_relevance
        if cut is not None and (isinstance(cut, bool) or not isinstance(cut, int | float)
                                or not 0 <= cut <= 1):  # fmt: skip
            raise InputError(f"min_relevance must be a number in [0, 1], got {cut!r}",
                             field="min_relevance")  # fmt: skip
        if self.engine.centroid_score_threshold is not None:
            check_threshold(self.engine.centroid_score_threshold)
        if self.source not in SOURCES:
            raise InputError(f"source must be one of {SOURCES}, got {self.source!r}",
                             field="source")  # fmt: skip
        weight = check_weight(self.fusion.weight)
        method = self.fusion.method
        if self.mode in ("hybrid", "fused"):
            check_fusion(method, weight, self.mode)
        elif method is not None and method not in FUSIONS:
            raise InputError(f"fusion must be one of {FUSIONS}, got {method!r}", field="fusion")
        object.__setattr__(self, "fusion", dataclasses.replace(self.fusion, weight=weight))
        if self.bm25.statistics is not None and not isinstance(self.bm25.statistics,
                                                               BM25Statistics):  # fmt: skip
            raise InputError("bm25_statistics must be a BM25Statistics, got "
                             f"{type(self.bm25.statistics).__name__}", field="bm25_statistics")
        if self.device is not None:
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise InputError(f"device must be a device such as 'cpu' or 'cuda:0', got "
                                 f"{self.device!r}", field="device") from None
        spec, compiled = _checked_filter(self.filter)
        object.__setattr__(self, "filter", spec)
        object.__setattr__(self, "compiled_filter", compiled)

    @classmethod
    def of(cls, *, limits: SearchLimits | None = None, **options: Any) -> SearchRequest:
        """A request from flat options (`OPTIONS`' names: k, mode, filter, ncells, bm25_k,
        fusion, hybrid_weight, ...); an option left out or None takes its default."""
        unknown = sorted(set(options) - set(BY_NAME))
        if unknown:
            raise UnknownOptionError(f"unknown search option(s) {unknown}; expected some of "
                             f"{sorted(BY_NAME)}", field=unknown[0])  # fmt: skip
        top: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {}
        for name, value in options.items():
            option = BY_NAME[name]
            if value is None and option.default is not None:
                continue  # None: the default (as the HTTP API and CLI leave them)
            if option.path is None:
                top[name] = value
            else:
                groups.setdefault(option.path[0], {})[option.path[1]] = value
        kinds = {"engine": EngineOptions, "ann": ANNOptions, "bm25": BM25Options,
                 "fusion": FusionOptions}  # fmt: skip
        nested = {group: kinds[group](**fields) for group, fields in groups.items()}
        return cls(**top, **nested, **({} if limits is None else {"limits": limits}))

    def replace(self, **options: Any) -> SearchRequest:
        """This request with some flat options changed, checked again."""
        return SearchRequest.of(limits=self.limits, **{**self.flat(), **options})

    def flat(self) -> dict[str, Any]:
        """The request as flat options (`OPTIONS`' names)."""
        out = {}
        for option in OPTIONS:
            holder = self if option.path is None else getattr(self, option.path[0])
            out[option.name] = getattr(holder, option.name if option.path is None
                                       else option.path[1])  # fmt: skip
        return out

    @property
    def fusion_method(self) -> str | None:
        """The fusion "hybrid" / "fused" use: the one asked for, else the mode's default."""
        if self.mode not in DEFAULT_FUSION:
            return self.fusion.method
        return self.fusion.method or DEFAULT_FUSION[self.mode]

    def inner(self, *, k: int, mode: str) -> SearchRequest:
        """This request as one side of a fused search asks it of an index: top `k` in
        `mode`, checked against the library's limits (a side's depth, max(k, 100), is not
        the caller's k)."""
        return dataclasses.replace(self, k=k, mode=mode, limits=SearchLimits())

    @property
    def depth(self) -> int:
        """Each fused side's depth (hybrid, fused)."""
        return self.fusion.depth_for(self.k)


def _checked_filter(spec: Any) -> tuple[dict[str, Any] | None, CompiledFilter | None]:
    """The filter as a JSON object (parsed from its text) and compiled (which checks it:
    InputError naming the bad part, before any work)."""
    if spec is None:
        return None, None
    spec = parse_filter(spec)
    if not isinstance(spec, dict):
        raise InputError(f"filter must be a JSON object, got {type(spec).__name__}",
                         field="filter")  # fmt: skip
    return spec, compile_filter(spec)
