"""One calibration over a sharded index's merged hits: fitted by `calibrate` and kept beside
`shards.json`, or the default model's shipped one; `relevance` and `min_relevance` of the
merged hits (Python, CLI, HTTP); `sync` of a folder into a sharded index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latesearch import ShardedIndex
from latesearch.cli.main import main
from latesearch.errors import InputError
from latesearch.indexing.components.calibration import Calibration

QUERIES = {"q1": "late interaction search", "q2": "protein cell study", "q3": "cat dog house",
           "q4": "music of the city", "q5": "river tree data"}  # fmt: skip


@pytest.fixture
def sharded(tmp_path, tiny_colbert, kit):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl")
    return ShardedIndex.build(corpus, tmp_path / "sharded", tiny_colbert, n_shards=3,
                              bm25=True, progress=False, **kit.SETTINGS)  # fmt: skip


def test_calibrate_fits_the_merged_hits_and_keeps_it_beside_the_shards(sharded, capsys):
    assert sharded.calibration is None and sharded.describe()["calibration"] is None
    with pytest.raises(InputError, match="calibrate"):
        sharded.search(QUERIES["q1"], min_relevance=0.5)
    qrels = {q: {h.doc_id: 1 for h in sharded.search(t, k=3, mode="exact")}
             for q, t in QUERIES.items()}  # fmt: skip
    fitted = sharded.calibrate(QUERIES, qrels, mode="exact", depth=20)
    assert (fitted.queries, fitted.pairs, fitted.positives) == (5, 100, 15)
    assert Calibration.load(sharded.folder / "calibration") == fitted
    every = sharded.search(QUERIES["q2"], k=20, mode="exact")
    for hit in every:
        assert hit.calibration == "index"
        assert hit.relevance == pytest.approx(float(fitted.relevance([hit.bounded_score])[0]))
    cut = every[4].relevance
    kept = sharded.search(QUERIES["q2"], k=20, mode="exact", min_relevance=cut, explain=True)
    assert [h.doc_id for h in kept] == [h.doc_id for h in every if h.relevance >= cut]
    assert all(h.explanation.relevance == h.relevance for h in kept)
    reranked = sharded.rerank(QUERIES["q2"], [h.doc_id for h in every[:5]])
    assert all(h.calibration == "index" for h in reranked)
    with pytest.raises(InputError, match="min_relevance"):
        sharded.search(QUERIES["q2"], mode="hybrid", min_relevance=0.5)
    again = ShardedIndex.load(sharded.folder, sharded.model)
    assert again.calibration == fitted and again.describe()["calibration"]["source"] == "index"
    code = main(["search", str(sharded.folder), QUERIES["q2"], "--mode", "exact", "--json",
                 "-k", "20", "--min-relevance", str(cut), "--no-check-model"])  # fmt: skip
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert code == 0 and [h["doc_id"] for h in hits] == [h.doc_id for h in kept]


def test_calibrate_cli_on_a_sharded_index(sharded, tmp_path, capsys):
    qrels = {q: {h.doc_id: 1 for h in sharded.search(t, k=2, mode="exact")}
             for q, t in QUERIES.items()}  # fmt: skip
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    judged = tmp_path / "qrels.txt"
    judged.write_text("".join(f"{q} 0 {d} 1\n" for q, docs in qrels.items() for d in docs))
    code = main(["calibrate", str(sharded.folder), "--queries", str(queries), "--qrels",
                 str(judged), "--mode", "exact", "--depth", "10", "--no-check-model"])  # fmt: skip
    assert code == 0 and "5 queries, 50 hits, 10 relevant" in capsys.readouterr().out
    assert Calibration.load(sharded.folder / "calibration").depth == 10


def test_shards_of_the_shipped_model_use_its_calibration(sharded, shipped_for):
    shipped = shipped_for(sharded.manifest.model_fingerprint)
    sharded = ShardedIndex.load(sharded.folder, sharded.model)
    assert sharded.calibration == shipped and sharded.calibration_source == "shipped"
    hits = sharded.search(QUERIES["q1"], k=10, mode="exact")
    assert all(h.calibration == "shipped" for h in hits)
    expected = np.interp([h.bounded_score for h in hits], (0, 0.5, 1), (0, 0.4, 1))
    np.testing.assert_allclose([h.relevance for h in hits], expected, atol=1e-9)
    assert all(h.relevance is None for h in sharded.search(QUERIES["q1"], mode="hybrid"))
