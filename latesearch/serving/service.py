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
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from latesearch import __version__
from latesearch.errors import InputError, LatesearchError, StaleIndexError, UnknownDocumentError
from latesearch.indexing.components import MissingComponentError, present_components
from latesearch.search.modes import servable_modes
from latesearch.serving.config import ServeConfig
from latesearch.serving.parsing import (
    Search,
    models,
    parse_json_body,
    rerank_from_json,
    search_from_json,
    search_from_url,
    write_from_json,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Response:
    """An HTTP status, a JSON-ready body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class SearchService:
    """Answers search, rerank and health requests on one `Index`.

    Index calls are serialized by a lock (the model and the searcher's lazily loaded
    components are shared), so the service is safe behind a threading server.

    Every answer comes from one version of the index. When an update (from another process
    or object) publishes a new version, the next request loads it, whole, and answers from
    it; until it loads (e.g. during the publish's renames) requests are answered from the
    version before. `index` is the version answering now.

    Requests are validated by the pydantic models of `serving.schemas` (the server extra).
    """

    def __init__(
        self, index: Any, config: ServeConfig | None = None, *, api_key: str | None = None
    ) -> None:
        models()  # InputError now, not per request, without the server extra
        self.index = index
        self.config = config or ServeConfig()
        self.api_key = api_key or None
        self._lock = threading.Lock()  # index calls (searches share the model)
        self._write_lock = threading.Lock()  # one update at a time
        self._routes: dict[str, dict[str, Callable[[str, bytes], Response]]] = {
            "/health": {"GET": self._health},
            "/search": {"GET": self._search_get, "POST": self._search_post},
            "/rerank": {"POST": self._rerank},
        }

    # ------------------------------------------------------------------ entry points
    def warm_up(self) -> None:
        """Load the query encoder (and the default mode's component) before the first
        request, so that a wrong model or a missing component fails at start-up."""
        with self._lock:
            self._warm(self.index)

    def _warm(self, index: Any) -> None:
        _ = index.model
        mode = self.config.default_mode
        if mode != "exact":
            index.search("warm up", k=1, mode=mode)

    def _current(self) -> Any:
        """The index to answer from (call with the lock held): the newest published
        version, loaded here the first time a request sees it."""
        if self.index.is_current():
            return self.index
        try:
            fresh = self.index.reloaded()
            self._warm(fresh)
        except (LatesearchError, OSError) as err:  # mid-publish, or a broken new version
            log.warning("%s changed on disk; still answering from the version loaded "
                        "before (%s)", self.index.folder, err)  # fmt: skip
            return self.index
        log.info("%s: now answering from the version published on disk (%d documents)",
                 fresh.folder, len(fresh))  # fmt: skip
        self.index = fresh
        return fresh

    def _call(self, work: Callable[[Any], Any]) -> Any:
        """`work(index)` on the current version, under the lock; once more on the next
        version if this one was replaced while a component was being loaded."""
        with self._lock:
            index = self._current()
            try:
                return work(index)
            except StaleIndexError:
                fresh = self._current()
                if fresh is index:
                    raise
                return work(fresh)

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
                             lambda: self._search(search_from_json(data, self.config)))  # fmt: skip

    def rerank(self, data: Any) -> Response:
        """POST /rerank with its JSON object (or its validated `RerankBody`)."""
        return self._guarded("POST /rerank", lambda: self._rerank_request(data))

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
        except InputError as err:
            return _error(400, str(err), err.field)
        except MissingComponentError as err:  # the index cannot serve the mode asked for
            return _error(400, str(err), "mode")
        except LatesearchError as err:
            log.error("%s failed: %s", what, err)
            return _error(500, str(err))
        except Exception as err:  # keep serving; the traceback goes to the log
            log.exception("%s failed", what)
            return _error(500, f"internal error ({type(err).__name__}); see the server log")

    def _denied(self, key: str | None) -> Response | None:
        if self.api_key is None:
            return _error(403, "writes are disabled: start the server with an API key "
                               "(--api-key or LATESEARCH_API_KEY) to allow them")  # fmt: skip
        if key is None or not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return Response(401, {"error": "this request needs the server's API key (header "
                                           "'Authorization: Bearer KEY' or 'X-API-Key: KEY')"},
                            {"WWW-Authenticate": "Bearer"})  # fmt: skip
        return None

    def _write(self, data: Any, *, delete: bool, upsert: bool) -> Response:
        request = write_from_json(data, self.config, delete=delete)
        with self._write_lock:
            with self._lock:
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
        with self._lock:
            documents = len(self._current())
        return Response(200, {"summary": summary.to_dict(), "documents": documents})

    # ------------------------------------------------------------------ handlers
    def _health(self, query: str, body: bytes) -> Response:
        with self._lock:
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
        return self._search(search_from_url(params, self.config))

    def _search_post(self, query: str, body: bytes) -> Response:
        no_url_params(query, "POST /search")
        return self._search(search_from_json(parse_json_body(body), self.config))

    def _search(self, search: Search) -> Response:
        def work(index: Any) -> tuple[Any, dict[str, Any]]:
            return index.search(search.queries, request=search.request), _timings(index)

        results, timings = self._call(work)
        head = {"mode": search.request.mode, "k": search.request.k}
        if search.single:
            return Response(200, {"query": search.queries[0], **head,
                                  "hits": results[0].to_dicts(), "timings": timings})  # fmt: skip
        rows = [{"query": q, "hits": h.to_dicts()} for q, h in zip(search.queries, results,
                                                                  strict=True)]  # fmt: skip
        return Response(200, {**head, "results": rows, "timings": timings})

    def _rerank(self, query: str, body: bytes) -> Response:
        no_url_params(query, "POST /rerank")
        return self._rerank_request(parse_json_body(body))

    def _rerank_request(self, data: Any) -> Response:
        request = rerank_from_json(data, self.config)

        def work(index: Any) -> tuple[Any, dict[str, Any]]:
            found = index.rerank(request.queries, request.candidates, request.k,
                                 **request.options)  # fmt: skip
            return found, _timings(index)

        try:
            results, timings = self._call(work)
        except UnknownDocumentError as err:
            lists = request.candidates if not request.single else request.candidates[:1]
            field = _path_of(err.doc_id, lists, "candidates", nested=not request.single)
            raise InputError(err.message, field=field) from None
        rows = [{"query": q, "hits": h.to_dicts(), "skipped": h.skipped}
                for q, h in zip(request.queries, results, strict=True)]  # fmt: skip
        if request.single:
            return Response(200, {**rows[0], "timings": timings})
        return Response(200, {"results": rows, "timings": timings})


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
    if hasattr(index, "describe"):
        return index.describe()
    store = index.store
    return {"documents": len(index), "embeddings": store.n_embeddings,
            "model": store.manifest.model_source, "components": present_components(store),
            "modes": servable_modes(store)}  # fmt: skip


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
