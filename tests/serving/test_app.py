"""The HTTP server (FastAPI + uvicorn): real sockets on a free port, JSON in and out,
OpenAPI, API-key writes, concurrent clients."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")  # the server extra; CI installs it
from latesearch.serving import RunningServer, SearchService, ServeConfig  # noqa: E402

KEY = "s3cret"


@pytest.fixture(scope="module")
def server(index):
    service = SearchService(index, ServeConfig(max_body_bytes=4096))
    with RunningServer(service, port=0, quiet=True) as server:
        yield server


def address(server):
    return server.socket.getsockname()[:2]


def get(server, path):
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


def post(server, path, data: bytes, method="POST", headers=()):
    headers = {"Content-Type": "application/json", **dict(headers)}
    request = urllib.request.Request(server.url + path, data=data, method=method,
                                     headers=headers)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_health_and_search_over_http(server, index):
    status, headers, body = get(server, "/health")
    assert status == 200 and body["documents"] == 30
    assert headers["Content-Type"] == "application/json"
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
    bodies = {"/search?k=3": {"query": "x"}, "/rerank?k=3": {"query": "x", "candidates": []}}
    for path, data in bodies.items():  # a POST takes its options in the body only
        status, body = post(server, path, json.dumps(data).encode())
        assert status == 400 and body["field"] == "url"
    status, body = post(server, "/search", json.dumps({"query": "x", "k": "5"}).encode())
    assert status == 400 and body["field"] == "k"
    status, body = post(server, "/search", json.dumps({"query": "x", "top": 5}).encode())
    assert status == 400 and body["field"] == "top"
    status, body = post(server, "/search", json.dumps({"query": "x", "k": 5000}).encode())
    assert status == 400 and body["field"] == "k" and "limit is 1000" in body["error"]
    status, _, body = get(server, "/search?q=x&k=zero")
    assert status == 400 and body["field"] == "k"
    status, _, body = get(server, "/search?q=x&k=1001")
    assert status == 400 and body["field"] == "k" and "limit is 1000" in body["error"]
    status, _, body = get(server, "/search?q=x&kk=3")
    assert status == 400 and body["field"] == "kk" and "unknown" in body["error"]
    status, _, body = get(server, "/search?q=x&q=y")
    assert status == 400 and body["field"] == "q"
    status, _, body = get(server, "/search?k=3")
    assert status == 400 and body["field"] == "q"
    status, body = post(server, "/search", json.dumps({"queries": ["a", 3]}).encode())
    assert status == 400 and body["field"] == "queries.1"
    status, body = post(server, "/search", json.dumps({"query": "x", "mode": "dense"}).encode())
    assert status == 400 and body["field"] == "mode"  # the index has no dense view
    status, body = post(server, "/rerank", json.dumps({"query": "x", "candidates": [1]}).encode())
    assert status == 400 and body["field"] == "candidates"
    status, headers, body = get(server, "/rerank")
    assert status == 405 and headers["Allow"] == "POST"
    status, _, body = get(server, "/nowhere")
    assert status == 404 and "/nowhere" in body["error"]


def test_openapi_schema_and_docs(server):
    status, _, schema = get(server, "/openapi.json")
    assert status == 200 and schema["info"]["title"] == "latesearch"
    assert {"/health", "/search", "/rerank", "/documents", "/documents/delete"} <= set(
        schema["paths"]
    )
    assert "SearchBody" in schema["components"]["schemas"]
    with urllib.request.urlopen(server.url + "/docs", timeout=30) as response:
        assert response.status == 200 and b"swagger" in response.read().lower()


def test_the_openapi_search_fields_come_from_the_options_and_the_registry(server):
    from latesearch.search.fusion import FUSIONS
    from latesearch.search.modes import mode_names
    from latesearch.search.request import OPTIONS

    _, _, schema = get(server, "/openapi.json")
    http = [option for option in OPTIONS if option.http]
    body = schema["components"]["schemas"]["SearchBody"]["properties"]
    assert set(body) == {"query", "queries"} | {option.name for option in http}
    params = {p["name"]: p["schema"] for p in schema["paths"]["/search"]["get"]["parameters"]}
    assert set(params) == {"q"} | {option.url or option.name for option in http}

    def enum(field):
        return next(s["enum"] for s in field["anyOf"] if "enum" in s)

    assert enum(body["mode"]) == enum(params["mode"]) == list(mode_names())
    assert enum(body["fusion"]) == enum(params["fusion"]) == list(FUSIONS)
    assert all(body[o.name].get("description") for o in http)
    with urllib.request.urlopen(server.url + "/docs", timeout=30) as response:
        assert response.status == 200 and b"swagger" in response.read().lower()


def test_writes_are_refused_without_a_configured_key(server):
    status, body = post(server, "/documents/delete", json.dumps({"ids": ["d1"]}).encode())
    assert status == 403 and "--api-key" in body["error"]


def test_unicode_queries_and_texts_travel_as_utf8(server):
    status, body = post(server, "/search", json.dumps({"query": "café protéine", "k": 1,
                                                       "return_text": True}).encode())  # fmt: skip
    assert status == 200 and body["query"] == "café protéine"


def test_oversized_and_unsized_bodies_are_refused(server):
    status, body = post(server, "/search", b'{"query": "' + b"a" * 5000 + b'"}')
    assert status == 413 and "limit is 4096" in body["error"]
    conn = http.client.HTTPConnection(*address(server), timeout=30)
    conn.putrequest("POST", "/search")
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400 and json.loads(response.read())["field"] == "body"
    conn.close()


def test_keep_alive_connection_answers_several_requests(server):
    conn = http.client.HTTPConnection(*address(server), timeout=30)
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


def test_writes_with_the_api_key(tmp_path_factory, tiny_colbert):
    from .conftest import build

    index = build(tmp_path_factory, tiny_colbert, "writes", bm25=True)
    service = SearchService(index, api_key=KEY)
    auth = {"Authorization": f"Bearer {KEY}"}
    new = {"documents": [{"id": "n1", "title": "new", "text": "protein folding cell",
                          "metadata": {"lang": "xx", "year": 2024}}]}
    with RunningServer(service, port=0, quiet=True) as server:
        status, body = post(server, "/documents", json.dumps(new).encode())
        assert status == 401 and "API key" in body["error"]
        status, body = post(server, "/documents", json.dumps(new).encode(),
                            headers={"X-API-Key": "wrong"})  # fmt: skip
        assert status == 401
        status, body = post(server, "/documents", json.dumps(new).encode(), headers=auth)
        assert status == 200 and body["documents"] == 31 and body["summary"]["added"] == 1
        query = {"query": "cell", "k": 5, "filter": {"lang": "xx"}, "return_metadata": True}
        status, body = post(server, "/search", json.dumps(query).encode())
        assert status == 200 and [h["doc_id"] for h in body["hits"]] == ["n1"]
        assert body["hits"][0]["metadata"] == {"lang": "xx", "year": 2024}
        _, _, body = get(server, "/search?q=cell&k=5&meta=1&filter=%7B%22year%22%3A%7B%22%24gt"
                                 "%22%3A2000%7D%7D")  # fmt: skip
        assert [h["doc_id"] for h in body["hits"]] == ["n1"]
        query["filter"] = {"lang": {"$regex": "x"}}
        status, body = post(server, "/search", json.dumps(query).encode())
        assert status == 400 and body["field"] == "filter.lang.$regex"
        status, body = post(server, "/documents", json.dumps(new).encode(), headers=auth)
        assert status == 400 and "n1" in body["error"]  # already there: add refuses
        new["documents"][0]["text"] = "music river city"
        status, body = post(server, "/documents", json.dumps(new).encode(), method="PUT",
                            headers=auth)  # fmt: skip
        assert status == 200 and body["summary"]["replaced"] == 1 and body["documents"] == 31
        status, found = post(server, "/rerank", json.dumps(
            {"query": "music", "candidates": ["n1", "d3"], "return_text": True}).encode())
        assert status == 200
        assert {h["doc_id"]: h["text"] for h in found["hits"]}["n1"] == "music river city"
        status, body = post(server, "/documents/delete",
                            json.dumps({"ids": ["n1", "d0"]}).encode(), headers=auth)
        assert status == 200 and body["documents"] == 29
        status, body = post(server, "/documents/delete", json.dumps({"ids": ["n1"]}).encode(),
                            headers=auth)  # fmt: skip
        assert status == 400 and "n1" in body["error"]
        status, body = post(server, "/documents", json.dumps({"documents": [{"id": "x"}]})
                            .encode(), headers=auth)  # fmt: skip
        assert status == 400 and body["field"] == "documents.0.text"
        _, _, health = get(server, "/health")
        assert health["documents"] == 29


def test_responses_are_not_held_back_by_nagle(server):
    # accepted connections inherit TCP_NODELAY from the listening socket; without it a
    # keep-alive client waits for a delayed ACK (~40 ms) on every response
    assert server.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
