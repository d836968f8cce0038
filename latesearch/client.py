"""`Client` and `AsyncClient`: a latesearch server (`latesearch serve`) over HTTP, with the
calls of an `Index` (install extra `client`: httpx).

    client = Client("http://localhost:8893", api_key="...")
    hits = client.search("query text", k=10)                 # Hits of Hit, as Index.search
    hits = client.search(["q1", "q2"], mode="hybrid")         # list of Hits
    client.add("more.jsonl")                                  # or Documents, or dicts
    client.delete(["d3"]); client.delete(filter={"year": {"$lt": 2000}})
    client.indexes(); client.create_index("notes", docs); client.wait_job(job_id)

    async with AsyncClient(url) as client:                    # the same calls, awaited
        hits = await client.search("query text")

Errors are the library's: a 4xx about the request is an `InputError` naming its field (as
the server names it: `queries.3`, `filter.year.$gte`), 401/403 an `AuthError`, 429 a
`RateLimitError`, a 503 a `ServerBusyError`, a 504 a `DeadlineError`, another 5xx or no
answer at all a `ServerError` (the two before are ServerErrors too; `status`,
`retry_after`).
`retries` retries a request the server turned away for now (429, 503) after the
Retry-After it gave (else a short back-off).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from latesearch.errors import (
    AuthError,
    DeadlineError,
    InputError,
    LatesearchError,
    NotFoundError,
    RateLimitError,
    ServerBusyError,
    ServerError,
)
from latesearch.search.results import Hit, Hits

if TYPE_CHECKING:
    from latesearch.search.request import SearchRequest

__all__ = ["AsyncClient", "Client", "WriteResult"]

INSTALL_HINT = "the client needs httpx: pip install 'latesearch[client]'"
RETRYABLE = (429, 503)
FINISHED = ("done", "failed", "cancelled")  # a build job's final statuses
_HIT_FIELDS = tuple(f.name for f in fields(Hit))
_EXECUTION = ("batch_size", "device")  # how a search runs here: the server chooses its own


@dataclass(frozen=True)
class WriteResult:
    """What a write did: the server's `UpdateSummary` fields and the documents the index
    holds after it."""

    documents: int
    added: int = 0
    deleted: int = 0
    replaced: int = 0
    unknown: list[str] = field(default_factory=list)
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> WriteResult:
        summary = dict(body.get("summary") or {})
        return cls(documents=int(body["documents"]), added=summary.get("added", 0),
                   deleted=summary.get("deleted", 0), replaced=summary.get("replaced", 0),
                   unknown=list(summary.get("unknown", [])),
                   seconds=summary.get("seconds", 0.0), summary=summary)  # fmt: skip


@dataclass(frozen=True)
class _Call:
    """One HTTP request and how its JSON answer becomes the call's result."""

    method: str
    path: str
    parse: Callable[[dict[str, Any]], Any]
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    server: bool = False  # a route of the server (/indexes, /jobs), not of one index


class _Calls:
    """The calls, each made into a `_Call` and run by the subclass's `_run` (which returns
    the result, or a coroutine of it)."""

    def __init__(self, url: str, *, api_key: str | None = None, index: str | None = None,
                 timeout: float | None = 60.0, retries: int = 0,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        """`url`: the server's base URL; `api_key` (default: $LATESEARCH_API_KEY) is sent
        with every request (writes need it; a rate limit counts by it); `index`: one named
        index of a server serving several (its routes under /indexes/NAME); `timeout`
        seconds per request (None: none); `retries` of a request turned away for now."""
        if not url.startswith(("http://", "https://")):
            raise InputError(f"the server's URL must start with http:// or https://, got "
                             f"{url!r}", field="url")  # fmt: skip
        if not isinstance(retries, int) or retries < 0:
            raise InputError(f"retries must be a count >= 0, got {retries!r}", field="retries")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("LATESEARCH_API_KEY")
        self.prefix = f"/indexes/{quote(index, safe='')}" if index else ""
        self.retries = retries
        self.timeout = timeout
        self.headers = {"User-Agent": "latesearch-client", **(headers or {})}
        if self.api_key:
            self.headers["Authorization"] = f"Bearer {self.api_key}"
        self.last_timings: dict[str, Any] | None = None  # the latest search's, as answered

    def _run(self, call: _Call) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url + self.prefix!r})"

    # ------------------------------------------------------------------ the calls
    def health(self) -> Any:
        """GET /health: the index, its size, the modes it serves and the server's limits."""
        return self._run(_Call("GET", "/health", dict))

    def search(self, queries: str | list[str], k: int | None = None, mode: str | None = None,
               *, request: SearchRequest | None = None, get: bool = False,
               **options: Any) -> Any:  # fmt: skip
        """`Index.search` on the server: `Hits` of one query, a list of `Hits` for a list
        of queries. `k` and `mode` default to the server's; `options` are the flat search
        options the HTTP API takes (filter, return_text, return_metadata, ncells, ndocs,
        bm25_k, fusion, hybrid_weight, ...), or give a `SearchRequest` as `request`. `get`
        asks one query with GET /search (a URL a cache may keep) instead of POST."""
        single = isinstance(queries, str)
        if not single and (not isinstance(queries, list | tuple) or not queries):
            raise InputError("queries must be a string or a non-empty list of strings",
                             field="queries")  # fmt: skip
        sent = _search_options(k, mode, request, options)

        def parse(body: dict[str, Any]) -> Hits | list[Hits]:
            self.last_timings = body.get("timings")
            if single:
                return _hits(body["hits"])
            return [_hits(row["hits"]) for row in body["results"]]

        if get:
            if not single:
                raise InputError("get=True asks one query (a string)", field="queries")
            return self._run(_Call("GET", "/search", parse, params=_url_params(queries, sent)))
        body = {"query": queries} if single else {"queries": list(queries)}
        return self._run(_Call("POST", "/search", parse, body={**body, **sent}))

    def rerank(self, query: str | list[str], candidate_ids: list[str] | list[list[str]],
               k: int | None = None, *, missing: str = "raise", return_text: bool = False,
               filter: Any = None, return_metadata: bool = False) -> Any:  # noqa: A002  # fmt: skip
        """`Index.rerank` on the server: exact MaxSim of `query` against `candidate_ids` (or
        of each query of a list against its own list); `Hits` with `skipped` filled when
        missing="skip"."""
        single = isinstance(query, str)
        body: dict[str, Any] = {"query" if single else "queries": query,
                                "candidates": candidate_ids, "missing": missing,
                                "return_text": return_text,
                                "return_metadata": return_metadata}  # fmt: skip
        if k is not None:
            body["k"] = k
        if filter is not None:
            body["filter"] = _filter_object(filter)

        def parse(answer: dict[str, Any]) -> Hits | list[Hits]:
            self.last_timings = answer.get("timings")
            rows = [answer] if single else answer["results"]
            found = [_hits(row["hits"], row.get("skipped")) for row in rows]
            return found[0] if single else found

        return self._run(_Call("POST", "/rerank", parse, body=body))

    def add(self, documents: Any, *, replace: bool = False) -> Any:
        """Add documents (POST /documents; an id the index holds is an error) or, with
        `replace`, add or replace them (PUT /documents). `documents`: what `Index.add`
        takes (a collection file, `Document`s, dicts with JSONL keys, (id, text) pairs).
        Needs the API key. Answers a `WriteResult`."""
        docs = _documents(documents)
        method = "PUT" if replace else "POST"
        return self._run(_Call(method, "/documents", WriteResult.of, body={"documents": docs}))

    def delete(self, doc_ids: str | list[str] | None = None, *, filter: Any = None,  # noqa: A002
               missing: str = "raise") -> Any:  # fmt: skip
        """Delete documents by id (`Index.delete`; an unknown id is an error unless
        missing="skip") or every document matching `filter` (the search filter language).
        Needs the API key. Answers a `WriteResult`."""
        if (doc_ids is None) == (filter is None):
            raise InputError("give either ids to delete or a filter", field="ids")
        if filter is not None:
            body: dict[str, Any] = {"filter": _filter_object(filter)}
        else:
            body = {"ids": [doc_ids] if isinstance(doc_ids, str) else list(doc_ids),
                    "missing": missing}  # fmt: skip
        return self._run(_Call("POST", "/documents/delete", WriteResult.of, body=body))

    # ------------------------------------------------------------------ many indexes
    def indexes(self) -> Any:
        """GET /indexes: every index the server serves (name, documents, modes, version)."""
        return self._run(_Call("GET", "/indexes", lambda body: body["indexes"], server=True))

    def create_index(self, name: str, documents: Any, *, config: dict[str, Any] | None = None,
                     bm25: bool = False, ann: bool | None = None) -> Any:  # fmt: skip
        """POST /indexes/NAME: build index `name` from `documents` (what `Index.add` takes)
        in the background, with the server's model; `config`: IndexConfig fields (flat or
        grouped). Needs the API key and a server with --index-root. Answers the job (a
        dict: id, status, progress); poll it with `job(id)` or `wait_job(id)`."""
        body = {"documents": _documents(documents), "config": dict(config or {}),
                "bm25": bm25, "ann": ann}  # fmt: skip
        return self._run(_Call("POST", f"/indexes/{quote(name, safe='')}", dict, body=body,
                               server=True))  # fmt: skip

    def job(self, job_id: str) -> Any:
        """GET /jobs/ID: a build job's status (queued, running, done, failed, cancelled)
        and progress."""
        return self._run(_Call("GET", f"/jobs/{quote(job_id, safe='')}", dict, server=True))

    def cancel_job(self, job_id: str) -> Any:
        """DELETE /jobs/ID: cancel a build job (what it built is deleted)."""
        return self._run(_Call("DELETE", f"/jobs/{quote(job_id, safe='')}", dict, server=True))

    def delete_index(self, name: str, *, delete_files: bool = False) -> Any:
        """DELETE /indexes/NAME: stop serving it; `delete_files` also deletes its folder
        (only an index under the server's --index-root). Needs the API key."""
        params = {"delete_files": "true"} if delete_files else None
        return self._run(_Call("DELETE", f"/indexes/{quote(name, safe='')}", dict,
                               params=params, server=True))  # fmt: skip

    # ------------------------------------------------------------------ transport
    def _client_options(self) -> dict[str, Any]:
        return {"base_url": self.url, "headers": self.headers, "timeout": self.timeout}

    def _path(self, call: _Call) -> str:
        return call.path if call.server else self.prefix + call.path

    def _request_options(self, call: _Call) -> dict[str, Any]:
        options: dict[str, Any] = {"params": call.params}
        if call.body is not None:
            options["json"] = call.body
        return options

    def _answer(self, call: _Call, response: Any, attempt: int) -> tuple[bool, Any]:
        """(retry, the call's result): retry when the server turned the request away for
        now and retries are left."""
        if response.status_code < 400:
            return False, call.parse(_json(response))
        error = error_of(response)
        if response.status_code in RETRYABLE and attempt < self.retries:
            return True, error
        raise error

    def _unreachable(self, err: Exception) -> ServerError:
        return ServerError(f"{self.url}: no answer ({type(err).__name__}: {err})")


class Client(_Calls):
    """A latesearch server, called synchronously (see the module's docstring); a context
    manager, or call `close()`. Safe to share between threads (httpx's pool)."""

    def __init__(self, url: str, *, transport: Any = None, **options: Any) -> None:
        """`_Calls`' options, and `transport`: an httpx transport (a proxy's, a test's)."""
        super().__init__(url, **options)
        httpx = _httpx()
        self._http = httpx.Client(**self._client_options(), transport=transport)
        self._transport_errors = httpx.TransportError

    def _run(self, call: _Call) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(call.method, self._path(call),
                                              **self._request_options(call))  # fmt: skip
            except self._transport_errors as err:
                raise self._unreachable(err) from None
            retry, result = self._answer(call, response, attempt)
            if not retry:
                return result
            time.sleep(_wait(result, attempt))
        raise AssertionError("unreachable")

    def wait_job(self, job_id: str, *, poll: float = 0.5, timeout: float | None = None) -> Any:
        """The build job once finished (done, failed or cancelled), polled every `poll`
        seconds; ServerError past `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (job := self.job(job_id))["status"] not in FINISHED:
            if deadline is not None and time.monotonic() > deadline:
                raise ServerError(f"build job {job_id} not finished after {timeout} s "
                                  f"({job['status']}, progress {job['progress']})")  # fmt: skip
            time.sleep(poll)
        return job

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Calls):
    """A latesearch server, called from asyncio: the same calls as `Client`, awaited;
    `async with`, or `await aclose()`."""

    def __init__(self, url: str, *, transport: Any = None, **options: Any) -> None:
        super().__init__(url, **options)
        httpx = _httpx()
        self._http = httpx.AsyncClient(**self._client_options(), transport=transport)
        self._transport_errors = httpx.TransportError

    async def _run(self, call: _Call) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(call.method, self._path(call),
                                                    **self._request_options(call))  # fmt: skip
            except self._transport_errors as err:
                raise self._unreachable(err) from None
            retry, result = self._answer(call, response, attempt)
            if not retry:
                return result
            await asyncio.sleep(_wait(result, attempt))
        raise AssertionError("unreachable")

    async def wait_job(self, job_id: str, *, poll: float = 0.5,
                       timeout: float | None = None) -> Any:  # fmt: skip
        """`Client.wait_job`, awaited."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (job := await self.job(job_id))["status"] not in FINISHED:
            if deadline is not None and time.monotonic() > deadline:
                raise ServerError(f"build job {job_id} not finished after {timeout} s "
                                  f"({job['status']}, progress {job['progress']})")  # fmt: skip
            await asyncio.sleep(poll)
        return job

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def error_of(response: Any) -> LatesearchError:
    """The library's error for an HTTP error answer (`{"error": ..., "field": ...}`)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("error") or response.text[:200] or response.reason_phrase)
    name = body.get("field")
    retry_after = _seconds(response.headers.get("Retry-After"))
    where = f"{response.request.method} {response.request.url.path}"
    if status in (401, 403):
        return AuthError(f"{where}: {message}", status=status)
    if status == 429:
        return RateLimitError(f"{where}: {message}", status=status, retry_after=retry_after)
    if status == 404 and body.get("error"):  # an index or job the server does not hold
        return NotFoundError(f"{where}: {message}")
    if 400 <= status < 500 and status != 404:
        prefix = f"field {name!r}: "
        return InputError(message.removeprefix(prefix) if name else message, field=name)
    if status == 503:
        return ServerBusyError(f"{where}: {status} {message}", retry_after=retry_after)
    if status == 504:
        return DeadlineError(f"{where}: {status} {message}")
    return ServerError(f"{where}: {status} {message}", status=status, retry_after=retry_after)


def _documents(documents: Any) -> list[dict[str, Any]]:
    """Documents as the server takes them (JSON objects), from what `Index.add` takes."""
    from latesearch.data import read_collection

    return [{"id": d.doc_id, "text": d.text, "title": d.title, "metadata": d.metadata}
            for d in read_collection(documents)]  # fmt: skip


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return httpx


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ServerError(f"{response.request.url}: the answer is not JSON",
                          status=response.status_code) from None  # fmt: skip
    if not isinstance(body, dict):
        raise ServerError(f"{response.request.url}: the answer is not a JSON object",
                          status=response.status_code)  # fmt: skip
    return body


def _seconds(value: str | None) -> float | None:
    """Retry-After's seconds (its HTTP-date form is not used by latesearch servers)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _wait(error: ServerError, attempt: int) -> float:
    return error.retry_after if error.retry_after is not None else min(0.1 * 2**attempt, 5.0)


def _hits(rows: list[dict[str, Any]], skipped: list[str] | None = None) -> Hits:
    return Hits([Hit(**{k: row[k] for k in _HIT_FIELDS if k in row}) for row in rows], skipped)


def _filter_object(spec: Any) -> dict[str, Any]:
    """A filter as the JSON object the server takes (its JSON text parsed here)."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as err:
            raise InputError(f"the filter is not valid JSON: {err.msg}", field="filter") from None
    if not isinstance(spec, dict):
        raise InputError(f"filter must be a JSON object, got {type(spec).__name__}",
                         field="filter")  # fmt: skip
    return spec


def _search_options(k: int | None, mode: str | None, request: SearchRequest | None,
                    options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The search options to send: those given, or a `SearchRequest`'s that the HTTP API
    takes (another option set away from its default is an error naming it)."""
    if request is not None:
        if k is not None or mode is not None or options:
            raise InputError("give either a request or k, mode and options, not both",
                             field="request")  # fmt: skip
        from latesearch.search.request import BY_NAME

        options = {}
        for name, value in request.flat().items():
            option = BY_NAME[name]
            if option.http and (name in ("k", "mode") or value != option.default):
                options[name] = value
            elif not option.http and name not in _EXECUTION and value != option.default:
                raise InputError(f"option {name!r} is not taken by the HTTP API", field=name)
    else:
        options = {"k": k, "mode": mode, **options}
    sent = {name: value for name, value in options.items() if value is not None}
    if "filter" in sent:
        sent["filter"] = _filter_object(sent["filter"])
    return sent


def _url_params(query: str, options: dict[str, Any]) -> dict[str, str]:
    """GET /search's parameters: `q`, and the options by their URL names."""
    from latesearch.search.request import BY_NAME

    params = {"q": query}
    for name, value in options.items():
        option = BY_NAME.get(name)
        key = option.url if option is not None and option.url else name
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, dict):
            params[key] = json.dumps(value)
        else:
            params[key] = str(value)
    return params
