"""What a server tells its operator: /metrics in Prometheus's text format, a request id
in every answer's header and in its JSON access log line."""

from __future__ import annotations

import http.client
import json
import logging
import re
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")
from latesearch.serving import RunningServer, SearchService  # noqa: E402
from latesearch.serving.logs import ACCESS_LOGGER, JsonFormatter  # noqa: E402


def get(server, path, headers=None):
    host, port = server.socket.getsockname()[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response, body


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition `text`."""
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_metrics_count_requests_batches_and_the_index(index):
    service = SearchService(index)
    with RunningServer(service, port=0, quiet=True) as server:
        for _ in range(3):
            assert get(server, "/search?q=river+city&k=3")[0].status == 200
        assert get(server, "/search?q=river&mode=hybrid")[0].status == 200
        assert get(server, "/search?q=x&k=0")[0].status == 400
        response, text = get(server, "/metrics")
    service.close()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/plain")
    ok = {"route": "/search", "method": "GET"}
    assert sample(text, "latesearch_requests_total", status="200", **ok) == 4
    assert sample(text, "latesearch_requests_total", status="400", **ok) == 1
    assert sample(text, "latesearch_search_seconds_count", mode="e2e") == 3
    assert sample(text, "latesearch_search_seconds_count", mode="hybrid") == 1
    assert sample(text, "latesearch_batch_queries_count") >= 1
    assert sample(text, "latesearch_batch_queries_sum") == 4
    assert sample(text, "latesearch_queue_queries", lane="main") == 0
    assert sample(text, "latesearch_index_documents", index="index") == 30
    assert sample(text, "latesearch_index_generation", index="index") == 1
    assert sample(text, "latesearch_request_seconds_count", route="/search") == 5


def test_request_ids_in_headers_and_json_access_logs(index, caplog):
    service = SearchService(index)
    with RunningServer(service, port=0, quiet=True) as server:
        caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
        given, _ = get(server, "/search?q=cell", {"X-Request-ID": "client-42"})
        made, _ = get(server, "/health")
        odd, _ = get(server, "/search?q=cell", {"X-Request-ID": "no spaces allowed"})
    service.close()
    assert given.getheader("X-Request-ID") == "client-42"
    assert re.fullmatch(r"[0-9a-f]{32}", made.getheader("X-Request-ID"))
    assert re.fullmatch(r"[0-9a-f]{32}", odd.getheader("X-Request-ID"))
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
             if r.name == ACCESS_LOGGER]  # fmt: skip
    first = lines[0]
    assert first["request_id"] == "client-42" and first["status"] == 200
    assert first["path"] == "/search" and first["ms"] > 0 and first["level"] == "info"
    assert [line["request_id"] for line in lines[1:]] == [
        made.getheader("X-Request-ID"), odd.getheader("X-Request-ID")]  # fmt: skip


def test_an_overloaded_server_answers_503_with_retry_after_over_http(index):
    import threading

    service = SearchService(index)
    release = threading.Event()
    held = service.scheduler.job(["x"] * 300, run=lambda ix, enc: (release.wait(30), {}))
    service.scheduler.submit(held)  # the worker is busy ...
    while held.started_at is None:
        time.sleep(0.01)
    filler = service.scheduler.job(["y"] * service.config.max_queue, run=lambda ix, enc: (1, {}))
    service.scheduler.submit(filler)  # ... and the queue full
    try:
        with RunningServer(service, port=0, quiet=True) as server:
            response, body = get(server, "/search?q=river")
    finally:
        release.set()
        service.close()
    assert response.status == 503 and int(response.getheader("Retry-After")) >= 1
    assert "queue is full" in json.loads(body)["error"]
