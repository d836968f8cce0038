"""Calibration: isotonic regression of relevance on bounded scores, kept with the index
(`calibration/`), hits' `relevance`, `min_relevance` cuts, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latesearch import Index
from latesearch.cli.main import main
from latesearch.errors import ConfigError, InputError
from latesearch.indexing.components.calibration import (
    Calibration,
    expected_calibration_error,
    shipped_calibration,
)

QUERIES = {"q1": "late interaction search", "q2": "protein cell study", "q3": "cat dog house",
           "q4": "music of the city", "q5": "energy physics particle"}  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-1, 1), st.booleans()), min_size=1, max_size=60))
def test_isotonic_fit_is_monotone_and_minimizes_squared_error(pairs):
    x = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs], dtype=float)
    fitted = Calibration.fit(x, y)
    grid = np.linspace(-1.2, 1.2, 97)
    assert np.all(np.diff(fitted.relevance(grid)) >= -1e-12)
    p = fitted.relevance(x)
    assert p.min() >= 0 and p.max() <= 1
    assert p.mean() == pytest.approx(y.mean())  # isotonic regression keeps the mean
    order = np.argsort(x, kind="stable")  # no monotone step function fits better
    for cut in range(len(x) + 1):
        if 0 < cut < len(x) and x[order[cut - 1]] == x[order[cut]]:
            continue  # equal scores get equal probabilities
        left, right = y[order[:cut]], y[order[cut:]]
        two_steps = np.concatenate(
            [
                np.full(left.size, left.mean() if left.size else 0),
                np.full(right.size, right.mean() if right.size else 0),
            ]
        )
        if left.size and right.size and left.mean() > right.mean():
            continue  # not monotone
        assert ((p[order] - y[order]) ** 2).sum() <= ((two_steps - y[order]) ** 2).sum() + 1e-9


def test_bad_calibrations_are_refused():
    with pytest.raises(ConfigError):
        Calibration((0.2, 0.1), (0.0, 1.0))
    with pytest.raises(ConfigError):
        Calibration((0.1, 0.2), (0.9, 0.1))
    assert expected_calibration_error([0.9, 0.1], [1, 0]) == pytest.approx(0.1)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, collection_path, tiny_colbert):
    """A fresh index calibrated with qrels that call each query's exact top 3 relevant."""
    folder = tmp_path_factory.mktemp("calibrated")
    index = Index.build(collection_path, folder / "ix", tiny_colbert, bm25=True,
                        progress=False)  # fmt: skip
    assert index.calibration is None
    qrels = {q: {h.doc_id: 1 for h in index.search(t, k=3, mode="exact")}
             for q, t in QUERIES.items()}  # fmt: skip
    fitted = index.calibrate(QUERIES, qrels, mode="exact", depth=20)
    return index, fitted, qrels


def test_calibrated_hits_carry_relevance(calibrated):
    index, fitted, _ = calibrated
    assert (fitted.queries, fitted.pairs, fitted.positives) == (5, 100, 15)
    assert index.calibration == fitted == Calibration.load(index.folder / "calibration")
    hits = index.search(QUERIES["q1"], k=20, mode="exact")
    relevance = [h.relevance for h in hits]
    assert all(0 <= r <= 1 for r in relevance)
    assert relevance == sorted(relevance, reverse=True)  # monotone in the score
    assert relevance[0] > relevance[-1]
    assert hits[0].to_dict()["relevance"] == relevance[0]
    assert all(h.relevance is None for h in index.search(QUERIES["q1"], mode="hybrid"))
    assert Index.load(index.folder, index.model).search(QUERIES["q1"], k=1)[0].relevance


def test_min_relevance_drops_the_tail(calibrated):
    index, _, _ = calibrated
    every = index.search(QUERIES["q2"], k=20, mode="exact")
    cut = every[4].relevance
    kept = index.search(QUERIES["q2"], k=20, mode="exact", min_relevance=cut, explain=True)
    assert [h.doc_id for h in kept] == [h.doc_id for h in every if h.relevance >= cut]
    assert all(h.explanation.doc_id == h.doc_id for h in kept)
    with pytest.raises(InputError, match="min_relevance"):
        index.search(QUERIES["q2"], mode="hybrid", min_relevance=0.5)
    with pytest.raises(InputError, match="min_relevance"):
        index.search(QUERIES["q2"], min_relevance=1.5)


def test_min_relevance_needs_a_calibration(tiny_index):
    with pytest.raises(InputError, match="calibrate"):
        tiny_index.search(QUERIES["q1"], min_relevance=0.5)


def test_updates_and_verify_keep_the_calibration(calibrated, tmp_path):
    index, fitted, _ = calibrated
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"_id": "new1", "text": "late interaction cat"}) + "\n")
    index.add(extra, progress=False)
    assert index.calibration == fitted
    index.delete(["new1"])
    assert index.calibration == fitted
    index.verify()


def test_calibrate_cli(calibrated, tmp_path, capsys):
    index, _, qrels = calibrated
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    judged = tmp_path / "qrels.txt"
    judged.write_text("".join(f"{q} 0 {d} 1\n" for q, docs in qrels.items() for d in docs))
    model = str(tmp_path / "model")
    index.model.save_pretrained(model)
    code = main(["calibrate", str(index.folder), "--queries", str(queries), "--qrels",
                 str(judged), "--mode", "exact", "--depth", "10", "--model", model])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "5 queries, 50 hits, 15 relevant" in out
    assert index.reloaded().calibration.depth == 10
    code = main(["search", str(index.folder), QUERIES["q1"], "--mode", "exact", "--json",
                 "--min-relevance", "0.5", "--model", model])  # fmt: skip
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert code == 0 and hits and all(h["relevance"] >= 0.5 for h in hits)


def test_an_index_of_another_model_gets_no_shipped_calibration(tiny_index):
    assert shipped_calibration() is not None  # the default model's, in the package
    assert tiny_index.calibration is None and tiny_index.calibration_source is None
    hit = tiny_index.search(QUERIES["q1"], k=1)[0]
    assert hit.relevance is None and "relevance" not in hit.to_dict()
    assert tiny_index.describe()["calibration"] is None


def test_indexes_of_the_shipped_model_use_its_calibration_until_they_fit_their_own(
    shipped_for, collection_path, tiny_colbert, tmp_path, capsys
):
    from latesearch.serving import SearchService

    index = Index.build(collection_path, tmp_path / "ix", tiny_colbert, progress=False)
    shipped = shipped_for(index.store.manifest.model_fingerprint)
    index = Index.load(index.folder, tiny_colbert)  # as an old index of that model loads
    assert index.calibration == shipped and index.calibration_source == "shipped"
    every = index.search(QUERIES["q1"], k=20, mode="exact")
    for hit in every:
        assert hit.calibration == "shipped"
        assert hit.relevance == pytest.approx(float(np.interp(hit.bounded_score, (0, 0.5, 1),
                                                                (0, 0.4, 1))))  # fmt: skip
    cut = every[3].relevance
    kept = index.search(QUERIES["q1"], k=20, mode="exact", min_relevance=cut, explain=True)
    assert [h.doc_id for h in kept] == [h.doc_id for h in every if h.relevance >= cut]
    explanation = kept[0].explanation
    assert explanation.calibration == "shipped"
    assert explanation.relevance == pytest.approx(kept[0].relevance, abs=1e-5)
    alone = index.explain(QUERIES["q1"], kept[0].doc_id, source="full")
    assert alone.relevance == pytest.approx(kept[0].relevance, abs=1e-5)
    assert index.describe()["calibration"] == {"source": "shipped", "mode": "e2e",
                                                "depth": 100, "queries": 7, "hits": 70,
                                                "fitted_on": "dev questions"}  # fmt: skip
    body = json.dumps({"query": QUERIES["q1"], "k": 20, "mode": "exact",
                       "min_relevance": cut}).encode()  # fmt: skip
    service = SearchService(index)
    answer = service.handle("POST", "/search", body).body
    assert [h["doc_id"] for h in answer["hits"]] == [h.doc_id for h in kept]
    assert service.handle("GET", "/health").body["calibration"]["source"] == "shipped"
    model = str(tmp_path / "model")
    tiny_colbert.save_pretrained(model)
    code = main(["search", str(index.folder), QUERIES["q1"], "--mode", "exact", "--json",
                 "--min-relevance", str(cut), "--model", model])  # fmt: skip
    assert code == 0
    assert [h["doc_id"] for h in json.loads(capsys.readouterr().out)["hits"]] == [
        h.doc_id for h in kept]  # fmt: skip

    qrels = {q: {h.doc_id: 1 for h in index.search(t, k=2, mode="exact")}
             for q, t in QUERIES.items()}  # fmt: skip
    own = index.calibrate(QUERIES, qrels, mode="exact", depth=10)  # the index's own wins
    assert own.model_fingerprint == index.store.manifest.model_fingerprint
    assert index.calibration == own and index.calibration_source == "index"
    hit = index.search(QUERIES["q1"], k=1, mode="exact")[0]
    assert hit.calibration == "index"
    assert hit.relevance == pytest.approx(float(own.relevance([hit.bounded_score])[0]))
    assert Index.load(index.folder, tiny_colbert).describe()["calibration"]["source"] == "index"


def test_a_fit_can_be_returned_without_keeping_it(calibrated):
    index, fitted, qrels = calibrated
    again = index.calibrate(QUERIES, qrels, mode="exact", depth=5, keep=False)
    assert again.depth == 5 and index.calibration == fitted
