"""The HTTP API's request and response models (pydantic), from which its OpenAPI schema
is generated. The search models are derived from `search.request.OPTIONS` (the options
HTTP takes), the mode enum from the mode registry and the fusion enum from `FUSIONS`, so
a new option or mode reaches the API without an edit here.

The models check types, once: strictly for JSON bodies, leniently for the URL's strings.
`SearchService` checks only the server's limits and what the request means."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from latesearch.search.fusion import FUSIONS
from latesearch.search.modes import mode_names
from latesearch.search.request import OPTIONS, Option
from latesearch.search.results import Hit  # the response schema of a hit is the dataclass

Mode = Literal[mode_names()]
Fusion = Literal[FUSIONS]
Missing = Literal["raise", "skip"]

CHOICES: dict[str, Any] = {"mode": Mode, "fusion": Fusion}
# every integer option is a count (>= 1)
BOUNDS = {"hybrid_weight": {"ge": 0, "le": 1}, "min_relevance": {"ge": 0, "le": 1}}
SERVER_DEFAULTS = ("k", "mode")  # ServeConfig.default_k, default_mode
QUERY_HELP = "one query (or give `queries`)"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Url(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _option_field(option: Option, *, url: bool) -> tuple[Any, Any]:
    """(type, Field) of one search option; in the URL a filter is its JSON text."""
    help_text = option.help
    if option.name in SERVER_DEFAULTS:
        help_text += " (default: the server's)"
    elif option.default not in (None, False):
        help_text += f" (default: {option.default})"
    if url and option.kind is dict:
        help_text += ", as JSON"
    alias = {"alias": option.url} if url and option.url else {}
    if option.kind is bool:
        return bool, Field(default=option.default, description=help_text, **alias)
    kind = CHOICES.get(option.name, str if url and option.kind is dict else option.kind)
    if kind is dict:
        kind = dict[str, Any]
    bounds = {"ge": 1} if option.kind is int else BOUNDS.get(option.name, {})
    return kind | None, Field(default=None, description=help_text, **bounds, **alias)


def _search_model(name: str, base: type[BaseModel], doc: str, *, url: bool,
                  **fields: Any) -> type[BaseModel]:  # fmt: skip
    options = {o.name: _option_field(o, url=url) for o in OPTIONS if o.http}
    return create_model(name, __base__=base, __doc__=doc, **fields, **options)


SearchBody = _search_model(
    "SearchBody", _Body,
    "One query (`query`) or a batch (`queries`), with the options of `Index.search`.",
    url=False,
    query=(str | None, Field(default=None, description=QUERY_HELP)),
    queries=(list[str] | None, Field(default=None, description="a batch of queries")),
)  # fmt: skip
SearchQuery = _search_model(
    "SearchQuery", _Url, "GET /search's URL parameters: the query `q` and the options.",
    url=True, query=(str, Field(alias="q", description="the query")),
)  # fmt: skip


class RerankBody(_Body):
    """Exact MaxSim of a query against given document ids (or one list per query)."""

    query: str | None = Field(default=None, description=QUERY_HELP)
    queries: list[str] | None = Field(default=None, description="a batch of queries")
    candidates: list[str] | list[list[str]] = Field(
        description="document ids (with `query`), or one list of ids per query"
    )
    k: int | None = Field(default=None, ge=1, description="results per query (default: all)")
    missing: Missing = Field(default="raise", description="an id the index lacks: raise "
                             "(a 400) or skip (listed in `skipped`)")  # fmt: skip
    return_text: bool = Field(default=False, description="include titles and texts")
    filter: dict[str, Any] | None = Field(
        default=None, description="metadata filter: only matching candidates are scored"
    )
    return_metadata: bool = Field(default=False, description="include documents' metadata")


class DocumentIn(_Body):
    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentsBody(_Body):
    """Documents to add (POST; an id the index holds is an error) or upsert (PUT)."""

    documents: list[DocumentIn]


class CreateIndexBody(_Body):
    """A new index: its documents and how to build it (the server's model)."""

    documents: list[DocumentIn] = Field(min_length=1)
    config: dict[str, Any] = Field(
        default_factory=dict, description="IndexConfig fields, flat (`nbits`, `doc_maxlen`, "
        "`filter_fields`, ...) or grouped (`codec`: {...}); the rest the defaults")  # fmt: skip
    bm25: bool = Field(default=False, description="build the BM25 component (mode hybrid)")
    ann: bool | None = Field(default=None, description="build the faiss ANN component "
                             "(default: only for an uncompressed index)")  # fmt: skip


class DeleteBody(_Body):
    """Ids to delete (`missing="skip"` ignores ids the index does not hold), or a metadata
    `filter`: every document it matches is deleted."""

    ids: list[str] | None = None
    missing: Missing = "raise"
    filter: dict[str, Any] | None = Field(
        default=None, description='metadata filter (the search filter language, e.g. '
        '{"year": {"$lt": 2000}}): delete every document it matches')  # fmt: skip


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
    calibration: dict[str, Any] | None = Field(
        None, description="the calibration hits' relevance comes from: source (index: its "
        "own; shipped: the default model's), mode, depth, queries, hits, fitted_on")  # fmt: skip
    default_mode: str
    default_k: int
    max_k: int


class WriteOut(BaseModel):
    summary: dict[str, Any]
    documents: int = Field(description="documents in the index after the update")


class ErrorOut(BaseModel):
    error: str
    field: str | None = None
