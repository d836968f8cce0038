"""Several named indexes on one server: routes under /indexes/NAME answering as each
Index itself, the list, the default index of the routes without a name, unknown names."""

from __future__ import annotations

import http.client
import json

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from latesearch import Client  # noqa: E402
from latesearch.errors import InputError, NotFoundError  # noqa: E402
from latesearch.serving import RunningServer, ServeConfig  # noqa: E402
from latesearch.serving.catalog import Catalog  # noqa: E402

QUERY = "protein cell study"


@pytest.fixture(scope="module")
def code_index(tmp_path_factory, tiny_colbert):
    from latesearch import Index

    folder = tmp_path_factory.mktemp("code")
    rows = [{"_id": f"c{i}", "text": f"def function_{i}(x): return x * {i} data model"}
            for i in range(12)]  # fmt: skip
    (folder / "code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Index.build(folder / "code.jsonl", folder / "index", tiny_colbert, progress=False)


def served(catalog):
    return RunningServer(catalog, port=0, quiet=True)


def call(server, method, path, body=None):
    host, port = server.socket.getsockname()[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    answer = response.status, json.loads(response.read() or b"{}")
    conn.close()
    return answer


def ids(hits):
    return [h["doc_id"] if isinstance(h, dict) else h.doc_id for h in hits]


def test_each_index_answers_as_itself(index, code_index):
    catalog = Catalog(ServeConfig())
    catalog.add("docs", index)
    catalog.add("code", code_index)
    with served(catalog) as server:
        status, body = call(server, "GET", "/indexes")
        assert status == 200 and [row["name"] for row in body["indexes"]] == ["code", "docs"]
        docs = {row["name"]: row for row in body["indexes"]}
        assert docs["docs"]["documents"] == 30 and docs["code"]["documents"] == 12
        assert "e2e" in docs["docs"]["modes"] and docs["docs"]["version"]
        assert body["default"] is None
        for name, idx in (("docs", index), ("code", code_index)):
            status, body = call(server, "GET", f"/indexes/{name}/search?q=protein+cell&k=5")
            assert status == 200 and ids(body["hits"]) == ids(idx.search("protein cell", k=5))
            status, body = call(server, "POST", f"/indexes/{name}/search",
                                {"queries": [QUERY, "data"], "k": 3, "mode": "exact"})  # fmt: skip
            expected = idx.search([QUERY, "data"], k=3, mode="exact")
            assert [ids(r["hits"]) for r in body["results"]] == [ids(h) for h in expected]
            assert call(server, "GET", f"/indexes/{name}/health")[1]["documents"] == len(idx)
            assert call(server, "GET", f"/indexes/{name}")[1]["documents"] == len(idx)
        status, body = call(server, "GET", "/indexes/nope/search?q=x")
        assert status == 404 and "'code', 'docs'" in body["error"]
        status, body = call(server, "GET", "/search?q=x")  # no default among two
        assert status == 404 and "/indexes/NAME" in body["error"] and "'docs'" in body["error"]
        status, body = call(server, "POST", "/indexes/docs/documents", {"documents": []})
        assert status == 403  # writes need the API key, per index as before
        metrics = call_text(server, "/metrics")
        assert 'latesearch_index_documents{index="code"} 12.0' in metrics
        assert 'latesearch_search_seconds_count{index="docs",mode="exact"} 1.0' in metrics
    catalog.close()


def call_text(server, path):
    host, port = server.socket.getsockname()[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", path)
    text = conn.getresponse().read().decode()
    conn.close()
    return text


def test_default_index_and_the_client(index, code_index):
    catalog = Catalog(ServeConfig(), default="code")
    catalog.add("docs", index)
    catalog.add("code", code_index)
    with served(catalog) as server:
        assert ids(call(server, "GET", "/search?q=data+model&k=4")[1]["hits"]) == ids(
            code_index.search("data model", k=4))  # fmt: skip
        with Client(server.url, index="docs") as docs, Client(server.url) as plain:
            hits = docs.search(QUERY, k=5, mode="hybrid")
            assert ids(hits) == ids(index.search(QUERY, k=5, mode="hybrid"))
            assert docs.health()["documents"] == 30
            listed = plain.indexes()
            assert [row["name"] for row in listed] == ["code", "docs"]
            with pytest.raises(NotFoundError) as caught:
                Client(server.url, index="other").search("x")
            assert "'code', 'docs'" in str(caught.value) and caught.value.status == 404
    catalog.close()


def test_names_are_checked(index):
    catalog = Catalog(ServeConfig())
    catalog.add("docs", index)
    for bad in ("", "../x", ".hidden", "a/b", "x.building"):
        with pytest.raises(InputError):
            catalog.add(bad, index)
    with pytest.raises(InputError, match="served already"):
        catalog.add("docs", index)
    catalog.close()


def test_one_index_answers_the_routes_without_a_name(index):
    catalog = Catalog(ServeConfig())
    catalog.add("only", index)
    with served(catalog) as server:
        status, body = call(server, "GET", "/search?q=protein+cell&k=3")
        assert status == 200 and ids(body["hits"]) == ids(index.search("protein cell", k=3))
        assert call(server, "GET", "/indexes")[1]["default"] == "only"
    catalog.close()


def test_indexes_of_one_model_share_one_loaded_model(index, code_index, tmp_path):
    """Indexes opened from their folders (the model loaded from the manifests' source)
    load it once when model, config and device are the same; another model, or the
    same on another device setting, is loaded apart; answers are those of each alone."""
    from latesearch import Index
    from tests.conftest import write_tiny_bert

    other_model = write_tiny_bert(tmp_path / "other-bert", seed=1)
    other = Index.build([{"_id": "x1", "text": "protein cell study"},
                         {"_id": "x2", "text": "music river"}], tmp_path / "other",
                        other_model, progress=False)  # fmt: skip
    catalog = Catalog(ServeConfig(), metrics=False)
    try:
        for name, folder in [("docs", index.folder), ("code", code_index.folder),
                             ("docs2", index.folder), ("other", other.folder)]:  # fmt: skip
            catalog.add(name, Index.load(folder))
        catalog.add("cpu", Index.load(code_index.folder, device="cpu"))
        models = {name: catalog.get(name).index.model for name in catalog.services}
        assert models["docs"] is models["code"] is models["docs2"]
        assert models["other"] is not models["docs"] and models["cpu"] is not models["docs"]
        for name, folder in [("docs", index.folder), ("code", code_index.folder)]:
            body = catalog.get(name).handle("GET", f"/search?q={QUERY.replace(' ', '+')}&k=3")
            alone = Index.load(folder).search(QUERY, k=3)
            assert [h["doc_id"] for h in body.body["hits"]] == [h.doc_id for h in alone]
    finally:
        catalog.close()
