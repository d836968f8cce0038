"""Benchmark presets: finding the sets, and the per-set and mean rows."""

from __future__ import annotations

import pytest

from latesearch.errors import InputError
from latesearch.evaluation import evaluate_run
from latesearch.evaluation.presets import SetScore, benchmark_sets, get_preset, preset_rows


def _beir(folder):
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n')
    return folder


def test_sets_are_beir_folders_or_folders_of_them(tmp_path):
    a, b = _beir(tmp_path / "bench" / "NanoB"), _beir(tmp_path / "bench" / "NanoA")
    (tmp_path / "bench" / "notes").mkdir()
    c = _beir(tmp_path / "other" / "NanoC")
    assert benchmark_sets([tmp_path / "bench", c]) == [b, a, c]
    with pytest.raises(InputError, match="not a BEIR folder"):
        benchmark_sets([tmp_path / "bench" / "notes"])
    with pytest.raises(InputError, match="named alike"):
        benchmark_sets([a, _beir(tmp_path / "copy" / "NanoB")])
    with pytest.raises(InputError, match="unknown preset"):
        get_preset("miniBEIR")


def test_rows_are_per_set_then_the_unweighted_mean():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    perfect = evaluate_run({"q1": {"d1": 1.0}, "q2": {"d2": 1.0}}, qrels, "nDCG@10")
    half = evaluate_run({"q1": {"d1": 1.0}, "q2": {"d9": 1.0}}, qrels, "nDCG@10")
    one = evaluate_run({"q1": {"dx": 1.0}}, {"q1": {"d1": 1}}, "nDCG@10")
    rows = preset_rows([SetScore("A", 5, perfect), SetScore("B", 7, half),
                        SetScore("C", 1, one)], ["nDCG@10"])  # fmt: skip
    assert [r["set"] for r in rows] == ["A", "B", "C", "mean"]
    assert [r["nDCG@10"] for r in rows[:3]] == pytest.approx([1.0, 0.5, 0.0])
    assert rows[-1] == {"set": "mean", "nDCG@10": pytest.approx(0.5), "queries": 5,
                        "documents": 13}  # fmt: skip
