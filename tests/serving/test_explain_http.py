"""`explain: true` over the service and the HTTP API: hits carry their explanation,
highlights and text, as `Index.search(..., explain=True)` returns them."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pydantic")
from latesearch.serving import SearchService  # noqa: E402

QUERY = "late interaction search"


def test_post_and_get_search_explain(index):
    service = SearchService(index)
    body = json.dumps({"query": QUERY, "k": 3, "mode": "exact", "explain": True}).encode()
    posted = service.handle("POST", "/search", body).body
    expected = index.search(QUERY, k=3, mode="exact", explain=True)
    assert posted["hits"] == json.loads(json.dumps([h.to_dict() for h in expected]))
    assert posted["hits"][0]["explanation"]["matches"][0]["kind"] == "special"
    got = service.handle("GET", f"/search?q={QUERY.replace(' ', '+')}&k=3&mode=exact"
                                "&explain=true").body  # fmt: skip
    assert got["hits"] == posted["hits"]
    plain = service.handle("GET", f"/search?q={QUERY.replace(' ', '+')}&k=3&mode=exact").body
    assert "explanation" not in plain["hits"][0] and "bounded_score" in plain["hits"][0]


def test_explain_must_be_a_boolean(index):
    body = json.dumps({"query": QUERY, "explain": "yes"}).encode()
    response = SearchService(index).handle("POST", "/search", body)
    assert response.status == 400 and response.body["field"] == "explain"


def test_min_relevance_over_http_needs_a_calibrated_index(index):
    service = SearchService(index)
    for cut, expected in ((0.5, "calibrate"), (1.5, "")):
        body = json.dumps({"query": QUERY, "min_relevance": cut}).encode()
        response = service.handle("POST", "/search", body)
        assert response.status == 400 and response.body["field"] == "min_relevance"
        assert expected in response.body["error"]
