"""`SearchService`: routing, validation and answers, without a network."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pydantic")  # requests are validated by pydantic models (server extra)
from latesearch.errors import ConfigError, InputError  # noqa: E402
from latesearch.indexing.components import MissingComponentError  # noqa: E402
from latesearch.search.request import SearchRequest  # noqa: E402
from latesearch.serving import SearchService, ServeConfig  # noqa: E402

QUERY = "late interaction search"


def post(service, path, data):
    return service.handle("POST", path, json.dumps(data).encode("utf-8"))


def same_hits(body_hits, hits):
    assert [h["doc_id"] for h in body_hits] == [h.doc_id for h in hits]
    assert [h["rank"] for h in body_hits] == [h.rank for h in hits]
    assert [h["score"] for h in body_hits] == pytest.approx([h.score for h in hits], abs=1e-5)


def test_health(index):
    response = SearchService(index).handle("GET", "/health")
    assert response.status == 200
    body = response.body
    assert body["status"] == "ok" and body["documents"] == 30
    assert body["embeddings"] == index.store.n_embeddings
    assert set(body["modes"]) == {"exact", "rerank", "e2e", "hybrid"}
    assert body["index"] == str(index.folder)


def test_health_lists_only_the_modes_the_index_can_serve(bare_index):
    body = SearchService(bare_index).handle("GET", "/health/").body
    assert body["modes"] == ["exact"] and body["components"] == []


@pytest.mark.parametrize("mode", ["e2e", "rerank", "exact"])
def test_get_search_matches_index_search(index, mode):
    response = SearchService(index).handle("GET", f"/search?q={QUERY.replace(' ', '+')}&k=5"
                                                  f"&mode={mode}")  # fmt: skip
    assert response.status == 200, response.body
    body = response.body
    assert body["query"] == QUERY and body["mode"] == mode and body["k"] == 5
    same_hits(body["hits"], index.search(QUERY, k=5, mode=mode))
    assert body["timings"]["mode"] == mode and body["timings"]["n_queries"] == 1
    assert "text" not in body["hits"][0]


def test_get_search_defaults_and_text(index):
    config = ServeConfig(default_k=3, default_mode="exact")
    body = SearchService(index, config).handle("GET", "/search?q=protein%20cell&text=true").body
    assert body["mode"] == "exact" and len(body["hits"]) == 3
    expected = index.search("protein cell", k=3, mode="exact", return_text=True)
    assert body["hits"] == [h.to_dict() for h in expected]


def test_post_search_batch(index):
    queries = [QUERY, "music city", "protein cell study"]
    response = post(SearchService(index), "/search", {"queries": queries, "k": 4, "mode": "rerank"})
    assert response.status == 200
    results = response.body["results"]
    assert [r["query"] for r in results] == queries
    for row, hits in zip(results, index.search(queries, k=4, mode="rerank"), strict=True):
        same_hits(row["hits"], hits)
    assert response.body["timings"]["n_queries"] == 3


def test_post_search_single_with_options(index):
    data = {"query": QUERY, "k": 2, "k_prime": 4, "nprobe": 1, "return_text": True}
    body = post(SearchService(index), "/search", data).body
    same_hits(body["hits"], index.search(QUERY, k=2, k_prime=4, nprobe=1))
    assert body["hits"][0]["title"].startswith("title ")


def test_rerank_single_and_batch(index):
    service = SearchService(index)
    body = post(service, "/rerank", {"query": QUERY, "candidates": ["d3", "d1", "d7", "nope"],
                                     "missing": "skip"}).body  # fmt: skip
    expected = index.rerank(QUERY, ["d3", "d1", "d7", "nope"], missing="skip")
    same_hits(body["hits"], expected)
    assert body["skipped"] == ["nope"] and body["query"] == QUERY
    data = {"queries": [QUERY, "music"], "candidates": [["d1", "d2"], ["d5"]], "k": 1}
    body = post(service, "/rerank", data).body
    assert [len(r["hits"]) for r in body["results"]] == [1, 1]
    assert body["results"][1]["hits"][0]["doc_id"] == "d5"


@pytest.mark.parametrize(("data", "field"), [
    ({"query": QUERY, "candidates": ["zz9"]}, "candidates.0"),
    ({"query": QUERY, "candidates": ["d1", "d2", "zz9", "zz8"]}, "candidates.2"),
    ({"queries": [QUERY, "x"], "candidates": [["d1"], ["d2", "zz9"]]}, "candidates.1.1"),
])  # fmt: skip
def test_rerank_unknown_id_is_a_400_naming_it_and_its_place(index, data, field):
    response = post(SearchService(index), "/rerank", data)
    assert response.status == 400 and "zz9" in response.body["error"]
    assert response.body["field"] == field


@pytest.mark.parametrize(
    ("target", "field", "words"),
    [
        ("/search", "q", "required"),
        ("/search?q=", "query", "empty"),
        ("/search?q=x&k=0", "k", "greater than or equal to 1"),
        ("/search?q=x&k=ten", "k", "integer"),
        ("/search?q=x&k=1001", "k", "limit is 1000"),
        ("/search?q=x&bm25_k=10001", "bm25_k", "limit is 10000"),
        ("/search?q=x&mode=fast", "mode", "'e2e'"),
        ("/search?q=x&text=maybe", "text", "boolean"),
        ("/search?q=x&hybrid_weight=2", "hybrid_weight", "less than or equal to 1"),
        ("/search?q=x&filter=%7Bx", "filter", "not valid JSON"),
        ("/search?q=x&kk=3", "kk", "unknown field 'kk'"),
        ("/search?q=x&return_text=1", "return_text", "unknown"),
        ("/search?q=x&q=y", "q", "more than once"),
        ("/search?q=x&&k=2", "url", "malformed"),
    ],
)
def test_bad_url_parameters_are_400s_naming_the_field(index, target, field, words):
    response = SearchService(index).handle("GET", target)
    assert response.status == 400
    assert response.body["field"] == field and words in response.body["error"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"", "body", "JSON object body"),
        (b"{not json", "body", "not valid JSON"),
        (b"[1, 2]", "body", "got list"),
        (b"\xff\xfe", "body", "UTF-8"),
        (b'{"query": "a", "queries": ["b"]}', "query", "either"),
        (b'{"queries": []}', "queries", "non-empty"),
        (b'{"queries": ["a", 3]}', "queries.1", "string"),
        (b'{"queries": ["a", " "]}', "queries.1", "empty"),
        (b'{"query": "a", "k": true}', "k", "integer"),
        (b'{"query": "a", "k": 2.0}', "k", "integer"),
        (b'{"query": "a", "k": "3"}', "k", "integer"),
        (b'{"query": "a", "k": 1001}', "k", "limit is 1000"),
        (b'{"query": "a", "ndocs": 10001}', "ndocs", "limit is 10000"),
        (b'{"query": "a", "return_text": "yes"}', "return_text", "boolean"),
        (b'{"query": "a", "mode": "fast"}', "mode", "'e2e'"),
        (b'{"query": "a", "filter": [1]}', "filter", "dictionary"),
        (b'{"query": "a", "filter": {"x": {"$regex": "y"}}}', "filter.x.$regex", "operator"),
        (b'{"query": "a", "size": 3}', "size", "unknown field 'size'"),
        (b'{"query": "a", "centroid_score_threshold": 0.4}', "centroid_score_threshold",
         "unknown field"),
        pytest.param(b'{"query": "a", "filter": ' + b'{"$not": ' * 200 + b'{"a": 1}' + b"}" * 201,
                     "filter", "nests", id="deep-filter"),
        pytest.param(b"[" * 100_000, "body", "nests", id="deep-body"),
    ],
)
def test_bad_search_bodies_are_400s_naming_the_field(index, body, field, words):
    response = SearchService(index).handle("POST", "/search", body)
    assert response.status == 400
    assert response.body["field"] == field and words in response.body["error"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"query": "a"}, "candidates"),
        ({"query": "a", "candidates": "d1"}, "candidates"),
        ({"query": "a", "candidates": ["d1", 2]}, "candidates"),
        ({"queries": ["a", "b"], "candidates": [["d1"]]}, "candidates"),
        ({"query": "a", "candidates": ["d1"], "missing": "ignore"}, "missing"),
        ({"query": "a", "candidates": ["d1"], "k": 0}, "k"),
        ({"query": "a", "candidates": ["d1"], "k": 1001}, "k"),
        ({"query": "a", "candidates": [["d1"]]}, "candidates"),
        ({"queries": ["a"], "candidates": [["d1", 3]]}, "candidates"),
        ({"query": "a", "candidates": ["d1"], "filter": {"x": {"$regex": "y"}}},
         "filter.x.$regex"),
        ({"query": "a", "candidates": ["d1"], "top": 3}, "top"),
    ],
)
def test_bad_rerank_bodies_are_400s(index, data, field):
    response = post(SearchService(index), "/rerank", data)
    assert response.status == 400 and response.body["field"] == field


@pytest.mark.parametrize(
    ("data", "delete", "field"),
    [
        ({"documents": []}, False, "documents"),
        ({"documents": [{"id": "x"}]}, False, "documents.0.text"),
        ({"documents": [{"id": " ", "text": "t"}]}, False, "documents.0.id"),
        ({"documents": [{"id": "x", "text": "t", "size": 1}]}, False, "documents.0.size"),
        ({"documents": [{"id": f"n{i}", "text": "t"} for i in range(3)]}, False, "documents"),
        ({"ids": []}, True, "ids"),
        ({"ids": [1]}, True, "ids.0"),
        ({"ids": ["a", "b", "c"]}, True, "ids"),
        ({"ids": ["a"], "missing": "ignore"}, True, "missing"),
    ],
)
def test_bad_write_bodies_are_400s_before_any_update(index, data, delete, field):
    service = SearchService(index, ServeConfig(max_write_documents=2), api_key="key")
    response = service.write(data, delete=delete, key="key")
    assert response.status == 400 and response.body["field"] == field
    assert len(service.index) == 30


def test_limits_from_the_config(index):
    service = SearchService(index, ServeConfig(max_queries=2, max_query_chars=10,
                                               max_candidates=2, max_k=5, default_k=5))  # fmt: skip
    assert post(service, "/search", {"queries": ["a", "b", "c"]}).body["field"] == "queries"
    assert post(service, "/search", {"query": "x" * 11}).body["field"] == "query"
    assert post(service, "/rerank", {"query": "a", "candidates": ["d1", "d2", "d3"]}).status == 400
    batch = {"queries": ["a", "b"], "candidates": [["d1"], ["d1", "d2", "d3"]]}
    assert post(service, "/rerank", batch).body["field"] == "candidates.1"
    assert service.handle("GET", "/search?q=a&k=6").body["error"].endswith("limit is 5")


def test_unknown_path_and_wrong_method(index):
    service = SearchService(index)
    response = service.handle("GET", "/find?q=x")
    assert response.status == 404 and "/search" in response.body["error"]
    response = service.handle("GET", "/rerank")
    assert response.status == 405 and response.headers["Allow"] == "POST"
    response = service.handle("DELETE", "/search")
    assert response.status == 405 and response.headers["Allow"] == "GET, POST"
    assert service.handle("POST", "/search?k=3", b'{"query": "a"}').body["field"] == "url"


def test_a_mode_the_index_lacks_is_a_400_naming_mode(bare_index, index):
    service = SearchService(bare_index)
    response = service.handle("GET", "/search?q=music&mode=rerank")
    assert response.status == 400 and "bm25/" in response.body["error"]
    assert response.body["field"] == "mode"
    assert service.handle("GET", "/search?q=music&mode=exact").status == 200
    response = post(SearchService(index), "/search", {"query": "music", "mode": "dense"})
    assert response.status == 400 and response.body["field"] == "mode"


def test_the_request_is_the_librarys_with_the_servers_defaults():
    from latesearch.serving.parsing import search_from_json, search_from_url

    config = ServeConfig(default_k=7, default_mode="exact", batch_size=16)
    search = search_from_json({"queries": ["a", "b"], "mode": "hybrid", "fusion": "score",
                               "hybrid_weight": 1, "filter": {"year": 2020}}, config)  # fmt: skip
    assert search.queries == ["a", "b"] and not search.single
    assert search.request == SearchRequest.of(k=7, mode="hybrid", fusion="score",
                                              hybrid_weight=1.0, filter={"year": 2020},
                                              bm25_k=1000, batch_size=16)  # fmt: skip
    # null is "not given": the server's default, not the library's
    assert search_from_json({"query": "a", "k": None, "mode": None}, config).request.k == 7
    url = search_from_url("q=a&k=3&text=yes&meta=0&filter=%7B%22y%22%3A1%7D&ncells=2", config)
    assert url.single and url.queries == ["a"]
    assert url.request == SearchRequest.of(k=3, mode="exact", return_text=True, ncells=2,
                                           filter={"y": 1}, bm25_k=1000, batch_size=16)  # fmt: skip


def test_bm25_k_defaults_to_at_most_max_candidates():
    from latesearch.serving.parsing import search_from_json

    assert search_from_json({"query": "a"}, ServeConfig()).request.bm25.depth == 1000
    small = ServeConfig(max_candidates=50)
    assert search_from_json({"query": "a"}, small).request.bm25.depth == 50
    with pytest.raises(InputError, match="limit is 50"):
        search_from_json({"query": "a", "bm25_k": 51}, small)


def test_warm_up_fails_early_when_the_default_mode_cannot_be_served(bare_index, index):
    with pytest.raises(MissingComponentError, match="ann/"):
        SearchService(bare_index).warm_up()
    SearchService(bare_index, ServeConfig(default_mode="exact")).warm_up()
    SearchService(index).warm_up()


def test_an_unexpected_error_is_a_500_and_the_service_keeps_answering(index, monkeypatch):
    service = SearchService(index)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(index, "search", broken)
    response = service.handle("GET", "/search?q=music")
    assert response.status == 500 and "RuntimeError" in response.body["error"]
    assert "boom" not in response.body["error"]
    monkeypatch.undo()
    assert service.handle("GET", "/search?q=music").status == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"default_k": 0},
        {"max_k": 5, "default_k": 10},
        {"default_mode": "fast"},
        {"batch_size": True},
    ],  # fmt: skip
)
def test_serve_config_is_validated(fields):
    with pytest.raises(ConfigError):
        ServeConfig(**fields)


def test_serve_config_round_trips(tmp_path):
    config = ServeConfig(default_k=7, default_mode="exact")
    config.save(tmp_path / "serve.json")
    assert ServeConfig.load(tmp_path / "serve.json") == config
    (tmp_path / "bad.json").write_text('{"default_k": 7, "port": 1}')
    with pytest.raises(ConfigError, match="port"):
        ServeConfig.load(tmp_path / "bad.json")


def test_input_error_is_raised_for_direct_parsing():
    from latesearch.serving.parsing import search_from_json

    with pytest.raises(InputError, match="'k'"):
        search_from_json({"query": "a", "k": -1}, ServeConfig())


def test_a_lone_surrogate_is_a_400(index):
    response = post(SearchService(index), "/search", {"query": "\ud800 x"})
    assert response.status == 400 and response.body["field"] == "query"


def test_the_dense_view_modes_over_http(tmp_path_factory, tiny_colbert):
    from .conftest import build

    index = build(tmp_path_factory, tiny_colbert, "serve-dense", dense="pooled")
    service = SearchService(index)
    assert {"dense", "fused"} <= set(service.handle("GET", "/health").body["modes"])
    for data in ({"query": QUERY, "k": 3, "mode": "dense"},
                 {"query": QUERY, "k": 3, "mode": "fused", "fusion": "rrf",
                  "hybrid_weight": 0.7}):  # fmt: skip
        body = post(service, "/search", data).body
        options = {key: value for key, value in data.items() if key != "query"}
        same_hits(body["hits"], index.search(QUERY, **options))
    response = post(service, "/search", {"query": QUERY, "mode": "hybrid", "fusion": "zscore"})
    assert response.status == 400 and response.body["field"] == "fusion"


def test_bad_documents_written_are_400s_naming_the_json_path_and_leave_nothing(
    tmp_path_factory, tiny_colbert
):
    from .conftest import build

    index = build(tmp_path_factory, tiny_colbert, "bad-writes", nbits=None, ann=False)
    service = SearchService(index, api_key="key")
    before = sorted(index.folder.parent.iterdir())
    ok = {"id": "n1", "text": "fine"}
    cases = [
        ({"documents": [ok, {"id": "n2", "text": "bad \ud800"}]}, "documents.1.text"),
        ({"documents": [{"id": "n2", "text": "t", "title": "\udfff"}]}, "documents.0.title"),
        ({"documents": [{**ok, "metadata": {"k": ["\ud800"]}}]}, "documents.0.metadata"),
        ({"documents": [ok, {"id": "n1", "text": "again"}]}, "documents.1.id"),
        ({"documents": [ok, {"id": "d3", "text": "held"}]}, "documents.1.id"),
    ]
    response = service.write({"ids": ["d1", "gone"]}, delete=True, key="key")
    assert response.status == 400 and response.body["field"] == "ids.1"
    for upsert in (False, True):
        for data, field in cases[: 4 if upsert else 5]:  # PUT replaces d3
            response = service.write(data, delete=False, upsert=upsert, key="key")
            assert response.status == 400 and response.body["field"] == field, response.body
    assert sorted(index.folder.parent.iterdir()) == before  # no staging folder left
    assert len(index.reloaded()) == 30
