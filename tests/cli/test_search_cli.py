"""`latesearch search`: one query (table or JSON) and a query file to a TREC run."""

from __future__ import annotations

import json
import random

import pytest

from latesearch.cli.main import main
from latesearch.data import read_trec_run

WORDS = ("late interaction query search protein cell study music city river data model the of "
         "a in").split()
QUERIES = {"q1": "late interaction search", "q2": "protein cell study", "q3": "music city"}


@pytest.fixture(scope="module")
def index(tmp_path_factory, tiny_colbert):
    """A 30-document index with bm25/ and ann/, built from the tiny model."""
    from latesearch import Index

    folder = tmp_path_factory.mktemp("cli-search")
    rng = random.Random(3)
    collection = folder / "corpus.jsonl"
    with open(collection, "w", encoding="utf-8") as out:
        for i in range(30):
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 15)))
            row = {"_id": f"d{i}", "title": f"title {i}", "text": text, "n": i}
            out.write(json.dumps(row) + "\n")
    return Index.build(collection, folder / "index", tiny_colbert, bm25=True, progress=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["search", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("mode", ["e2e", "rerank", "exact", "hybrid"])
def test_single_query_table(index, capsys, mode):
    code, out, _ = run(capsys, str(index.folder), QUERIES["q1"], "-k", "4", "--mode", mode)
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    expected = index.search(QUERIES["q1"], k=4, mode=mode)
    assert [(int(r[0]), r[2]) for r in rows] == [(h.rank, h.doc_id) for h in expected]
    assert [float(r[1]) for r in rows] == pytest.approx([h.score for h in expected], abs=1e-3)


def test_single_query_json_with_text(index, capsys):
    code, out, _ = run(capsys, str(index.folder), QUERIES["q2"], "-k", "3", "--json",
                       "--show-text")  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["query"] == QUERIES["q2"] and data["mode"] == "e2e"
    expected = index.search(QUERIES["q2"], k=3, return_text=True)
    assert data["hits"] == [h.to_dict() for h in expected]
    assert {"doc_id", "score", "rank", "title", "text"} <= set(data["hits"][0])
    assert data["timings"]["n_queries"] == 1 and data["timings"]["encode"] > 0


def test_batch_writes_trec_run(index, capsys, tmp_path):
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{qid}\t{text}\n" for qid, text in QUERIES.items()))
    output = tmp_path / "run.trec"
    code, _, err = run(capsys, str(index.folder), "--queries", str(queries), "--output",
                       str(output), "-k", "5", "--mode", "rerank", "--batch-size", "2",
                       "--quiet")  # fmt: skip
    assert code == 0 and "3 queries" in err
    got = read_trec_run(output)
    assert list(got) == list(QUERIES)
    for qid, hits in zip(QUERIES, index.search(list(QUERIES.values()), k=5, mode="rerank"),
                         strict=True):  # fmt: skip
        assert list(got[qid]) == [h.doc_id for h in hits]
        assert list(got[qid].values()) == pytest.approx([h.score for h in hits], abs=1e-4)
    lines = output.read_text().splitlines()
    assert lines[0].split()[1] == "Q0" and lines[0].split()[3] == "1"


def test_bad_invocations_exit_2(index, capsys, tmp_path):
    code, _, err = run(capsys, str(index.folder))
    assert code == 2 and "QUERY or --queries" in err
    code, _, err = run(capsys, str(index.folder), "x", "--nprobe", "0")
    assert code == 2 and "nprobe" in err
    code, _, err = run(capsys, str(tmp_path / "missing"), "x")
    assert code == 2


def test_filter_and_metadata(index, capsys):
    code, out, _ = run(capsys, str(index.folder), QUERIES["q2"], "-k", "5", "--json",
                       "--filter", '{"n": {"$lt": 4}}', "--show-metadata", "--mode", "hybrid",
                       "--fusion", "score", "--hybrid-weight", "0.7")  # fmt: skip
    assert code == 0
    hits = json.loads(out)["hits"]
    expected = index.search(QUERIES["q2"], k=5, mode="hybrid", filter={"n": {"$lt": 4}},
                            fusion="score", hybrid_weight=0.7, return_metadata=True)
    assert hits == [h.to_dict() for h in expected]
    assert hits and all(h["metadata"]["n"] < 4 for h in hits)
    code, _, err = run(capsys, str(index.folder), "x", "--filter", '{"n": {"$gt": "a", "b": 1}}')
    assert code == 2 and "filter.n" in err


def test_search_a_server_prints_what_a_local_search_prints(index, capsys, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from latesearch.serving import RunningServer, SearchService

    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    flags = [["-k", "4", "--mode", "hybrid", "--show-text", "--show-metadata"],
             ["-k", "3", "--filter", '{"n": {"$lt": 10}}', "--json"],
             ["--queries", str(queries), "-k", "5", "--mode", "rerank", "--batch-size", "2"]]
    server = RunningServer(SearchService(index), port=0, quiet=True)
    url = server.url
    with server:
        for extra in flags:
            query = [] if "--queries" in extra else [QUERIES["q2"]]
            local = run(capsys, str(index.folder), *query, *extra)
            remote = run(capsys, server.url, *query, *extra)
            assert local[0] == remote[0] == 0
            if "--json" in extra:
                here, there = json.loads(local[1]), json.loads(remote[1])
                assert there["hits"] == here["hits"] and len(here["hits"]) == 3
                assert there["timings"]["n_queries"] == 1
            else:  # the same lines; scores up to float rounding (batched on the server)
                here, there = (out[1].split() for out in (local, remote))
                assert [_number(t) for t in there] == [_number(t, approx=False) for t in here]
                assert len(local[1].splitlines()) > 3
        code, _, err = run(capsys, server.url, "q", "-k", "0")
        assert code == 2 and "k" in err
        code, _, err = run(capsys, server.url, "q", "--model", "other")
        assert code == 2 and "--model" in err
    code, _, err = run(capsys, url, "q")  # stopped: nothing answers
    assert code == 2 and "no answer" in err


def _number(token: str, approx: bool = True) -> object:
    """A score as a float (`approx`: pytest.approx of it), any other token as it is."""
    try:
        value = float(token) if "." in token else token
    except ValueError:
        return token
    return pytest.approx(value, abs=1e-3) if approx and isinstance(value, float) else value


def test_explain_prints_highlighted_texts(index, capsys):
    code, out, _ = run(capsys, str(index.folder), QUERIES["q1"], "-k", "2", "--mode", "exact",
                       "--explain")  # fmt: skip
    assert code == 0
    hits = index.search(QUERIES["q1"], k=2, mode="exact", explain=True)
    for hit in hits:
        assert f"#{hit.rank} {hit.doc_id}" in out
        assert " ".join(hit.render_highlights(style="plain").split()) in out
    assert out.count("why: ") == 2 and "[" in out
    code, out, _ = run(capsys, str(index.folder), QUERIES["q1"], "-k", "2", "--explain",
                       "--json")  # fmt: skip
    data = json.loads(out)
    assert data["hits"][0]["explanation"]["doc_id"] == data["hits"][0]["doc_id"]
    assert "highlights" in data["hits"][0] and "text" in data["hits"][0]
