"""`latesearch evaluate --preset nanobeir`: several BEIR sets indexed, searched, scored."""

from __future__ import annotations

import json
import random

import pytest

from latesearch.cli.main import main
from latesearch.evaluation import evaluate_run

WORDS = "late interaction query document passage search cat dog house tree river city".split()


def write_set(folder, seed):
    rng = random.Random(seed)
    (folder / "qrels").mkdir(parents=True)
    docs = {f"d{i}": " ".join(rng.choices(WORDS, k=rng.randint(4, 10))) for i in range(20)}
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for doc_id, text in docs.items():
            out.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    queries = {f"q{i}": " ".join(rng.choices(WORDS, k=3)) for i in range(5)}
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as out:
        for qid, text in queries.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    qrels = {f"q{i}": {f"d{rng.randrange(20)}": 1} for i in range(4)}  # q4 unjudged
    lines = "".join(f"{q}\t{d}\t1\n" for q, docs in qrels.items() for d in docs)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + lines)
    return queries, qrels


def test_per_set_and_mean_ndcg_at_10(tmp_path, tiny_bert_dir, capsys):
    from latesearch import Index

    sets = {name: write_set(tmp_path / "bench" / name, seed)
            for seed, name in enumerate(["NanoA", "NanoB"])}  # fmt: skip
    argv = ["evaluate", "--preset", "nanobeir", "--sets", str(tmp_path / "bench"),
            "--model", str(tiny_bert_dir), "--mode", "exact", "--index-root",
            str(tmp_path / "indexes"), "--quiet", "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"] == ["nDCG@10"] and out["k"] == 10
    rows = {r["set"]: r for r in out["rows"]}
    assert list(rows) == ["NanoA", "NanoB", "mean"]
    for name, (queries, qrels) in sets.items():
        index = Index.load(tmp_path / "indexes" / name)
        judged = sorted(qrels)
        hits = index.search([queries[q] for q in judged], k=10, mode="exact")
        run = {q: {h.doc_id: h.score for h in row} for q, row in zip(judged, hits, strict=True)}
        expected = evaluate_run(run, qrels, "nDCG@10").aggregate["nDCG@10"]
        assert rows[name]["nDCG@10"] == pytest.approx(expected)
        assert rows[name]["queries"] == 4 and rows[name]["documents"] == 20
    mean = (rows["NanoA"]["nDCG@10"] + rows["NanoB"]["nDCG@10"]) / 2
    assert rows["mean"]["nDCG@10"] == pytest.approx(mean)
    # the indexes are reused; the table is printed
    assert main(argv[:-1]) == 0
    text = capsys.readouterr().out
    assert "| set | nDCG@10 | queries | documents |" in text and "| mean |" in text


def test_preset_errors(tmp_path, capsys):
    assert main(["evaluate", "--preset", "nanobeir"]) == 2
    assert "--sets" in capsys.readouterr().err
    assert main(["evaluate", "--preset", "nanobeir", "--sets", str(tmp_path)]) == 2
    assert "not a BEIR folder" in capsys.readouterr().err
