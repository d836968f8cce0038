"""`latesearch compare` on small run files: table, JSON, subsets and clear errors."""

from __future__ import annotations

import json

import pytest

from latesearch.cli.main import main

QRELS = "q1 0 d1 1\nq2 0 d2 1\nq3 0 d3 1\nq4 0 d4 1\n"
TRAIN = "t1 0 d4 1\n"  # q4 is not novel


def trec(run: dict[str, list[str]], tag: str) -> str:
    return "".join(
        f"{q} Q0 {d} {r} {10 - r} {tag}\n" for q, docs in run.items() for r, d in enumerate(docs, 1)
    )


@pytest.fixture
def files(tmp_path):
    (tmp_path / "qrels.txt").write_text(QRELS)
    (tmp_path / "train.txt").write_text(TRAIN)
    good = {"q1": ["d1", "d9"], "q2": ["d2"], "q3": ["d3"], "q4": ["d9", "d4"]}
    poor = {"q1": ["d9", "d1"], "q2": ["d9"], "q3": ["d3"], "q4": ["d4"]}
    (tmp_path / "good.trec").write_text(trec(good, "good"))
    (tmp_path / "poor.trec").write_text(trec(poor, "poor"))
    return tmp_path


def test_table_against_the_first_run(files, capsys):
    code = main(
        [
            "compare",
            "--qrels",
            str(files / "qrels.txt"),
            str(files / "poor.trec"),
            f"best={files / 'good.trec'}",
            "--metrics",
            "RR@10 R@1",
            "--resamples",
            "500",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "(4 queries)" in out
    assert "| poor | RR@10 | 0.6250 | (baseline) |" in out
    # best: 1, 1, 1, 0.5 against poor's 0.5, 0, 1, 1 -> +0.25 on RR@10, wins 2 losses 1
    assert "| best | RR@10 | 0.8750 | +0.2500 |" in out
    assert "2/1" in out


def test_json_on_the_novel_subset(files, capsys):
    code = main(
        [
            "compare",
            "--qrels",
            str(files / "qrels.txt"),
            "--exclude-train-qrels",
            str(files / "train.txt"),
            str(files / "poor.trec"),
            str(files / "good.trec"),
            "--metrics",
            "RR@10",
            "--resamples",
            "500",
            "--baseline",
            "good",
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["baseline"] == "good" and data["n_queries"] == 3
    comparison = data["comparisons"]["poor"]["RR@10"]
    assert comparison["diff"] == pytest.approx((0.5 + 0 + 1) / 3 - 1)
    assert comparison["resamples"] == 500 and 0 < comparison["p_value"] <= 1


def test_errors_are_clear(files, capsys):
    qrels = str(files / "qrels.txt")
    assert (
        main(["compare", "--qrels", qrels, str(files / "poor.trec"), str(files / "poor.trec")]) == 2
    )
    assert "two runs are named 'poor'" in capsys.readouterr().err
    (files / "bad.trec").write_text("q1 Q0 d1 1 0.5 x\nq2 Q0 d2 one 0.4 x\n")
    assert (
        main(["compare", "--qrels", qrels, str(files / "poor.trec"), str(files / "bad.trec")]) == 2
    )
    assert f"{files / 'bad.trec'}:2" in capsys.readouterr().err
    assert (
        main(
            [
                "compare",
                "--qrels",
                qrels,
                str(files / "poor.trec"),
                str(files / "good.trec"),
                "--metrics",
                "nope@x",
            ]
        )
        == 2
    )
    assert "metric" in capsys.readouterr().err
