"""The HTTP server: real sockets on a free port, JSON in and out, concurrent clients."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from latesearch.serving import SearchService, ServeConfig, make_server


@pytest.fixture(scope="module")
def server(index):
    server = make_server(SearchService(index, ServeConfig(max_body_bytes=4096)), port=0,
                         quiet=True)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def get(server, path):
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


def post(server, path, data: bytes):
    request = urllib.request.Request(server.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_health_and_search_over_http(server, index):
    status, headers, body = get(server, "/health")
    assert status == 200 and body["documents"] == 30
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    status, _, body = get(server, "/search?q=protein%20cell&k=3&mode=exact")
    assert status == 200
    assert [h["doc_id"] for h in body["hits"]] == [
        h.doc_id for h in index.search("protein cell", k=3, mode="exact")
    ]


def test_post_and_errors_over_http(server):
    status, body = post(server, "/search", json.dumps({"queries": ["music", "data model"],
                                                       "k": 2}).encode())  # fmt: skip
    assert status == 200 and [len(r["hits"]) for r in body["results"]] == [2, 2]
    status, body = post(server, "/search", b"{oops")
    assert status == 400 and body["field"] == "body"
    status, headers, body = get(server, "/rerank")
    assert status == 405 and headers["Allow"] == "POST"
    status, _, body = get(server, "/nowhere")
    assert status == 404 and "error" in body


def test_unicode_queries_and_texts_travel_as_utf8(server):
    status, body = post(server, "/search", json.dumps({"query": "café protéine", "k": 1,
                                                       "return_text": True}).encode())  # fmt: skip
    assert status == 200 and body["query"] == "café protéine"


def test_oversized_and_unsized_bodies_are_refused(server):
    status, body = post(server, "/search", b'{"query": "' + b"a" * 5000 + b'"}')
    assert status == 413 and "limit is 4096" in body["error"]
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest("POST", "/search")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 411 and "Content-Length" in json.loads(response.read())["error"]
    conn.close()


def test_keep_alive_connection_answers_several_requests(server):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for query in ("music", "river city", "data"):
        conn.request("GET", f"/search?q={query.replace(' ', '+')}&k=2&mode=exact")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["query"] == query
    conn.close()


def test_concurrent_clients_get_the_answers_of_sequential_ones(server, index):
    queries = ["late interaction", "protein cell", "music city", "river data", "model of"] * 4
    expected = {q: [h.doc_id for h in index.search(q, k=5, mode="e2e")] for q in set(queries)}

    def ask(query):
        _, _, body = get(server, f"/search?q={query.replace(' ', '+')}&k=5")
        return query, [h["doc_id"] for h in body["hits"]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, queries))
    assert all(ids == expected[q] for q, ids in answers)
