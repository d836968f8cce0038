"""The HTTP front of a `SearchService`: a FastAPI application (install extra `server`)
with its OpenAPI schema at /openapi.json, interactive docs at /docs and a search page at /
(`page`). The routes only
translate HTTP to the service's calls and back."""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, which
# name the schemas imported inside create_app (the server extra is optional)
import contextlib
import logging
import signal
import socket
import threading
import time
from typing import Annotated, Any

from latesearch import __version__
from latesearch.errors import InputError, NotFoundError
from latesearch.serving import logs
from latesearch.serving import middleware as mw
from latesearch.serving.catalog import Catalog
from latesearch.serving.page import add_page_routes
from latesearch.serving.parsing import INSTALL_HINT, input_error, url_params
from latesearch.serving.scheduler import MAIN_LANE
from latesearch.serving.service import Response, SearchService, denied, no_url_params

__all__ = ["INSTALL_HINT", "RunningServer", "create_app"]


def create_app(served: SearchService | Catalog) -> Any:
    """A FastAPI application answering with `served`: one `SearchService`, or a `Catalog`
    of named indexes (routes under /indexes/NAME; those without a name answer for its
    default index)."""
    try:
        from fastapi import Depends, FastAPI, Header, Query, Request
        from fastapi import Path as PathParam
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse
        from starlette.exceptions import HTTPException
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    from latesearch.serving import schemas as s

    catalog = served if isinstance(served, Catalog) else Catalog.of(served)
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 413, 429, 500, 503, 504)
    }
    app = FastAPI(
        title="latesearch",
        version=__version__,
        description="ColBERT late-interaction search over named indexes (/indexes/NAME/...; "
        "the routes without a name answer for the default index). Errors answer "
        '`{"error": ..., "field": ...}` with a 4xx status naming the bad field; an '
        "overloaded server answers 503 with Retry-After, a request past its deadline 504.",
    )

    def reply(response: Response) -> JSONResponse:
        return JSONResponse(response.body, response.status, response.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = {404: f"no endpoint {request.url.path!r}; see /docs",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(
            exc.status_code, str(exc.detail))  # fmt: skip
        return JSONResponse({"error": message}, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if errors[0].get("type") == "json_invalid":
            message = errors[0].get("ctx", {}).get("error", "invalid JSON")
            return JSONResponse({"error": f"the request body is not valid JSON: {message}",
                                 "field": "body"}, 400)  # fmt: skip
        return bad_input(input_error(errors, routed=True))

    @app.exception_handler(InputError)
    async def input_error_handler(request: Request, exc: InputError) -> JSONResponse:
        return bad_input(exc)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, 404)

    def bad_input(error: InputError) -> JSONResponse:
        return JSONResponse({"error": str(error), "field": error.field}, 400)

    def once_each(request: Request) -> None:
        url_params(request.query_params.multi_items())  # a repeated parameter is an error

    def body_only(request: Request) -> None:
        no_url_params(str(request.query_params), f"POST {request.url.path}")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Any:
        """Prometheus text format (see `serving.metrics`)."""
        from fastapi.responses import Response as Raw

        if catalog.metrics is None:
            return JSONResponse({"error": "metrics need prometheus-client: pip install "
                                          "'latesearch[server]'"}, 404)  # fmt: skip
        body, content_type = catalog.metrics.exposition()
        return Raw(body, media_type=content_type)

    key_of = mw.api_key

    def index_name(name: Annotated[str, PathParam(description="the index's name")]) -> None:
        """Documents the {name} of the routes under /indexes/NAME."""

    def add_index_routes(prefix: str) -> None:
        """The routes of one index, at `prefix` ("" for the default index)."""
        named = [Depends(index_name)] if prefix else []
        tags = ["index"] if prefix else ["default index"]

        def pick(request: Request) -> SearchService:
            name = request.path_params.get("name")
            return catalog.get(name) if name is not None else catalog.default()

        @app.get(f"{prefix}/health", response_model=s.HealthOut, responses=errors,
                 dependencies=named, tags=tags)  # fmt: skip
        def health(request: Request) -> JSONResponse:
            """The index, its size and the modes it can serve."""
            return reply(pick(request).health())

        # searches are awaited, not run in a thread: the scheduler queues and batches them
        @app.get(f"{prefix}/search", response_model=s.SearchOut, responses=errors,
                 dependencies=[*named, Depends(once_each)], tags=tags)  # fmt: skip
        async def search_get(
            request: Request, params: Annotated[s.SearchQuery, Query()]
        ) -> JSONResponse:
            """Search one query given as URL parameters."""
            return reply(await pick(request).search_url_async(params))

        @app.post(f"{prefix}/search", response_model=s.SearchOut, responses=errors,
                  dependencies=[*named, Depends(body_only)], tags=tags)  # fmt: skip
        async def search_post(request: Request, body: s.SearchBody) -> JSONResponse:
            """Search one query or a batch."""
            return reply(await pick(request).search_async(body))

        @app.post(f"{prefix}/rerank", response_model=s.RerankOut, responses=errors,
                  dependencies=[*named, Depends(body_only)], tags=tags)  # fmt: skip
        async def rerank(request: Request, body: s.RerankBody) -> JSONResponse:
            """Score given document ids exactly and rank them."""
            return reply(await pick(request).rerank_async(body))

        @app.post(f"{prefix}/documents", response_model=s.WriteOut, responses=errors,
                  dependencies=named, tags=tags)  # fmt: skip
        def add(request: Request, body: s.DocumentsBody,
                authorization: str | None = Header(None),
                x_api_key: str | None = Header(None)) -> JSONResponse:  # fmt: skip
            """Add documents (needs the API key); an id the index holds is an error."""
            return reply(pick(request).write(body, delete=False,
                                             key=key_of(authorization, x_api_key)))  # fmt: skip

        @app.put(f"{prefix}/documents", response_model=s.WriteOut, responses=errors,
                 dependencies=named, tags=tags)  # fmt: skip
        def upsert(request: Request, body: s.DocumentsBody,
                   authorization: str | None = Header(None),
                   x_api_key: str | None = Header(None)) -> JSONResponse:  # fmt: skip
            """Add documents or replace those whose id the index holds (needs the API key)."""
            return reply(pick(request).write(body, delete=False, upsert=True,
                                             key=key_of(authorization, x_api_key)))  # fmt: skip

        @app.post(f"{prefix}/documents/delete", response_model=s.WriteOut, responses=errors,
                  dependencies=named, tags=tags)  # fmt: skip
        def delete(request: Request, body: s.DeleteBody,
                   authorization: str | None = Header(None),
                   x_api_key: str | None = Header(None)) -> JSONResponse:  # fmt: skip
            """Delete documents by id or by filter (needs the API key)."""
            return reply(pick(request).write(body, delete=True,
                                             key=key_of(authorization, x_api_key)))  # fmt: skip

    add_index_routes("")
    add_index_routes("/indexes/{name}")
    add_catalog_routes(app, catalog, errors, key_of, reply)
    add_page_routes(app)  # the search page at /
    # plain ASGI middlewares (`serving.middleware`), the last added the outermost
    app.add_middleware(mw.BodyLimit, limit=catalog.config.max_body_bytes)
    app.add_middleware(mw.Shedding, refuse=lambda scope: refusal(catalog, scope))
    if catalog.config.rate_limit is not None:
        app.add_middleware(mw.RateLimit, rate=catalog.config.rate_limit,
                           burst=catalog.config.rate_burst, api_key=catalog.api_key)  # fmt: skip
    app.add_middleware(mw.Observation, metrics=catalog.metrics)  # sees every answer
    return app


def refusal(catalog: Catalog, scope: dict[str, Any]) -> tuple[str, Any] | None:
    """(route, ServerBusyError) for a GET /search (of a mode other than exact) or a POST
    /rerank whose index's main lane refuses work now; None for every other request (a
    POST /search names its mode in its body: the scheduler decides)."""
    method, parts = scope["method"], scope["path"].rstrip("/").split("/")
    if (method, parts[-1]) not in (("GET", "search"), ("POST", "rerank")):
        return None
    if len(parts) == 2:
        route, service = "/" + parts[1], catalog.default_or_none()
    elif len(parts) == 4 and parts[1] == "indexes":
        route, service = f"/indexes/{{name}}/{parts[3]}", catalog.services.get(parts[2])
    else:
        return None
    if service is None:
        return None
    if method == "GET":
        mode = mw.url_mode(scope.get("query_string", b"")) or service.config.default_mode
        if mode == "exact":
            return None
    refused = service.scheduler.refusal(MAIN_LANE, 1)
    return None if refused is None else (route, refused)


def add_catalog_routes(app: Any, catalog: Catalog, errors: Any, key_of: Any,
                       reply: Any) -> None:  # fmt: skip
    """GET /indexes; with the API key, POST and DELETE /indexes/NAME, and the build jobs
    (GET and DELETE /jobs/ID)."""
    from fastapi import Header, Query
    from fastapi import Path as PathParam

    from latesearch.serving import schemas as s

    tags = ["indexes"]

    def allowed(authorization: str | None, x_api_key: str | None) -> Any:
        refused = denied(catalog.api_key, key_of(authorization, x_api_key))
        return None if refused is None else reply(refused)

    @app.get("/indexes", responses=errors, tags=tags)
    def list_indexes() -> Any:
        """Every index served: name, documents, modes, version (and builds under way)."""
        return reply(catalog.listing())

    @app.get("/indexes/{name}", response_model=s.HealthOut, responses=errors, tags=tags)
    def describe_index(name: Annotated[str, PathParam()]) -> Any:
        """One index: its size, modes and the server's limits (as its /health)."""
        return reply(catalog.get(name).health())

    @app.post("/indexes/{name}", status_code=202, responses=errors, tags=tags)
    def create_index(name: Annotated[str, PathParam()], body: s.CreateIndexBody,
                     authorization: str | None = Header(None),
                     x_api_key: str | None = Header(None)) -> Any:  # fmt: skip
        """Build an index from the posted documents in the background (needs the API key):
        202 with the job; poll GET /jobs/ID; the index is served once built."""
        return allowed(authorization, x_api_key) or reply(catalog.create(name, body))

    @app.delete("/indexes/{name}", responses=errors, tags=tags)
    def delete_index(name: Annotated[str, PathParam()],
                     delete_files: Annotated[bool, Query()] = False,
                     authorization: str | None = Header(None),
                     x_api_key: str | None = Header(None)) -> Any:  # fmt: skip
        """Stop serving the index (needs the API key); `delete_files=true` also deletes
        its folder (only for an index under the server's index root)."""
        return allowed(authorization, x_api_key) or reply(
            catalog.remove(name, delete_files=delete_files))  # fmt: skip

    @app.get("/jobs/{job_id}", responses=errors, tags=tags)
    def job(job_id: str, authorization: str | None = Header(None),
            x_api_key: str | None = Header(None)) -> Any:  # fmt: skip
        """A build job: status (queued, running, done, failed, cancelled) and progress."""
        return allowed(authorization, x_api_key) or reply(catalog.job(job_id))

    @app.delete("/jobs/{job_id}", responses=errors, tags=tags)
    def cancel_job(job_id: str, authorization: str | None = Header(None),
                   x_api_key: str | None = Header(None)) -> Any:  # fmt: skip
        """Cancel a build job (needs the API key): what it built is deleted."""
        return allowed(authorization, x_api_key) or reply(catalog.cancel_job(job_id))


class RunningServer:
    """A uvicorn server answering `service` on a socket bound at construction (port 0:
    any free port; `url` says which). `run()` serves in this thread until Ctrl-C or
    SIGTERM; `start()` / `stop()` serve from a background thread (tests, benchmarks)."""

    def __init__(self, service: SearchService | Catalog, host: str = "127.0.0.1",
                 port: int = 8893,
                 *, quiet: bool = False, json_logs: bool = False,
                 sock: socket.socket | None = None) -> None:  # fmt: skip
        try:
            import uvicorn
        except ImportError:
            raise InputError(INSTALL_HINT) from None
        self.socket = sock if sock is not None else listening_socket(host, port)
        logging_options: dict[str, Any] = {"access_log": not quiet}
        if json_logs:  # one JSON line per request, with its id, from create_app's middleware
            logs.configure(access=not quiet)
            logging_options = {"access_log": False, "log_config": None}
        else:
            logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.WARNING)
        config = uvicorn.Config(create_app(service), log_level="warning" if quiet else "info",
                                timeout_graceful_shutdown=5, **logging_options)  # fmt: skip
        self.server = _quiet_exit_server(uvicorn)(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self, timeout: float = 30.0) -> "RunningServer":
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server at {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.socket.close()

    def __enter__(self) -> "RunningServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and listening (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit this: without it, Nagle's algorithm and the client's
    # delayed ACK hold each response's body back ~40 ms on keep-alive
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections queue from now, before uvicorn starts
    except OSError:
        sock.close()
        raise
    return sock


def _quiet_exit_server(uvicorn: Any) -> Any:
    """uvicorn's Server, but a Ctrl-C or SIGTERM ends `run()` normally (exit status 0 for
    `latesearch serve`) instead of being raised again once the server has shut down."""

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            stops = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server
