"""`Metrics`: what a server counts, in Prometheus's text format (`GET /metrics`,
prometheus-client from the server extra).

    latesearch_requests_total{route, method, status}     requests answered
    latesearch_request_seconds{route}                    latency of every request
    latesearch_search_seconds{mode, index}               latency of searches by mode
    latesearch_queue_queries{lane, index}                queries waiting now
    latesearch_batch_queries                             queries per micro-batch
    latesearch_index_documents{index} / _embeddings      size of the version served
    latesearch_index_generation{index}                   versions loaded since start
    latesearch_build_jobs{status}                        index builds by status

With `--workers N` each process counts its own requests; prometheus-client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `latesearch serve`) sums them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The server's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        import prometheus_client as pc

        self._pc = pc
        self.registry = pc.CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        reg = {"registry": self.registry}
        self.requests = pc.Counter("latesearch_requests", "Requests answered",
                                   ["route", "method", "status"], **reg)  # fmt: skip
        self.latency = pc.Histogram("latesearch_request_seconds", "Request latency",
                                    ["route"], buckets=LATENCY_BUCKETS, **reg)  # fmt: skip
        self.search_latency = pc.Histogram("latesearch_search_seconds", "Search latency by mode",
                                           ["mode", "index"], buckets=LATENCY_BUCKETS,
                                           **reg)  # fmt: skip
        self.batches = pc.Histogram("latesearch_batch_queries", "Queries per micro-batch",
                                    buckets=BATCH_BUCKETS, **reg)  # fmt: skip
        gauge = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.queue = pc.Gauge("latesearch_queue_queries", "Queries waiting",
                              ["lane", "index"],
                              **gauge, **reg)  # fmt: skip
        index_gauge = {"multiprocess_mode": "max"} if self.multiprocess else {}
        self.documents = pc.Gauge("latesearch_index_documents", "Documents in the version served",
                                  ["index"], **index_gauge, **reg)  # fmt: skip
        self.embeddings = pc.Gauge("latesearch_index_embeddings", "Token embeddings in the "
                                   "version served", ["index"], **index_gauge, **reg)  # fmt: skip
        self.generation = pc.Gauge("latesearch_index_generation", "Index versions loaded since "
                                   "the server started", ["index"], **index_gauge,
                                   **reg)  # fmt: skip

        self.jobs = pc.Gauge("latesearch_build_jobs", "Index build jobs by status",
                             ["status"], **index_gauge, **reg)  # fmt: skip
        self._watched: dict[str, tuple[Callable[[str], int], list[str]]] = {}

    def watch_queue(self, queued: Callable[[str], int], lanes: list[str],
                    index: str = "") -> None:  # fmt: skip
        """Queue depth of `index`'s lanes, read when scraped (set on each batch in
        multiprocess mode)."""
        self._watched[index] = (queued, lanes)
        if not self.multiprocess:
            for lane in lanes:
                self.queue.labels(lane, index).set_function(lambda lane=lane: queued(lane))

    def index(self, documents: int, embeddings: int, index: str = "") -> None:
        """A version of `index` is now served."""
        self.documents.labels(index).set(documents)
        self.embeddings.labels(index).set(embeddings)
        self.generation.labels(index).inc()

    def forget(self, index: str) -> None:
        """`index` is no longer served: its samples go."""
        queued, lanes = self._watched.pop(index, (None, []))
        for lane in lanes:
            _remove(self.queue, lane, index)
        for gauge in (self.documents, self.embeddings, self.generation):
            _remove(gauge, index)

    def build_jobs(self, counts: dict[str, int]) -> None:
        """How many build jobs are in each status now."""
        for status, count in counts.items():
            self.jobs.labels(status).set(count)

    def batch(self, queries: int) -> None:
        self.batches.observe(queries)
        if self.multiprocess:
            for index, (queued, lanes) in list(self._watched.items()):
                for lane in lanes:
                    self.queue.labels(lane, index).set(queued(lane))

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def search(self, mode: str, seconds: float, index: str = "") -> None:
        self.search_latency.labels(mode, index).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of a scrape."""
        registry: Any = self.registry
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = self._pc.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return self._pc.generate_latest(registry), self._pc.CONTENT_TYPE_LATEST


def make_metrics() -> Metrics | None:
    """`Metrics`, or None without prometheus-client (then /metrics answers 404)."""
    try:
        return Metrics()
    except ImportError:
        return None


def _remove(metric: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never set
        metric.remove(*labels)
