"""`latesearch.Client` / `AsyncClient` against a live server: every route, typed hits
equal to the index's own, errors as the library's classes, retries of a 429."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("fastapi")  # the server extra; CI installs it
httpx = pytest.importorskip("httpx")  # the client extra; CI installs it

from latesearch import AsyncClient, Client, SearchRequest  # noqa: E402
from latesearch.errors import AuthError, InputError, RateLimitError, ServerError  # noqa: E402
from latesearch.search.results import Hit, Hits  # noqa: E402
from latesearch.serving import RunningServer, SearchService, ServeConfig  # noqa: E402

KEY = "s3cret"
QUERIES = ["protein cell", "late interaction search", "music city river"]


@pytest.fixture(scope="module")
def server(index):
    service = SearchService(index, ServeConfig(max_k=50))
    with RunningServer(service, port=0, quiet=True) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with Client(server.url) as client:
        yield client


def same(hits, expected):
    assert isinstance(hits, Hits) and all(isinstance(h, Hit) for h in hits)
    assert [(h.doc_id, h.rank) for h in hits] == [(h.doc_id, h.rank) for h in expected]
    assert [h.score for h in hits] == pytest.approx([h.score for h in expected], abs=1e-5)


@pytest.mark.parametrize("mode", ["e2e", "rerank", "exact", "hybrid"])
def test_search_answers_what_the_index_answers(client, index, mode):
    same(client.search(QUERIES[0], k=5, mode=mode), index.search(QUERIES[0], k=5, mode=mode))
    batch = client.search(QUERIES, k=4, mode=mode)
    for hits, expected in zip(batch, index.search(QUERIES, k=4, mode=mode), strict=True):
        same(hits, expected)
    assert client.last_timings["n_queries"] == 3


def test_options_request_and_get(client, index):
    expected = index.search(QUERIES[1], k=3, mode="exact", return_text=True,
                            return_metadata=True)  # fmt: skip
    for hits in (
        client.search(QUERIES[1], k=3, mode="exact", return_text=True, return_metadata=True),
        client.search(QUERIES[1], request=SearchRequest.of(k=3, mode="exact", return_text=True,
                                                           return_metadata=True)),
        client.search(QUERIES[1], k=3, mode="exact", return_text=True, return_metadata=True,
                      get=True),
    ):  # fmt: skip
        same(hits, expected)
        assert [(h.title, h.text, h.metadata) for h in hits] == [
            (h.title, h.text, h.metadata) for h in expected]  # fmt: skip
    default = client.search(QUERIES[2], get=True)  # the server's default k and mode
    same(default, index.search(QUERIES[2], k=10, mode="e2e"))
    with pytest.raises(InputError) as caught:
        client.search("q", request=SearchRequest.of(centroid_score_threshold=0.3))
    assert caught.value.field == "centroid_score_threshold"


def test_rerank_and_health(client, index):
    hits = client.rerank(QUERIES[0], ["d3", "d7", "nope", "d1"], k=2, missing="skip")
    same(hits, index.rerank(QUERIES[0], ["d3", "d7", "d1"], k=2))
    assert hits.skipped == ["nope"]
    batch = client.rerank(QUERIES[:2], [["d1", "d2"], ["d5"]], return_text=True)
    assert [len(h) for h in batch] == [2, 1] and batch[1][0].text
    health = client.health()
    assert health["status"] == "ok" and health["documents"] == 30 and "exact" in health["modes"]


def test_errors_are_the_librarys(client, server):
    with pytest.raises(InputError) as caught:
        client.search("q", k=51)
    assert caught.value.field == "k" and "51" in str(caught.value)
    with pytest.raises(InputError) as caught:
        client.search("q", filter={"year": {"$regex": "x"}})
    assert caught.value.field == "filter.year.$regex"
    assert str(caught.value).count("filter.year.$regex") == 1
    with pytest.raises(InputError) as caught:
        client.search(["ok", " "])
    assert caught.value.field == "queries.1"
    with pytest.raises(InputError) as caught:
        client.rerank("q", ["nope"])
    assert caught.value.field == "candidates.0"
    with pytest.raises(AuthError) as caught:  # the server takes no writes
        client.delete(["d1"])
    assert caught.value.status == 403
    with pytest.raises(ServerError) as caught:  # nothing listens there
        Client("http://127.0.0.1:9", timeout=5).health()
    assert caught.value.status is None
    with pytest.raises(InputError):
        Client("localhost:8893")


def test_writes_by_id_and_by_filter(tmp_path_factory, tiny_colbert):
    from .conftest import build

    index = build(tmp_path_factory, tiny_colbert, "client-writes", bm25=True)
    service = SearchService(index, ServeConfig(max_documents=33), api_key=KEY)
    new = [{"id": f"n{i}", "text": "protein folding cell", "metadata": {"lang": "xx",
            "year": 2020 + i}} for i in range(3)]  # fmt: skip
    with RunningServer(service, port=0, quiet=True) as server:
        with pytest.raises(AuthError) as caught:
            Client(server.url, api_key="wrong").add(new)
        assert caught.value.status == 401
        client = Client(server.url, api_key=KEY)
        result = client.add(new)
        assert result.added == 3 and result.documents == 33
        with pytest.raises(InputError) as caught:  # ServeConfig.max_documents
            client.add([{"id": "n9", "text": "one too many"}])
        assert caught.value.field == "documents" and "33" in str(caught.value)
        with pytest.raises(InputError) as caught:  # already held: add refuses
            client.add(new[:1])
        assert "n0" in str(caught.value)
        assert client.add([{**new[0], "text": "music river"}], replace=True).replaced == 1
        hits = client.search("music", k=3, filter={"lang": "xx"}, return_metadata=True)
        assert {h.doc_id for h in hits} == {"n0", "n1", "n2"}
        with pytest.raises(InputError) as caught:
            client.delete(filter={"year": {"$gte": "x", "$foo": 1}})
        assert caught.value.field == "filter.year.$foo"
        with pytest.raises(InputError):
            client.delete(["d1"], filter={"lang": "xx"})
        result = client.delete(filter={"lang": "xx", "year": {"$gte": 2021}})
        assert result.deleted == 2 and result.documents == 31
        assert client.delete(filter={"lang": "nothing"}).deleted == 0
        with pytest.raises(InputError) as caught:
            client.delete(["d1", "gone"])
        assert caught.value.field == "ids.1"
        result = client.delete(["d1", "gone"], missing="skip")
        assert result.deleted == 1 and result.unknown == ["gone"] and result.documents == 30
        assert client.health()["documents"] == 30
        client.close()
    type(index).load(index.folder).verify()  # the version on disk now, re-hashed


def test_the_async_client_answers_as_the_sync_one(server, index):
    async def main():
        async with AsyncClient(server.url) as client:
            answers = await asyncio.gather(*(client.search(q, k=5, mode="exact")
                                              for q in QUERIES * 3))  # fmt: skip
            reranked = await client.rerank(QUERIES[0], ["d2", "d4"])
            health = await client.health()
            with pytest.raises(InputError):
                await client.search("q", k=0)
            return answers, reranked, health

    answers, reranked, health = asyncio.run(main())
    for query, hits in zip(QUERIES * 3, answers, strict=True):
        same(hits, index.search(query, k=5, mode="exact"))
    same(reranked, index.rerank(QUERIES[0], ["d2", "d4"]))
    assert health["documents"] == 30


def test_retries_follow_retry_after_then_give_up():
    calls = []

    def answer(request):
        calls.append(request.url.path)
        if len(calls) <= 2:
            return httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"status": "ok"})

    client = Client("http://server", retries=2, transport=httpx.MockTransport(answer),
                    index="docs")  # fmt: skip
    assert client.health() == {"status": "ok"}
    assert calls == ["/indexes/docs/health"] * 3
    calls.clear()
    client = Client("http://server", retries=1, transport=httpx.MockTransport(answer))
    with pytest.raises(RateLimitError) as caught:
        client.health()
    assert caught.value.status == 429 and caught.value.retry_after == 0 and len(calls) == 2


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [(503, "ServerBusyError", 3.0), (504, "DeadlineError", None), (500, "ServerError", None)],
)
def test_server_side_refusals_map_to_their_errors(status, error, retry_after):
    import latesearch.errors as errors

    headers = {"Retry-After": "3"} if retry_after else {}
    answer = httpx.Response(status, json={"error": "busy"}, headers=headers)
    client = Client("http://server", transport=httpx.MockTransport(lambda request: answer))
    with pytest.raises(ServerError) as caught:
        client.health()
    assert type(caught.value) is getattr(errors, error)
    assert caught.value.status == status and caught.value.retry_after == retry_after
