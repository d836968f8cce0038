"""`ServeConfig`: the defaults and limits of a search server."""

from __future__ import annotations

from dataclasses import dataclass

from latesearch._configio import JsonConfig
from latesearch.errors import ConfigError
from latesearch.search.modes import mode_names


@dataclass(frozen=True)
class ServeConfig(JsonConfig):
    """What a request may ask for, what it gets when it does not say, and how much work
    the server takes on at once.

    default_k / default_mode: used when a request gives no `k` / `mode`;
    max_k: the largest `k` a request may ask for;
    max_queries: queries per batch request; max_query_chars: characters per query;
    max_candidates: the largest candidate depth (`bm25_k`, `k_prime`, `ndocs`) and the
    most candidate ids per query of a rerank request;
    max_write_documents: documents (or ids) per add / upsert / delete request;
    max_body_bytes: the largest request body read; batch_size: queries encoded at once
    within one request;
    max_documents: the most documents a write may leave in the index (None: only the
    index's own `IndexConfig.max_docs`);
    rate_limit: requests per second each client may make on average (by API key when it
    sends the server's, else by address; /health is not counted; None: no limit), in
    bursts of up to `rate_burst` (None: one second's worth, at least 1); past it: 429 with
    Retry-After.

    Scheduling (`serving.scheduler`): searches and reranks wait in a queue of at most
    `max_queue` queries (past it: 503 with Retry-After); a worker thread takes what is
    queued, up to `max_batch` queries, waiting at most `max_wait_ms` for more, encodes
    them in one pass and searches each request on one version of the index.
    `search_threads` such workers serve the main lane; mode "exact" (which scores every
    document) has a lane and a worker of its own and is refused on collections of more
    than `max_exact_documents` documents (0: never). A request not answered within
    `request_timeout` seconds gets a 503 (still queued) or a 504 (running). A request is
    refused at once (503 with Retry-After) when its lane's expected wait (the queries queued
    at the lane's measured rate, or the oldest queued request's age) exceeds
    `max_queue_wait_ms`: an admitted request waits about that long at most.
    `torch_threads`: intra-op threads of each worker process (0: the cores divided
    among the `--workers` processes).
    """

    default_k: int = 10
    default_mode: str = "e2e"
    max_k: int = 1000
    max_queries: int = 256
    max_query_chars: int = 4096
    max_candidates: int = 10_000
    max_write_documents: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024
    batch_size: int = 64
    max_documents: int | None = None
    rate_limit: float | None = None
    rate_burst: int | None = None
    max_batch: int = 32
    max_wait_ms: float = 2.0
    max_queue: int = 128
    max_queue_wait_ms: float = 4000.0
    request_timeout: float = 10.0
    search_threads: int = 1
    max_exact_documents: int = 100_000
    torch_threads: int = 0

    def validate(self) -> None:
        self._check_ints("default_k", "max_k", "max_queries", "max_query_chars",
                         "max_candidates", "max_write_documents", "max_body_bytes",
                         "batch_size", "max_documents", "rate_burst", "max_batch",
                         "max_queue", "search_threads")  # fmt: skip
        self._check_ints("max_exact_documents", "torch_threads", minimum=0)
        if self.rate_limit is not None and not (0 < self.rate_limit < float("inf")):
            self._bad("rate_limit", "a positive number of requests per second, or None")
        if self.default_k > self.max_k:
            raise ConfigError(
                f"ServeConfig.default_k ({self.default_k}) exceeds max_k ({self.max_k})"
            )
        if self.default_mode not in mode_names():
            raise ConfigError(f"ServeConfig.default_mode must be one of {list(mode_names())}, "
                              f"got {self.default_mode!r}")  # fmt: skip
        if not 0 <= self.max_wait_ms <= 1000:
            self._bad("max_wait_ms", "between 0 and 1000")
        if not 0 < self.max_queue_wait_ms < float("inf"):
            self._bad("max_queue_wait_ms", "a number of milliseconds > 0")
        if not self.request_timeout > 0:
            self._bad("request_timeout", "a number of seconds > 0")
