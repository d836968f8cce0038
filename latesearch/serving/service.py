"""`SearchService`: routes requests to an `Index` and answers with JSON-ready dicts.

It knows nothing of sockets: `health()`, `search_url(query_string)`, `search(data)`,
`rerank(data)` and `write(data, ...)` (what the FastAPI routes of `serving.app` call), or
`handle(method, target, body)`, return a `Response`, so the whole protocol is testable
without a network.

    GET  /health                      the index, its size and the modes it can serve
    GET  /search?q=...&k=10&mode=e2e  one query, with the options HTTP takes of
                                      `search.request.OPTIONS` (text=1, meta=1,
                                      filter=JSON, ...)
    POST /search  {"query": ...} or {"queries": [...]}, plus the same options
    POST /rerank  {"query": ..., "candidates": [ids]} or {"queries": [...],
                  "candidates": [[ids], ...]}, optional "k", "missing", "filter"
    POST /documents, PUT /documents, POST /documents/delete   writes (API key)

Searches and reranks run through a `Scheduler` (bounded queue, deadline, micro-batches);
the FastAPI routes await them (`search_async`, ...) without holding a thread.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from latesearch import __version__
from latesearch.errors import (
    DeadlineError,
    InputError,
    LatesearchError,
    ServerBusyError,
    UnknownDocumentError,
)
from latesearch.indexing.components import MissingComponentError
from latesearch.search.searcher import check_queries
from latesearch.serving.config import ServeConfig
from latesearch.serving.metrics import Metrics, make_metrics
from latesearch.serving.parsing import (
    Search,
    models,
    parse_json_body,
    rerank_from_json,
    search_from_json,
    search_from_url,
    write_from_json,
)
from latesearch.serving.scheduler import EXACT_LANE, MAIN_LANE, Job, Scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Response:
    """An HTTP status, a JSON-ready body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pending:
    """A request queued in the scheduler: its job, and how its result becomes a
    `Response`."""

    job: Job
    reply: Callable[[Any], Response]
    mode: str


class SearchService:
    """Answers search, rerank and health requests on one `Index`.

    Searches run concurrently: each request takes the version of the index published
    when its batch starts and reads only that one (a version is read-only; the model and
    the searcher's components are shared, loaded once). Searches and reranks go through
    `scheduler` (see `serving.scheduler`): a bounded queue, a deadline, micro-batches.

    When an update (from another process or object) publishes a new version, the next
    batch loads it, whole, and answers from it; until it loads (e.g. during the
    publish's renames) requests are answered from the version before. `index` is the
    version answering now.

    Requests are validated by the pydantic models of `serving.schemas` (the server extra).
    """

    def __init__(
        self, index: Any, config: ServeConfig | None = None, *, api_key: str | None = None,
        metrics: Metrics | None | bool = True, name: str | None = None,
    ) -> None:  # fmt: skip
        models()  # InputError now, not per request, without the server extra
        self.index = index
        self.name = name or Path(index.folder).name  # its label in the metrics
        self.config = config or ServeConfig()
        self.api_key = api_key or None
        self.metrics = make_metrics() if metrics is True else metrics or None
        self._version_lock = threading.Lock()  # one thread loads a new version
        self._write_lock = threading.Lock()  # one update at a time
        c = self.config
        self.scheduler = Scheduler(
            self._current, max_batch=c.max_batch, max_wait=c.max_wait_ms / 1000,
            max_queue=c.max_queue, max_queue_wait=c.max_queue_wait_ms / 1000,
            timeout=c.request_timeout, threads=c.search_threads,
            observe=self.metrics.batch if self.metrics else None,
        )  # fmt: skip
        if self.metrics is not None:
            self.metrics.watch_queue(lambda lane: self.scheduler.lanes[lane].queued,
                                     [MAIN_LANE, EXACT_LANE], self.name)  # fmt: skip
            self._served(index)
        self._routes: dict[str, dict[str, Callable[[str, bytes], Response]]] = {
            "/health": {"GET": self._health},
            "/search": {"GET": self._search_get, "POST": self._search_post},
            "/rerank": {"POST": self._rerank},
        }

    # ------------------------------------------------------------------ entry points
    def warm_up(self) -> None:
        """Load the query encoder (and the default mode's component) before the first
        request, so that a wrong model or a missing component fails at start-up."""
        self._warm(self._current())

    def close(self) -> None:
        """Stop the scheduler's worker threads (requests queued get no answer); the
        metrics forget this index."""
        self.scheduler.close()
        if self.metrics is not None:
            self.metrics.forget(self.name)

    def _warm(self, index: Any) -> None:
        _ = index.model
        mode = self.config.default_mode
        if mode != "exact":
            index.search("warm up", k=1, mode=mode)

    def _current(self) -> Any:
        """The index to answer from: the newest published version, loaded (by one
        thread) the first time a request sees it."""
        index = self.index
        if index.is_current():
            return index
        with self._version_lock:
            if self.index is not index:  # another thread loaded it meanwhile
                return self.index
            try:
                fresh = index.reloaded()
                self._warm(fresh)
            except (LatesearchError, OSError) as err:  # mid-publish, or a broken version
                log.warning("%s changed on disk; still answering from the version loaded "
                            "before (%s)", index.folder, err)  # fmt: skip
                return index
            log.info("%s: now answering from the version published on disk (%d documents)",
                     fresh.folder, len(fresh))  # fmt: skip
            self.index = fresh
            self._served(fresh)
            return fresh

    def _served(self, index: Any) -> None:
        if self.metrics is not None:
            described = _describe(index)
            self.metrics.index(described["documents"], described["embeddings"], self.name)

    def handle(self, method: str, target: str, body: bytes = b"") -> Response:
        """Answer one request: `target` is the request line's path with its query string."""
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        methods = self._routes.get(path)
        if methods is None:
            return _error(404, f"no endpoint {path!r}; endpoints: {sorted(self._routes)}")
        handler = methods.get(method.upper())
        if handler is None:
            allowed = ", ".join(sorted(methods))
            return Response(
                405, {"error": f"{method} is not allowed on {path}; use {allowed}"},
                {"Allow": allowed},
            )  # fmt: skip
        return self._guarded(f"{method} {target}", lambda: handler(url.query, body))

    # ------------------------------------------------------------------ typed entry points
    def health(self) -> Response:
        """GET /health."""
        return self._guarded("GET /health", lambda: self._health("", b""))

    def search_url(self, params: Any) -> Response:
        """GET /search with its URL parameters: the query string, or the `SearchQuery` the
        route has validated."""
        return self._guarded("GET /search", lambda: self._search_get(params, b""))

    def search(self, data: Any) -> Response:
        """POST /search with its JSON object (or the `SearchBody` the route has validated)."""
        return self._guarded("POST /search",
                             lambda: self._answer(self._search_job(search_from_json(
                                 data, self.config))))  # fmt: skip

    def rerank(self, data: Any) -> Response:
        """POST /rerank with its JSON object (or its validated `RerankBody`)."""
        return self._guarded("POST /rerank", lambda: self._answer(self._rerank_job(data)))

    async def search_url_async(self, params: Any) -> Response:
        """`search_url`, awaiting the scheduler instead of blocking a thread."""
        return await self._answer_async(
            "GET /search", lambda: self._search_job(search_from_url(params, self.config))
        )

    async def search_async(self, data: Any) -> Response:
        """`search`, awaiting the scheduler."""
        return await self._answer_async(
            "POST /search", lambda: self._search_job(search_from_json(data, self.config))
        )

    async def rerank_async(self, data: Any) -> Response:
        """`rerank`, awaiting the scheduler."""
        return await self._answer_async("POST /rerank", lambda: self._rerank_job(data))

    def write(self, data: Any, *, delete: bool, upsert: bool = False,
              key: str | None = None) -> Response:  # fmt: skip
        """POST /documents (add), PUT /documents (`upsert`: add or replace) or POST
        /documents/delete (`delete`), allowed only with the server's API key. The update
        is published like any other; searches go on meanwhile, from the version before.
        `data`: the JSON object, or its validated `DocumentsBody` / `DeleteBody`."""
        denied = self._denied(key)
        if denied is not None:
            return denied
        what = "POST /documents/delete" if delete else ("PUT" if upsert else "POST") + " /documents"
        return self._guarded(what, lambda: self._write(data, delete=delete, upsert=upsert))

    def _guarded(self, what: str, call: Callable[[], Response]) -> Response:
        try:
            return call()
        except Exception as err:  # noqa: BLE001 - every error becomes an answer
            return self._failure(what, err)

    def _failure(self, what: str, err: Exception) -> Response:
        """The answer to a request that raised `err`: 4xx for the client's errors, 503 /
        504 for an overloaded server, 500 for the rest (logged)."""
        if isinstance(err, InputError):
            return _error(400, str(err), err.field)
        if isinstance(err, MissingComponentError):  # the index cannot serve the mode
            return _error(400, str(err), "mode")
        if isinstance(err, ServerBusyError):
            return Response(503, {"error": str(err)}, {"Retry-After": str(err.retry_after)})
        if isinstance(err, DeadlineError):
            return _error(504, str(err))
        if isinstance(err, LatesearchError):
            log.error("%s failed: %s", what, err)
            return _error(500, str(err))
        log.error("%s failed", what, exc_info=err)  # keep serving
        return _error(500, f"internal error ({type(err).__name__}); see the server log")

    def _answer(self, pending: Pending) -> Response:
        started = time.perf_counter()
        response = pending.reply(self.scheduler.wait(self.scheduler.submit(pending.job)))
        self._observe(pending, started)
        return response

    async def _answer_async(self, what: str, prepare: Callable[[], Pending]) -> Response:
        try:
            pending = prepare()
            started = time.perf_counter()
            result = await self.scheduler.wait_async(self.scheduler.submit(pending.job))
            response = pending.reply(result)
            self._observe(pending, started)
            return response
        except Exception as err:  # noqa: BLE001 - every error becomes an answer
            return self._failure(what, err)

    def _observe(self, pending: Pending, started: float) -> None:
        if self.metrics is not None:
            self.metrics.search(pending.mode, time.perf_counter() - started, self.name)

    def _denied(self, key: str | None) -> Response | None:
        return denied(self.api_key, key)

    def _write(self, data: Any, *, delete: bool, upsert: bool) -> Response:
        request = write_from_json(data, self.config, delete=delete)
        with self._write_lock:
            writer = self._current().reloaded()  # its own object: searches go on
            try:
                summary = writer.update(
                    add=request.documents or None, delete=request.ids, replace=upsert,
                    missing=request.missing, progress=False, delete_filter=request.filter,
                    max_docs=self.config.max_documents,
                )  # fmt: skip
            except UnknownDocumentError as err:  # an id to delete
                field = _path_of(err.doc_id, [request.ids], "ids")
                raise InputError(err.message, field=field) from None
            except InputError as err:
                raise _in_the_body(err) from None
        documents = len(self._current())
        return Response(200, {"summary": summary.to_dict(), "documents": documents})

    # ------------------------------------------------------------------ handlers
    def _health(self, query: str, body: bytes) -> Response:
        index = self._current()
        return Response(200, {
            "status": "ok",
            "version": __version__,
            "index": str(index.folder),
            **_describe(index),
            "default_mode": self.config.default_mode,
            "default_k": self.config.default_k,
            "max_k": self.config.max_k,
        })  # fmt: skip

    def _search_get(self, params: Any, body: bytes) -> Response:
        return self._answer(self._search_job(search_from_url(params, self.config)))

    def _search_post(self, query: str, body: bytes) -> Response:
        no_url_params(query, "POST /search")
        return self._answer(self._search_job(search_from_json(parse_json_body(body),
                                                              self.config)))  # fmt: skip

    def _search_job(self, search: Search) -> Pending:
        request = search.request
        check_queries(search.queries)  # before the queue: one bad query fails alone
        lane = MAIN_LANE
        if request.mode == "exact":
            lane = EXACT_LANE
            self._check_exact()
        job = self.scheduler.job(search.queries, request=request, lane=lane)

        def reply(answer: tuple[Any, dict[str, Any]]) -> Response:
            results, timings = answer
            head = {"mode": request.mode, "k": request.k}
            if search.single:
                return Response(200, {"query": search.queries[0], **head,
                                      "hits": results[0].to_dicts(),
                                      "timings": timings})  # fmt: skip
            rows = [{"query": q, "hits": h.to_dicts()}
                    for q, h in zip(search.queries, results, strict=True)]  # fmt: skip
            return Response(200, {**head, "results": rows, "timings": timings})

        return Pending(job, reply, request.mode)

    def _check_exact(self) -> None:
        """Mode exact scores every document: refused over `max_exact_documents`."""
        limit, size = self.config.max_exact_documents, len(self.index)
        if size > limit:
            raise InputError(f'mode "exact" scores every document; this server allows it on '
                             f"collections of up to {limit:,} documents and the index holds "
                             f"{size:,}: use e2e, rerank or hybrid", field="mode")  # fmt: skip

    def _rerank(self, query: str, body: bytes) -> Response:
        no_url_params(query, "POST /rerank")
        return self._answer(self._rerank_job(parse_json_body(body)))

    def _rerank_job(self, data: Any) -> Pending:
        request = rerank_from_json(data, self.config)
        check_queries(request.queries)

        def run(index: Any, encoded: Any) -> tuple[Any, dict[str, Any]]:
            shared = {} if encoded is None else {"encoded": encoded}
            found = index.rerank(request.queries, request.candidates, request.k,
                                 **shared, **request.options)  # fmt: skip
            return found, _timings(index)

        def reply(answer: tuple[Any, dict[str, Any]]) -> Response:
            results, timings = answer
            rows = [{"query": q, "hits": h.to_dicts(), "skipped": h.skipped}
                    for q, h in zip(request.queries, results, strict=True)]  # fmt: skip
            if request.single:
                return Response(200, {**rows[0], "timings": timings})
            return Response(200, {"results": rows, "timings": timings})

        job = self.scheduler.job(request.queries, run=_unknown_ids(run, request))
        return Pending(job, reply, "rerank")


def _unknown_ids(run: Callable[[Any, Any], Any], request: Any) -> Callable[[Any, Any], Any]:
    """`run`, with an id the index lacks reported as an InputError at its JSON path."""

    def checked(index: Any, encoded: Any) -> Any:
        try:
            return run(index, encoded)
        except UnknownDocumentError as err:
            lists = request.candidates if not request.single else request.candidates[:1]
            field = _path_of(err.doc_id, lists, "candidates", nested=not request.single)
            raise InputError(err.message, field=field) from None

    return checked


def _in_the_body(err: InputError) -> InputError:
    """An error about the request's documents (located `documents[n]` with the Document's
    field) located by the JSON path of the body's field, as `documents.0.id`."""
    found = re.fullmatch(r"documents\[(\d+)\]", err.path or "")
    if found is None:
        return err
    name = {"doc_id": "id"}.get(err.field or "", err.field)
    return InputError(err.message, field=".".join(filter(None, ["documents", found[1], name])))


def _path_of(doc_id: str | None, lists: list[list[str]], name: str, *,
             nested: bool = False) -> str:  # fmt: skip
    """The JSON path of the first `doc_id` in the request's id `lists` (`name.3`, or
    `name.1.3` for one list per query), `name` where it is not found."""
    for n, ids in enumerate(lists):
        if doc_id in ids:
            return ".".join([name, *([str(n)] if nested else []), str(ids.index(doc_id))])
    return name


def _describe(index: Any) -> dict[str, Any]:
    """documents, embeddings, model, components, modes (and shards) of an index or a
    sharded index."""
    return index.describe()


def _timings(index: Any) -> dict[str, Any]:
    timings = index.last_timings
    return timings.to_dict() if timings is not None else {}


def no_url_params(query: str, what: str) -> None:
    """InputError (field url) when a POST request also gives URL parameters."""
    if query:
        raise InputError(f"{what} takes its options in the JSON body, not the URL", field="url")


def _error(status: int, message: str, field_name: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field_name is not None:
        body["field"] = field_name
    return Response(status, body)


def denied(api_key: str | None, key: str | None) -> Response | None:
    """The answer refusing a request that needs the server's `api_key` and carries `key`
    (None: allowed)."""
    if api_key is None:
        return _error(403, "writes are disabled: start the server with an API key "
                           "(--api-key or LATESEARCH_API_KEY) to allow them")  # fmt: skip
    if key is None or not hmac.compare_digest(key.encode(), api_key.encode()):
        return Response(401, {"error": "this request needs the server's API key (header "
                                       "'Authorization: Bearer KEY' or 'X-API-Key: KEY')"},
                        {"WWW-Authenticate": "Bearer"})  # fmt: skip
    return None
