"""`latesearch evaluate` on a tiny index and on run files (graded judgements, subsets)."""

from __future__ import annotations

import json
import math
import random

import pytest

from latesearch.cli.main import main
from latesearch.data import read_trec_run
from latesearch.evaluation import evaluate_run

WORDS = "cell gene protein drug patient disease energy physics particle river city music".split()
METRICS = "nDCG@10 R@5 MRR@10"


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_bert_dir):
    """A 30-document BEIR folder (test and train qrels, one unjudged query) and its index."""
    from latesearch import ColBERT, Index

    root = tmp_path_factory.mktemp("beir")
    rng = random.Random(3)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as out:
        for i in range(30):
            text = " ".join(rng.choices(WORDS, k=rng.randint(4, 12)))
            out.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    queries = {f"q{i}": " ".join(rng.choices(WORDS, k=3)) for i in range(6)}
    with open(root / "queries.jsonl", "w", encoding="utf-8") as out:
        for qid, text in queries.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels").mkdir()
    test = "query-id\tcorpus-id\tscore\nq0\td1\t2\nq0\td2\t1\nq1\td3\t1\nq2\td4\t1\nq3\td5\t1\n"
    (root / "qrels" / "test.tsv").write_text(test, encoding="utf-8")
    train = "query-id\tcorpus-id\tscore\nq4\td1\t1\nq4\td4\t1\n"  # q0 and q2 not novel
    (root / "qrels" / "train.tsv").write_text(train, encoding="utf-8")
    (root / "queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in queries.items()))
    (root / "qrels.trec").write_text("q0 0 d1 2\nq0 0 d2 1\nq1 0 d3 1\nq2 0 d4 1\nq3 0 d5 1\n")
    model = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=16, doc_maxlen=24)
    index = Index.build(root / "corpus.jsonl", root / "index", model, bm25=True,
                        progress=False, precision=32)  # fmt: skip
    return {"root": root, "index": index, "queries": queries}


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_index_files_match_direct_search(data, capsys):
    root, index = data["root"], data["index"]
    out = _json(capsys, ["evaluate", str(root / "index"), "--queries", str(root / "queries.tsv"),
                         "--qrels", str(root / "qrels.trec"), "--mode", "exact", "-k", "10",
                         "--metrics", METRICS, "--json", "--quiet", "--per-query"])  # fmt: skip
    assert out["n_queries"] == 4 and out["n_unjudged_queries"] == 2  # q4, q5 unjudged
    assert out["searched_queries"] == 4
    judged = ["q0", "q1", "q2", "q3"]
    hits = index.search([data["queries"][q] for q in judged], k=10, mode="exact")
    run = {q: {h.doc_id: h.score for h in row} for q, row in zip(judged, hits, strict=True)}
    qrels = {"q0": {"d1": 2, "d2": 1}, "q1": {"d3": 1}, "q2": {"d4": 1}, "q3": {"d5": 1}}
    expected = evaluate_run(run, qrels, METRICS)
    assert out["aggregate"] == pytest.approx(expected.aggregate)
    assert set(out["per_query"]) == set(judged)


def test_beir_folder_run_file_and_novel_subset(data, capsys, tmp_path):
    root = data["root"]
    run_file = tmp_path / "run.trec"
    base = ["evaluate", str(root / "index"), "--queries", str(root), "--split", "test",
            "--mode", "bm25", "--metrics", METRICS, "--json", "--quiet"]  # fmt: skip
    full = _json(capsys, [*base, "--run", str(run_file)])
    assert full["n_queries"] == 4 and full["data"] == f"{root.name}/test"
    assert set(read_trec_run(run_file)) <= {"q0", "q1", "q2", "q3"}
    test_qrels = str(root / "qrels" / "test.tsv")
    rescored = _json(capsys, ["evaluate", "--run", str(run_file), "--qrels", test_qrels,
                              "--metrics", METRICS, "--json"])  # fmt: skip
    assert rescored["aggregate"] == pytest.approx(full["aggregate"])
    novel = _json(capsys, [*base, "--exclude-train-qrels", str(root / "qrels" / "train.tsv"),
                           "--per-query"])  # fmt: skip
    assert set(novel["per_query"]) == {"q1", "q3"}
    ids = tmp_path / "ids.txt"
    ids.write_text("q1\nq2\n")
    listed = _json(capsys, [*base, "--query-ids", str(ids), "--per-query"])
    assert set(listed["per_query"]) == {"q1", "q2"}


def test_run_file_graded_ndcg_and_unjudged(tmp_path, capsys):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("a 0 d1 2\na 0 d2 1\nb 0 d9 1\n")
    run = tmp_path / "run.trec"
    run.write_text("a Q0 d2 1 3.0 t\na Q0 d1 2 2.0 t\nb Q0 d3 1 1.0 t\nz Q0 d1 1 1.0 t\n")
    out = _json(capsys, ["evaluate", "--run", str(run), "--qrels", str(qrels),
                         "--metrics", "nDCG@10 MRR@10", "--json", "--per-query"])  # fmt: skip
    ideal = 2 + 1 / math.log2(3)
    assert out["per_query"]["a"]["nDCG@10"] == pytest.approx((1 + 2 / math.log2(3)) / ideal)
    assert out["per_query"]["b"]["nDCG@10"] == 0.0
    assert out["n_skipped_unjudged"] == 1 and out["n_queries"] == 2  # query z has no judgement


def test_text_output_and_errors(data, tmp_path, capsys):
    root = data["root"]
    argv = ["evaluate", str(root / "index"), "--queries", str(root), "--mode", "rerank",
            "--metrics", METRICS, "--quiet"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "| nDCG@10 | R@5 | MRR@10 | queries |" in captured.out
    assert main(["evaluate", str(root / "index"), "--queries", str(root / "queries.tsv")]) == 2
    assert "--qrels is needed" in capsys.readouterr().err
    assert main([*argv, "--metrics", "nDCG@x"]) == 2
    assert "nDCG@x" in capsys.readouterr().err
    assert main(["evaluate", "--qrels", str(root / "qrels.trec")]) == 2
    assert main(["evaluate", str(root / "index"), "--queries", str(root), "--split", "dev"]) == 2
    assert "split 'dev'" in capsys.readouterr().err


def test_k_follows_the_metrics_and_the_bar_moves_in_small_batches(data, capsys):
    root = data["root"]
    base = ["evaluate", str(root / "index"), "--queries", str(root), "--mode", "exact",
            "--json", "--batch-size", "64"]  # fmt: skip
    assert main([*base, "--metrics", "nDCG@10 AP"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["k"] == 100 and out["batch_size"] == 16
    assert "query/s" in captured.err and "4/4" in captured.err  # rate and total: time left
    assert _json(capsys, [*base, "--metrics", "R@1000 nDCG@10", "--quiet"])["k"] == 1000
    assert _json(capsys, [*base, "--metrics", "R@1000", "-k", "5", "--quiet"])["k"] == 5
