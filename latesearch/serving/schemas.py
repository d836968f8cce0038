"""The HTTP API's request and response models (pydantic), from which its OpenAPI schema
is generated. They check types; `SearchService` checks limits and defaults, so the Python
API, the CLI and HTTP share one set of rules."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from latesearch.search.results import Hit  # the response schema of a hit is the dataclass

Mode = Literal["e2e", "rerank", "exact", "hybrid", "dense", "fused"]
Fusion = Literal["rrf", "score", "zscore"]
Missing = Literal["raise", "skip"]
Count = Field(default=None, ge=1)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SearchBody(_Request):
    """One query (`query`) or a batch (`queries`), with the options of `Index.search`."""

    query: str | None = Field(default=None, description="one query (or give `queries`)")
    queries: list[str] | None = Field(default=None, description="a batch of queries")
    k: int | None = Field(default=None, ge=1, description="results per query")
    mode: Mode | None = Field(default=None, description="search mode (server default: e2e)")
    return_text: bool = Field(default=False, description="include titles and texts")
    k_prime: int | None = Count
    nprobe: int | None = Count
    bm25_k: int | None = Count
    ncells: int | None = Count
    ndocs: int | None = Count
    filter: dict[str, Any] | None = Field(
        default=None, description='metadata filter, e.g. {"year": {"$gte": 2020}}'
    )
    return_metadata: bool = Field(default=False, description="include documents' metadata")
    fusion: Fusion | None = Field(
        default=None, description="hybrid: rrf (default) or score; fused: zscore (default), rrf "
        "or score")
    hybrid_weight: float | None = Field(default=None, ge=0, le=1,
                                        description="hybrid: the ColBERT side's weight (0.5)")


class RerankBody(_Request):
    """Exact MaxSim of a query against given document ids (or one list per query)."""

    query: str | None = None
    queries: list[str] | None = None
    candidates: list[str] | list[list[str]]
    k: int | None = Field(default=None, ge=1)
    missing: Missing = "raise"
    return_text: bool = False
    filter: dict[str, Any] | None = None
    return_metadata: bool = False


class DocumentIn(_Request):
    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentsBody(_Request):
    """Documents to add (POST; an id the index holds is an error) or upsert (PUT)."""

    documents: list[DocumentIn]


class DeleteBody(_Request):
    """Ids to delete; `missing="skip"` ignores ids the index does not hold."""

    ids: list[str]
    missing: Missing = "raise"


class SearchOut(BaseModel):
    """The answer to one query; a batch answers `results`, one entry per query."""

    query: str | None = None
    mode: str
    k: int
    hits: list[Hit] | None = None
    results: list[dict[str, Any]] | None = None
    timings: dict[str, Any]


class RerankOut(BaseModel):
    query: str | None = None
    hits: list[Hit] | None = None
    skipped: list[str] | None = None
    results: list[dict[str, Any]] | None = None
    timings: dict[str, Any]


class HealthOut(BaseModel):
    status: str
    version: str
    index: str
    documents: int
    embeddings: int
    model: str | None
    components: list[str]
    modes: list[str]
    default_mode: str
    default_k: int
    max_k: int


class WriteOut(BaseModel):
    summary: dict[str, Any]
    documents: int = Field(description="documents in the index after the update")


class ErrorOut(BaseModel):
    error: str
    field: str | None = None
