"""`SearchRequest`: one validation of every search option, and the mode registry as the
only list of modes."""

from __future__ import annotations

import argparse

import pytest

from latesearch.errors import InputError, UnknownOptionError
from latesearch.search.modes import REGISTRY, SearchMode, get_mode, mode_names
from latesearch.search.request import (
    OPTIONS,
    BM25Options,
    EngineOptions,
    SearchLimits,
    SearchRequest,
)


def test_flat_options_land_in_their_groups():
    request = SearchRequest.of(k=5, mode="hybrid", ncells=2, ndocs=64, k_prime=8, nprobe=3,
                               bm25_k=50, fusion="score", hybrid_weight=0.25,
                               filter='{"lang": "en"}')  # fmt: skip
    assert request.engine == EngineOptions(ncells=2, ndocs=64)
    assert (request.ann.k_prime, request.ann.nprobe) == (8, 3)
    assert request.bm25 == BM25Options(depth=50)
    assert (request.fusion.method, request.fusion.weight) == ("score", 0.25)
    assert request.filter == {"lang": "en"}  # JSON text parsed once
    assert request.depth == 100  # each fused side: max(k, 100)
    assert SearchRequest.of(**request.flat()) == request


def test_defaults_and_none_mean_the_same():
    assert SearchRequest.of() == SearchRequest() == SearchRequest.of(k=None, mode=None,
                                                                     bm25_k=None)  # fmt: skip
    assert SearchRequest.of(mode="fused").fusion_method == "zscore"
    assert SearchRequest.of(mode="hybrid").fusion_method == "rrf"
    # a mode's default fusion is not carried into another mode
    assert SearchRequest.of(mode="fused").replace(mode="hybrid").fusion_method == "rrf"
    assert SearchRequest.of(mode="hybrid").replace(mode="fused").fusion_method == "zscore"


@pytest.mark.parametrize("options, field", [
    ({"k": 0}, "k"), ({"k": True}, "k"), ({"k": 2.0}, "k"), ({"bm25_k": -1}, "bm25_k"),
    ({"ncells": "3"}, "ncells"), ({"mode": "nope"}, "mode"),
    ({"hybrid_weight": 2}, "hybrid_weight"),
    ({"mode": "hybrid", "fusion": "zscore"}, "fusion"), ({"fusion": "max"}, "fusion"),
    ({"filter": {"year": {"$foo": 1}}}, "filter.year.$foo"), ({"filter": "{not json"}, "filter"),
    ({"filter": [1]}, "filter"), ({"source": "disk"}, "source"),
    ({"centroid_score_threshold": float("nan")}, "centroid_score_threshold"),
    ({"return_text": "yes"}, "return_text"), ({"batch_size": 0}, "batch_size"),
    ({"device": "gpu9"}, "device"), ({"bm25_statistics": 5}, "bm25_statistics"),
    ({"fusion_depth": 0}, "fusion_depth"),
])  # fmt: skip
def test_bad_options_name_their_field(options, field):
    with pytest.raises(InputError) as caught:
        SearchRequest.of(**options)
    assert caught.value.field == field


def test_unknown_options_are_type_errors_too():
    with pytest.raises(UnknownOptionError, match="bm25k") as caught:
        SearchRequest.of(bm25k=10)
    assert isinstance(caught.value, TypeError) and caught.value.field == "bm25k"


def test_limits_bound_k_and_depths():
    with pytest.raises(InputError, match="limit is 100000") as caught:
        SearchRequest.of(k=1_000_000_000)
    assert caught.value.field == "k"
    server = SearchLimits(max_k=1000, max_candidates=10_000)
    with pytest.raises(InputError) as caught:
        SearchRequest.of(limits=server, bm25_k=20_000)
    assert caught.value.field == "bm25_k"
    assert SearchRequest.of(limits=server, k=1000).k == 1000
    request = SearchRequest.of(limits=server, k=10)
    with pytest.raises(InputError):  # a replaced request is checked against its limits
        request.replace(k=1001)
    small = SearchRequest.of(limits=SearchLimits(max_k=50), k=5, mode="hybrid")
    side = small.inner(k=small.depth, mode="e2e")  # a fused side's depth is not the user's k
    assert (side.k, side.mode, side.filter) == (100, "e2e", small.filter)


def test_the_registry_is_the_only_list_of_modes():
    assert mode_names() == ("e2e", "rerank", "exact", "hybrid", "dense", "fused")
    assert all(isinstance(m, SearchMode) and m.name == name for name, m in REGISTRY.items())
    assert get_mode("hybrid").bm25_scored and get_mode("rerank").bm25_scored
    assert get_mode("dense").queries == "none" and get_mode("fused").queries == "both"
    with pytest.raises(InputError) as caught:
        get_mode("nope")
    assert caught.value.field == "mode"


def test_cli_choices_and_flags_come_from_the_registry_and_the_table():
    from latesearch.cli._options import CLI_OPTIONS, add_search_options, search_request
    from latesearch.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("search", "serve"):
        mode = next(a for a in sub.choices[command]._actions if a.dest == "mode")
        assert tuple(mode.choices) == mode_names()
    assert set(CLI_OPTIONS) <= {o.name for o in OPTIONS}
    mine = argparse.ArgumentParser()
    mine.add_argument("-k", type=int, default=10)
    mine.add_argument("--mode", default="e2e")
    add_search_options(mine)
    args = mine.parse_args(["-k", "7", "--ndocs", "99", "--t-cs", "0.3", "--bm25-k", "20"])
    request = search_request(args)
    assert (request.k, request.engine.ndocs, request.bm25.depth) == (7, 99, 20)
    assert request.engine.centroid_score_threshold == 0.3
    with pytest.raises(InputError):  # -k 1000000000: refused like any other request
        search_request(mine.parse_args(["-k", "1000000000"]))
