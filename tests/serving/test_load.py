"""A lean load test: concurrent clients over real sockets mixing searches and bad
requests while another `Index` publishes an update; no 5xx, no connection error, every
bad request a 4xx (tests/stress/load.py is the full-size run)."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

pytest.importorskip("fastapi")
from latesearch import Index  # noqa: E402
from latesearch.serving import RunningServer, SearchService  # noqa: E402

from .conftest import build  # noqa: E402

GOOD = [("GET", "/search?q=river+city&k=5", None),
        ("GET", "/search?q=protein&k=3&mode=rerank&text=1", None),
        ("POST", "/search", json.dumps({"queries": ["cell", "music data"], "k": 4}).encode()),
        ("POST", "/rerank", json.dumps({"query": "x", "candidates": ["d4", "d9"],
                                        "missing": "skip"}).encode()),
        ("POST", "/search", json.dumps({"query": "cell", "filter": {"n": {"$gte": 3}},
                                        "return_metadata": True}).encode())]  # fmt: skip
BAD = [("GET", "/search?q=x&k=0", None), ("POST", "/search", b"{oops"),
       ("POST", "/search", json.dumps({"query": 3}).encode()), ("GET", "/search", None),
       ("POST", "/documents/delete", json.dumps({"ids": ["d1"]}).encode()),
       ("POST", "/search", json.dumps({"query": "x", "filter": {"n": {"$gt": []}}}).encode())]


def test_concurrent_mixed_load_through_an_update(tmp_path_factory, tiny_colbert):
    index = build(tmp_path_factory, tiny_colbert, "load", bm25=True)
    service = SearchService(index)
    service.warm_up()
    results: list[tuple[bool, int]] = []
    failures: list[str] = []
    stop = threading.Event()
    with RunningServer(service, port=0, quiet=True) as server:
        host, port = server.socket.getsockname()[:2]

        def client(n: int) -> None:
            conn = http.client.HTTPConnection(host, port, timeout=60)
            i = n
            while not stop.is_set():
                bad = i % 3 == 0
                method, path, body = (BAD if bad else GOOD)[i % len(BAD if bad else GOOD)]
                try:
                    conn.request(method, path, body=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
                    response = conn.getresponse()
                    response.read()
                    results.append((bad, response.status))
                except (OSError, http.client.HTTPException) as err:
                    failures.append(repr(err))
                    conn.close()
                i += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        Index.load(index.folder, tiny_colbert).delete(["d1", "d2"])
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
    assert not failures
    assert len(results) > 30
    assert all(status == 200 for bad, status in results if not bad)
    assert all(400 <= status < 500 for bad, status in results if bad)
    assert service.health().body["documents"] == 28
