"""From a request as received to what the service runs.

The pydantic models of `serving.schemas` check the fields' types, once (`validated`:
strictly for a JSON object, leniently for URL strings; the FastAPI routes hand over models
they have already validated). Then the server's policy: one of `query` / `queries`, the
query limits, the rerank and write limits, and `ServeConfig`'s defaults and limits for
the one `SearchRequest` a search makes. Every error is an `InputError` naming the field by
its JSON path (`queries.0`, `documents.2.text`) or its URL parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from latesearch.data import Document
from latesearch.errors import InputError
from latesearch.indexing.filters import CompiledFilter, compile_filter
from latesearch.search.request import SearchLimits, SearchRequest
from latesearch.serving.config import ServeConfig

INSTALL_HINT = "the HTTP server needs the server extra: pip install 'latesearch[server]'"


@dataclass(frozen=True)
class Search:
    """The queries of a search (`single`: given as `query`) and its request."""

    queries: list[str]
    single: bool
    request: SearchRequest


@dataclass(frozen=True)
class Rerank:
    """Exact MaxSim of each query against its own candidate ids."""

    queries: list[str]
    single: bool
    candidates: list[list[str]]
    k: int | None
    options: dict[str, Any]  # Index.rerank's missing, return_text, filter, return_metadata


@dataclass(frozen=True)
class Write:
    """Documents to add (or replace), and ids to delete or a filter (compiled) whose
    matches are deleted."""

    documents: list[Document]
    ids: list[str]
    missing: str = "raise"
    filter: CompiledFilter | None = None


def models() -> Any:
    """The request models (`serving.schemas`); pydantic comes with the server extra."""
    try:
        from latesearch.serving import schemas
    except ImportError as err:
        if err.name != "pydantic":
            raise
        raise InputError(INSTALL_HINT) from None
    return schemas


# ---------------------------------------------------------------------- raw input
def parse_json_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body."""
    if not body.strip():
        raise InputError("the request needs a JSON object body", field="body")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the request body is not UTF-8", field="body") from None
    except RecursionError:
        raise InputError("the request body nests too deep to parse", field="body") from None
    except json.JSONDecodeError as err:
        raise InputError(f"the request body is not valid JSON: {err.msg} (line {err.lineno}, "
                         f"column {err.colno})", field="body") from None  # fmt: skip
    if not isinstance(data, dict):
        raise InputError(f"the request body must be a JSON object, got {type(data).__name__}",
                         field="body")  # fmt: skip
    return data


def url_params(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """URL parameters as a dict; a parameter given twice is an error."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise InputError(f"parameter {name!r} is given more than once", field=name)
        params[name] = value
    return params


def validated(model: type, data: Any, *, strict: bool = True) -> Any:
    """`data` as a `model` instance (as is if it is one already), or the first error as
    an InputError."""
    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        raise InputError(f"the request must be a JSON object, got {type(data).__name__}",
                         field="body")  # fmt: skip
    from pydantic import ValidationError

    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as err:
        raise input_error(err.errors()) from None


def input_error(errors: list[Any], *, routed: bool = False) -> InputError:
    """The first of pydantic's errors as an InputError naming its field (the JSON path,
    or the URL parameter); `routed`: FastAPI's errors, located in the body, query or
    header first."""
    locs = [list(error.get("loc", ()))[1 if routed else 0:] for error in errors]
    loc = locs[0]
    cut = next((n for n, part in enumerate(loc)
                if isinstance(part, str) and not part.isidentifier()), None)  # fmt: skip
    if cut is not None:  # inside a union's member ("list[str]"): say what the field may be
        members = dict.fromkeys(str(other[cut]) for other in locs
                                if other[:cut] == loc[:cut] and len(other) > cut)  # fmt: skip
        return InputError(f"must be {' or '.join(members)}", field=_dotted(loc[:cut]))
    field = _dotted(loc)
    if errors[0].get("type") == "extra_forbidden":
        return InputError(f"unknown field {field!r}; see /docs for the fields", field=field)
    return InputError(errors[0].get("msg", "invalid"), field=field)


def _dotted(loc: list[Any]) -> str:
    return ".".join(map(str, loc)) or "body"


# ---------------------------------------------------------------------- requests
def search_from_json(data: Any, config: ServeConfig) -> Search:
    """The search of a `POST /search` JSON object (or its validated `SearchBody`)."""
    return search_of(validated(models().SearchBody, data), config)


def search_from_url(params: Any, config: ServeConfig) -> Search:
    """The search of `GET /search?q=...&k=...` parameters: the query string, or the
    validated `SearchQuery`."""
    schemas = models()
    if isinstance(params, str):
        try:
            pairs = parse_qsl(params, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise InputError(f"malformed URL parameters {params!r}", field="url") from None
        params = url_params(pairs)
    return search_of(validated(schemas.SearchQuery, params, strict=False), config)


def search_of(fields: Any, config: ServeConfig) -> Search:
    """A validated search model as the server runs it: its options with the server's
    defaults (k, mode, bm25_k: min(1000, max_candidates), batch_size) and limits."""
    options = fields.model_dump(exclude_none=True)
    queries, single = _queries(options.pop("query", None), options.pop("queries", None),
                               config)  # fmt: skip
    defaults = {"k": config.default_k, "mode": config.default_mode,
                "bm25_k": min(1000, config.max_candidates), "batch_size": config.batch_size}
    limits = SearchLimits(max_k=config.max_k, max_candidates=config.max_candidates)
    return Search(queries, single, SearchRequest.of(limits=limits, **{**defaults, **options}))


def rerank_from_json(data: Any, config: ServeConfig) -> Rerank:
    """The rerank of a `POST /rerank` JSON object (or its validated `RerankBody`): `query`
    with `candidates` (a list of ids), or `queries` with one list of ids per query."""
    body = validated(models().RerankBody, data)
    queries, single = _queries(body.query, body.queries, config)
    raw = body.candidates
    nested = bool(raw) and isinstance(raw[0], list)
    if single and nested:
        raise InputError("with 'query', 'candidates' is one list of ids", field="candidates")
    if not single and (not nested or len(raw) != len(queries)):
        raise InputError(f"with 'queries', 'candidates' holds one list of ids per query, "
                         f"{len(queries)} in all", field="candidates")  # fmt: skip
    lists = [raw] if single else raw
    for n, ids in enumerate(lists):
        _check_count(ids, "candidates" if single else f"candidates.{n}", config.max_candidates)
    if body.k is not None and body.k > config.max_k:
        raise InputError(f"k is {body.k}; the limit is {config.max_k}", field="k")
    options = {"missing": body.missing, "return_text": body.return_text,
               "filter": body.filter, "return_metadata": body.return_metadata}  # fmt: skip
    return Rerank(queries, single, [list(ids) for ids in lists], body.k, options)


def write_from_json(data: Any, config: ServeConfig, *, delete: bool) -> Write:
    """The write of `{"documents": [{"id", "title", "text", "metadata"}, ...]}` (add,
    upsert) or, with `delete`, of `{"ids": [...], "missing": "raise" | "skip"}` or of
    `{"filter": {...}}` (compiled here: a bad filter names its field)."""
    schemas = models()
    limit = config.max_write_documents
    if delete:
        body = validated(schemas.DeleteBody, data)
        if (body.ids is None) == (body.filter is None):
            raise InputError("give either 'ids' (a list) or 'filter' (an object)", field="ids")
        if body.filter is not None:
            return Write(documents=[], ids=[], filter=compile_filter(body.filter))
        if not body.ids:
            raise InputError("'ids' is empty", field="ids")
        _check_count(body.ids, "ids", limit)
        return Write(documents=[], ids=list(body.ids), missing=body.missing)
    body = validated(schemas.DocumentsBody, data)
    if not body.documents:
        raise InputError("'documents' is empty", field="documents")
    _check_count(body.documents, "documents", limit)
    for n, doc in enumerate(body.documents):
        for name in ("id", "text"):
            if not getattr(doc, name).strip():
                raise InputError(f"the document's {name} is empty", field=f"documents.{n}.{name}")
    return Write(documents=[Document(doc_id=d.id, text=d.text, title=d.title,
                                     metadata=d.metadata) for d in body.documents],
                 ids=[])  # fmt: skip


def _check_count(items: list[Any], field: str, limit: int) -> None:
    if len(items) > limit:
        raise InputError(f"{len(items)} items; the limit is {limit}", field=field)


def _queries(query: str | None, queries: list[str] | None,
             config: ServeConfig) -> tuple[list[str], bool]:  # fmt: skip
    """The query texts and whether one was given as `query`: the server's query policy."""
    if (query is None) == (queries is None):
        raise InputError("give either 'query' (a string) or 'queries' (a list)", field="query")
    if query is not None:
        return [_query_text(query, "query", config)], True
    if not queries:
        raise InputError("'queries' must be a non-empty list of strings", field="queries")
    if len(queries) > config.max_queries:
        raise InputError(f"{len(queries)} queries in one request; the limit is "
                         f"{config.max_queries}", field="queries")  # fmt: skip
    return [_query_text(q, f"queries.{n}", config) for n, q in enumerate(queries)], False


def _query_text(text: str, field: str, config: ServeConfig) -> str:
    if not text.strip():
        raise InputError("the query is empty", field=field)
    if len(text) > config.max_query_chars:
        raise InputError(f"{len(text)} characters; the limit is {config.max_query_chars}",
                         field=field)  # fmt: skip
    return text
