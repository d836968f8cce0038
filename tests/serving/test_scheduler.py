"""Concurrent, batched searches: the same answers as one at a time; deadlines and the
queue's bound refuse work clearly instead of letting latency grow."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("pydantic")
from latesearch.errors import DeadlineError, InputError, ServerBusyError  # noqa: E402
from latesearch.search.request import SearchRequest  # noqa: E402
from latesearch.serving import SearchService, ServeConfig  # noqa: E402
from latesearch.serving.scheduler import Scheduler  # noqa: E402

QUERIES = ["river city", "protein cell study", "late interaction search", "music data",
           "the model of a city", "cell"]  # fmt: skip
REQUESTS = [
    {"k": 5},
    {"k": 3, "mode": "rerank"},
    {"k": 7, "mode": "hybrid"},
    {"k": 4, "mode": "exact"},
    {"k": 5, "filter": {"n": {"$gte": 0}}},
]


def same(hits, expected):
    assert [h.doc_id for h in hits] == [h.doc_id for h in expected]
    assert [h.score for h in hits] == pytest.approx([h.score for h in expected], abs=1e-4)


def body_hits(hits, expected):
    assert [h["doc_id"] for h in hits] == [h.doc_id for h in expected]
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected], abs=1e-4)


def test_concurrent_searches_equal_sequential_ones(index):
    cases = [(q, r) for q in QUERIES for r in REQUESTS]
    expected = [index.search(q, **r) for q, r in cases]
    service = SearchService(index, ServeConfig(search_threads=2, max_wait_ms=5))
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda c: service.search({"query": c[0], **c[1]}),
                                    cases * 2))  # fmt: skip
    finally:
        service.close()
    for answer, hits in zip(answers, expected * 2, strict=True):
        assert answer.status == 200, answer.body
        body_hits(answer.body["hits"], hits)


def test_batched_answers_equal_unbatched_ones(index):
    """Requests queued together are encoded in one pass and, where they ask the same,
    searched in one call; each gets the answer it gets alone."""
    batches: list[int] = []
    scheduler = Scheduler(lambda: index, max_batch=64, max_wait=0.5, observe=batches.append)
    jobs = []
    for n, query in enumerate(QUERIES):
        options = REQUESTS[n % 3]  # repeated requests: searched as one group
        request = SearchRequest.of(**options)
        jobs.append((scheduler.job([query], request=request), index.search(query, **options)))
    reranked = scheduler.job(["protein cell"], run=lambda ix, enc: (
        ix.rerank(["protein cell"], [["d1", "d5", "d9"]], encoded=enc), {}))  # fmt: skip
    try:
        for job, _ in jobs:
            scheduler.submit(job)
        scheduler.submit(reranked)
        for job, expected in jobs:
            hits, timings = scheduler.wait(job)
            same(hits[0], expected)
            assert timings["n_queries"] == 1 and timings["batch_queries"] == len(QUERIES) + 1
        same(scheduler.wait(reranked)[0][0], index.rerank("protein cell", ["d1", "d5", "d9"]))
    finally:
        scheduler.close()
    assert batches == [len(QUERIES) + 1]


def test_a_failing_request_in_a_batch_fails_alone(index):
    def fails(ix, encoded):
        raise InputError("no such thing", field="thing")

    scheduler = Scheduler(lambda: index, max_wait=0.3)
    good = scheduler.job(["river"], request=SearchRequest.of(k=3))
    bad = scheduler.job(["river"], run=fails)
    try:
        scheduler.submit(bad)
        scheduler.submit(good)
        same(scheduler.wait(good)[0][0], index.search("river", k=3))
        with pytest.raises(InputError, match="no such thing"):
            scheduler.wait(bad)
    finally:
        scheduler.close()


def blocker(scheduler, release: threading.Event, seconds: float = 30.0):
    """A job that holds the main lane's worker until `release` is set."""
    return scheduler.submit(scheduler.job(["x"], run=lambda ix, enc: (release.wait(seconds), {})))


def test_the_queue_is_bounded():
    scheduler = Scheduler(lambda: object(), max_queue=4, timeout=30)
    release = threading.Event()
    try:
        held = blocker(scheduler, release)
        while held.started_at is None:  # taken by the worker
            time.sleep(0.01)
        for _ in range(2):  # 4 queries wait
            scheduler.submit(scheduler.job(["a", "b"], run=lambda ix, enc: ("ok", {})))
        with pytest.raises(ServerBusyError, match="queue is full") as refused:
            scheduler.submit(scheduler.job(["c"], run=lambda ix, enc: ("ok", {})))
        assert refused.value.retry_after >= 1
    finally:
        release.set()
        scheduler.close()


def test_deadlines_free_the_queue_and_answer_504():
    scheduler = Scheduler(lambda: object(), timeout=0.3)
    release = threading.Event()
    try:
        held = blocker(scheduler, release)
        while held.started_at is None:  # its batch has left the queue
            time.sleep(0.01)
        queued = scheduler.submit(scheduler.job(["q"], run=lambda ix, enc: ("late", {})))
        with pytest.raises(DeadlineError):  # running past its deadline
            scheduler.wait(held)
        with pytest.raises(ServerBusyError, match="waited"):  # still queued: withdrawn
            scheduler.wait(queued)
        assert scheduler.queued == 0
    finally:
        release.set()
        scheduler.close()


def test_service_answers_503_and_504_past_the_deadline(index, monkeypatch):
    service = SearchService(index, ServeConfig(request_timeout=0.4, max_wait_ms=0))
    slow = index.search

    def search(*args, **kwargs):
        time.sleep(1.0)
        return slow(*args, **kwargs)

    monkeypatch.setattr(index, "search", search)
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(service.search, {"query": "river", "k": 2, "mode": "rerank"})
            time.sleep(0.1)
            second = pool.submit(service.search, {"query": "cell", "k": 2, "mode": "rerank"})
            late, queued = first.result(), second.result()
    finally:
        service.close()
    assert late.status == 504 and "within 0.4 s" in late.body["error"]
    assert queued.status == 503 and int(queued.headers["Retry-After"]) >= 1


def test_exact_is_refused_on_collections_over_the_limit(index):
    service = SearchService(index, ServeConfig(max_exact_documents=10))
    response = service.handle("GET", "/search?q=river&mode=exact")
    assert response.status == 400 and response.body["field"] == "mode"
    assert "10 documents" in response.body["error"]
    assert service.handle("GET", "/search?q=river&mode=e2e").status == 200
    service.close()


def test_exact_searches_have_a_lane_of_their_own(index):
    service = SearchService(index)
    release = threading.Event()
    try:
        held = service.scheduler.job(["x"], run=lambda ix, enc: (release.wait(30), {}),
                                     lane="exact")  # fmt: skip
        service.scheduler.submit(held)
        started = time.monotonic()
        assert service.search({"query": "river", "k": 3}).status == 200  # not behind it
        assert time.monotonic() - started < 20
    finally:
        release.set()
        service.close()


def test_timings_say_how_the_request_ran(index):
    service = SearchService(index)
    body = service.handle("POST", "/search", json.dumps({"queries": ["a b", "river"]})
                          .encode()).body  # fmt: skip
    service.close()
    timings = body["timings"]
    assert timings["n_queries"] == 2 and timings["batch_queries"] >= 2
    assert timings["queued"] >= 0


def test_work_that_could_only_time_out_is_refused_at_once():
    scheduler = Scheduler(lambda: object(), timeout=1.0)
    release = threading.Event()
    try:
        held = blocker(scheduler, release)
        while held.started_at is None:
            time.sleep(0.01)
        scheduler.lanes["main"].rate = 2.0  # queries per second, as if measured
        scheduler.submit(scheduler.job(["a", "b", "c"], run=lambda ix, enc: ("ok", {})))  # 1.5 s
        with pytest.raises(ServerBusyError, match="past the 1 s deadline") as refused:
            scheduler.submit(scheduler.job(["c"], run=lambda ix, enc: ("ok", {})))
        assert refused.value.retry_after == 2
    finally:
        release.set()
        scheduler.close()


def test_a_queue_expected_to_wait_too_long_refuses_at_once():
    """The queries queued at the lane's measured rate bound what is admitted."""
    scheduler = Scheduler(lambda: object(), max_queue_wait=1.0, timeout=30)
    release = threading.Event()
    try:
        held = blocker(scheduler, release)
        while held.started_at is None:
            time.sleep(0.01)
        time.sleep(0.3)  # the batch running is expected to have ended (1 query at 4/s)
        scheduler.lanes["main"].rate = 4.0  # queries per second, as if measured
        for _ in range(5):  # 0, 1, ..., 4 queries ahead: at most 1 s
            scheduler.submit(scheduler.job(["a"], run=lambda ix, enc: ("ok", {})))
        with pytest.raises(ServerBusyError, match="past the 1 s limit") as refused:
            scheduler.submit(scheduler.job(["b"], run=lambda ix, enc: ("ok", {})))
        assert refused.value.retry_after == 2  # 5 queries at 4 per second
    finally:
        release.set()
        scheduler.close()


def test_the_oldest_queued_request_bounds_the_wait_before_a_rate_is_measured():
    scheduler = Scheduler(lambda: object(), max_queue_wait=0.2, timeout=30)
    release = threading.Event()
    try:
        held = blocker(scheduler, release)
        while held.started_at is None:
            time.sleep(0.01)
        assert scheduler.lanes["main"].rate == 0  # nothing measured yet
        scheduler.submit(scheduler.job(["a"], run=lambda ix, enc: ("ok", {})))
        scheduler.submit(scheduler.job(["b"], run=lambda ix, enc: ("ok", {})))  # 0 s so far
        time.sleep(0.3)
        with pytest.raises(ServerBusyError, match="past the 0.2 s limit"):
            scheduler.submit(scheduler.job(["c"], run=lambda ix, enc: ("ok", {})))
    finally:
        release.set()
        scheduler.close()


def test_admitted_requests_wait_about_the_bound_under_overload():
    """32 clients sending back to back to a fake engine answering 20 queries a second:
    unbounded, each would wait ~1.6 s in the queue; with a 0.25 s bound the rest are
    refused and what is admitted waits about the bound."""
    scheduler = Scheduler(lambda: object(), max_batch=1, max_wait=0, max_queue=1000,
                          max_queue_wait=0.25, timeout=30)  # fmt: skip
    waits: list[float] = []
    refused = []
    stop = time.monotonic() + 3.5

    def slow(ix, enc):
        time.sleep(0.05)
        return "ok", {}

    def client() -> None:
        while time.monotonic() < stop:
            try:
                job = scheduler.submit(scheduler.job(["q"], run=slow))
                scheduler.wait(job)
            except ServerBusyError:  # at once, or when taken
                refused.append(1)
                time.sleep(0.02)
                continue
            waits.append(job.started_at - job.queued_at)

    try:
        scheduler.wait(scheduler.submit(scheduler.job(["q"], run=slow)))  # a rate measured
        threads = [threading.Thread(target=client) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        scheduler.close()
    assert refused and waits
    assert max(waits) <= 0.25  # past it when taken: refused then
    assert len(waits) >= 40  # about the capacity answered (20 a second for 3.5 s)


def test_the_queue_wait_bound_is_configured():
    assert ServeConfig().max_queue_wait_ms > 0
    with pytest.raises(Exception, match="max_queue_wait_ms"):
        ServeConfig(max_queue_wait_ms=0)
    scheduler = Scheduler(lambda: object(), max_queue_wait=None, timeout=3.0)
    assert scheduler.max_queue_wait == 3.0  # none given: the deadline
    scheduler.close()


def test_a_request_that_waited_past_the_bound_is_refused_when_taken():
    scheduler = Scheduler(lambda: object(), max_queue_wait=0.2, timeout=30)
    release = threading.Event()
    try:
        held = blocker(scheduler, release)
        while held.started_at is None:
            time.sleep(0.01)
        late = scheduler.submit(scheduler.job(["a"], run=lambda ix, enc: ("ok", {})))
        time.sleep(0.3)
        release.set()
        with pytest.raises(ServerBusyError, match="past the 0.2 s limit"):
            scheduler.wait(late)
        fresh = scheduler.submit(scheduler.job(["b"], run=lambda ix, enc: ("ok", {})))
        assert scheduler.wait(fresh)[0] == "ok"
    finally:
        release.set()
        scheduler.close()


def test_a_server_over_its_bound_refuses_searches_before_reading_them(index):
    """While the queue is over its bound, GET /search and POST /rerank get the 503 at
    once, as a POST /search does from its scheduler; /health still answers."""
    import httpx

    from latesearch.serving import RunningServer

    service = SearchService(index, ServeConfig(max_queue_wait_ms=200, request_timeout=30))
    release = threading.Event()
    try:
        with RunningServer(service, port=0, quiet=True) as server:
            held = blocker(service.scheduler, release)
            while held.started_at is None:
                time.sleep(0.01)
            service.scheduler.submit(service.scheduler.job(["x"], run=lambda ix, e: ("", {})))
            time.sleep(0.3)  # the request queued has waited past the bound
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for method, path, body in [
                    ("GET", "/search?q=river&k=3", None),
                    ("POST", "/rerank", {"query": "river", "candidates": ["d1"]}),
                    ("POST", "/search", {"query": "river"}),
                    ("GET", f"/indexes/{service.name}/search?q=river", None),
                ]:
                    response = client.request(method, path, json=body)
                    assert response.status_code == 503, (path, response.text)
                    assert "past the 0.2 s limit" in response.json()["error"]
                    assert int(response.headers["Retry-After"]) >= 1
                    assert response.headers["X-Request-ID"]
                assert client.get("/health").status_code == 200
                release.set()
                time.sleep(0.5)
                assert client.get("/search?q=river&k=3").status_code == 200
    finally:
        release.set()
        service.close()
