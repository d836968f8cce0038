"""Search and rerank requests, parsed from URL parameters or a JSON body and validated.

Every error is an `InputError` that names the offending field, so a client learns what to
fix from the response alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from latesearch.data import Document
from latesearch.errors import InputError
from latesearch.indexing.filters import compile_filter
from latesearch.search.fusion import FUSIONS, check_weight
from latesearch.serving.config import MODES, ServeConfig

SEARCH_FIELDS = ("query", "queries", "k", "mode", "return_text", "k_prime", "nprobe", "bm25_k",
                 "ncells", "ndocs", "filter", "return_metadata", "fusion",
                 "hybrid_weight")  # fmt: skip
RERANK_FIELDS = ("query", "queries", "candidates", "k", "missing", "return_text", "filter",
                 "return_metadata")  # fmt: skip
ADD_FIELDS = ("documents",)
DELETE_FIELDS = ("ids", "missing")
DOCUMENT_FIELDS = ("id", "title", "text", "metadata")
# URL parameter -> request field (GET /search)
URL_PARAMS = {"q": "query", "k": "k", "mode": "mode", "text": "return_text",
              "k_prime": "k_prime", "nprobe": "nprobe", "bm25_k": "bm25_k",
              "ncells": "ncells", "ndocs": "ndocs", "filter": "filter",
              "meta": "return_metadata", "fusion": "fusion",
              "hybrid_weight": "hybrid_weight"}  # fmt: skip
_INT_FIELDS = ("k", "k_prime", "nprobe", "bm25_k", "ncells", "ndocs")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class SearchRequest:
    """Top-k search of one query (`single`) or of a batch."""

    queries: list[str]
    single: bool
    k: int
    mode: str
    return_text: bool = False
    k_prime: int | None = None
    nprobe: int | None = None
    bm25_k: int = 1000
    ncells: int | None = None
    ndocs: int | None = None
    filter: dict[str, Any] | None = None
    return_metadata: bool = False
    fusion: str | None = None
    hybrid_weight: float = 0.5

    def options(self) -> dict[str, Any]:
        """Keyword arguments of `Index.search` besides the queries."""
        return {"k": self.k, "mode": self.mode, "return_text": self.return_text,
                "k_prime": self.k_prime, "nprobe": self.nprobe, "bm25_k": self.bm25_k,
                "ncells": self.ncells, "ndocs": self.ndocs, "filter": self.filter,
                "return_metadata": self.return_metadata, "fusion": self.fusion,
                "hybrid_weight": self.hybrid_weight}  # fmt: skip


@dataclass(frozen=True)
class RerankRequest:
    """Exact MaxSim of each query against its own candidate ids."""

    queries: list[str]
    single: bool
    candidates: list[list[str]]
    k: int | None = None
    missing: str = "raise"
    return_text: bool = False
    filter: dict[str, Any] | None = None
    return_metadata: bool = False


@dataclass(frozen=True)
class WriteRequest:
    """Documents to add (or replace) and ids to delete."""

    documents: list[Document]
    ids: list[str]
    missing: str = "raise"


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
        raise InputError(
            f"the request body is not valid JSON: {err.msg} (line {err.lineno}, "
            f"column {err.colno})",
            field="body",
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"the request body must be a JSON object, got {type(data).__name__}", field="body"
        )
    return data


def search_from_url(query_string: str, config: ServeConfig) -> SearchRequest:
    """A `SearchRequest` from `GET /search?q=...&k=...&mode=...&text=1` parameters."""
    try:
        params = parse_qs(query_string, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InputError(f"malformed URL parameters {query_string!r}", field="url") from None
    data: dict[str, Any] = {}
    for name, values in params.items():
        if name not in URL_PARAMS:
            raise InputError(
                f"unknown parameter {name!r}; expected some of {sorted(URL_PARAMS)}", field=name
            )
        if len(values) != 1:
            raise InputError(f"parameter {name!r} is given {len(values)} times", field=name)
        key, value = URL_PARAMS[name], values[0]
        if key in _INT_FIELDS:
            data[key] = _url_int(name, value)
        elif key in ("return_text", "return_metadata"):
            data[key] = _url_bool(name, value)
        elif key == "filter":
            data[key] = _url_json(name, value)
        elif key == "hybrid_weight":
            data[key] = _url_float(name, value)
        else:
            data[key] = value
    if "query" not in data:
        raise InputError("GET /search needs the query in parameter 'q'", field="q")
    return search_from_json(data, config)


def search_from_json(data: dict[str, Any], config: ServeConfig) -> SearchRequest:
    """A `SearchRequest` from a `POST /search` JSON object."""
    _check_fields(data, SEARCH_FIELDS)
    queries, single = _queries(data, config)
    return SearchRequest(
        queries=queries,
        single=single,
        k=_int(data, "k", config.default_k, config.max_k),
        mode=_choice(data, "mode", config.default_mode, MODES),
        return_text=_bool(data, "return_text"),
        k_prime=_int(data, "k_prime", None, config.max_candidates),
        nprobe=_int(data, "nprobe", None, None),
        bm25_k=_int(data, "bm25_k", min(1000, config.max_candidates), config.max_candidates),
        ncells=_int(data, "ncells", None, None),
        ndocs=_int(data, "ndocs", None, config.max_candidates),
        filter=_filter(data),
        return_metadata=_bool(data, "return_metadata"),
        fusion=None if data.get("fusion") is None else _choice(data, "fusion", "", FUSIONS),
        hybrid_weight=check_weight(data.get("hybrid_weight", 0.5)),
    )


def rerank_from_json(data: dict[str, Any], config: ServeConfig) -> RerankRequest:
    """A `RerankRequest` from a `POST /rerank` JSON object: "query" with "candidates" (a
    list of ids), or "queries" with "candidates" (one list of ids per query)."""
    _check_fields(data, RERANK_FIELDS)
    queries, single = _queries(data, config)
    if "candidates" not in data:
        raise InputError("missing 'candidates' (the document ids to score)", field="candidates")
    raw = data["candidates"]
    if single:
        lists = [_id_list(raw, "candidates", config)]
    else:
        if not isinstance(raw, list) or len(raw) != len(queries):
            raise InputError(
                f"'candidates' must hold one list of ids per query ({len(queries)} lists)",
                field="candidates",
            )
        lists = [_id_list(ids, f"candidates[{n}]", config) for n, ids in enumerate(raw)]
    return RerankRequest(
        queries=queries,
        single=single,
        candidates=lists,
        k=_int(data, "k", None, config.max_k),
        missing=_choice(data, "missing", "raise", ("raise", "skip")),
        return_text=_bool(data, "return_text"),
        filter=_filter(data),
        return_metadata=_bool(data, "return_metadata"),
    )


def write_from_json(data: dict[str, Any], config: ServeConfig, *, delete: bool) -> WriteRequest:
    """A `WriteRequest` from `{"documents": [{"id", "title", "text"}, ...]}` (add, upsert)
    or, with `delete`, `{"ids": [...], "missing": "raise" | "skip"}`."""
    if delete:
        _check_fields(data, DELETE_FIELDS)
        if "ids" not in data:
            raise InputError("missing 'ids' (the document ids to delete)", field="ids")
        ids = _id_list(data["ids"], "ids", config, limit=config.max_write_documents)
        if not ids:
            raise InputError("'ids' is empty", field="ids")
        missing = _choice(data, "missing", "raise", ("raise", "skip"))
        return WriteRequest(documents=[], ids=ids, missing=missing)
    _check_fields(data, ADD_FIELDS)
    raw = data.get("documents")
    if not isinstance(raw, list) or not raw:
        raise InputError("'documents' must be a non-empty list of objects", field="documents")
    if len(raw) > config.max_write_documents:
        raise InputError(f"{len(raw)} documents in one request; the limit is "
                         f"{config.max_write_documents}", field="documents")  # fmt: skip
    return WriteRequest(documents=[_document(d, n) for n, d in enumerate(raw)], ids=[])


def _document(value: Any, n: int) -> Document:
    where = f"documents.{n}"  # the JSON path, as the update's errors name it
    if not isinstance(value, dict):
        raise InputError(f"'{where}' must be an object with 'id' and 'text'", field=where)
    _check_fields(value, DOCUMENT_FIELDS, where)
    for name in ("id", "text"):
        if not isinstance(value.get(name), str) or not value[name].strip():
            name = f"{where}.{name}"
            raise InputError(f"'{name}' must be a non-empty string", field=name)
    title = value.get("title", "")
    if not isinstance(title, str):
        raise InputError(f"'{where}.title' must be a string", field=f"{where}.title")
    metadata = value.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InputError(f"'{where}.metadata' must be an object", field=f"{where}.metadata")
    return Document(doc_id=value["id"], text=value["text"], title=title, metadata=metadata)


# ---------------------------------------------------------------------- field checks
def _check_fields(data: dict[str, Any], allowed: tuple[str, ...], where: str = "") -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise InputError(
            f"unknown field(s) {unknown}; expected some of {sorted(allowed)}", field=name
        )


def _queries(data: dict[str, Any], config: ServeConfig) -> tuple[list[str], bool]:
    if ("query" in data) == ("queries" in data):
        raise InputError("give either 'query' (a string) or 'queries' (a list)", field="query")
    if "query" in data:
        return [_query_text(data["query"], "query", config)], True
    raw = data["queries"]
    if not isinstance(raw, list) or not raw:
        raise InputError("'queries' must be a non-empty list of strings", field="queries")
    if len(raw) > config.max_queries:
        raise InputError(
            f"{len(raw)} queries in one request; the limit is {config.max_queries}",
            field="queries",
        )
    return [_query_text(q, f"queries[{n}]", config) for n, q in enumerate(raw)], False


def _query_text(value: Any, field: str, config: ServeConfig) -> str:
    if not isinstance(value, str):
        raise InputError(f"'{field}' must be a string, got {type(value).__name__}", field=field)
    if not value.strip():
        raise InputError(f"'{field}' is empty", field=field)
    if len(value) > config.max_query_chars:
        raise InputError(
            f"'{field}' has {len(value)} characters; the limit is {config.max_query_chars}",
            field=field,
        )
    return value


def _id_list(value: Any, field: str, config: ServeConfig, limit: int | None = None) -> list[str]:
    limit = config.max_candidates if limit is None else limit
    if not isinstance(value, list):
        raise InputError(f"'{field}' must be a list of document ids", field=field)
    if len(value) > limit:
        raise InputError(f"'{field}' has {len(value)} ids; the limit is {limit}", field=field)
    for n, doc_id in enumerate(value):
        if not isinstance(doc_id, str):
            raise InputError(
                f"'{field}[{n}]' must be a string id, got {type(doc_id).__name__}", field=field
            )
    return list(value)


def _int(data: dict[str, Any], field: str, default: int | None, upper: int | None) -> int | None:
    value = data.get(field, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"'{field}' must be an integer >= 1, got {value!r}", field=field)
    if upper is not None and value > upper:
        raise InputError(f"'{field}' is {value}; the limit is {upper}", field=field)
    return value


def _bool(data: dict[str, Any], field: str) -> bool:
    value = data.get(field, False)
    if not isinstance(value, bool):
        raise InputError(f"'{field}' must be true or false, got {value!r}", field=field)
    return value


def _choice(data: dict[str, Any], field: str, default: str, choices: tuple[str, ...]) -> str:
    value = data.get(field, default)
    if value not in choices:
        raise InputError(f"'{field}' must be one of {list(choices)}, got {value!r}", field=field)
    return value


def _filter(data: dict[str, Any]) -> dict[str, Any] | None:
    value = data.get("filter")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(f"'filter' must be a JSON object, got {type(value).__name__}",
                         field="filter")  # fmt: skip
    compile_filter(value)  # a bad filter is a 400 naming its part, before any work
    return value


def _url_float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InputError(f"parameter {name!r} must be a number, got {value!r}",
                         field=name) from None  # fmt: skip


def _url_json(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise InputError(f"parameter {name!r} is not valid JSON: {err.msg}", field=name) from None


def _url_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        message = f"parameter {name!r} must be an integer, got {value!r}"
        raise InputError(message, field=name) from None


def _url_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InputError(f"parameter {name!r} must be 1/0 or true/false, got {value!r}", field=name)
