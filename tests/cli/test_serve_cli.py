"""`latesearch serve`: start-up, a request, Ctrl-C, and clear errors for bad arguments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from latesearch.cli.main import main


@pytest.fixture(scope="module")
def index(tmp_path_factory, tiny_colbert):
    from latesearch import Index

    folder = tmp_path_factory.mktemp("cli-serve")
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for i, text in enumerate(["late interaction search", "protein cell", "music city"]):
            out.write(json.dumps({"_id": f"d{i}", "text": text}) + "\n")
    return Index.build(folder / "corpus.jsonl", folder / "index", tiny_colbert, progress=False)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_answers_then_stops_cleanly(index, stop):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "latesearch", "serve", str(index.folder), "--port", "0",
         "--quiet", "-k", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() else "")
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "/search?q=music+city", timeout=60) as response:
            body = json.loads(response.read())
        expected = [h.doc_id for h in index.search("music city", k=2)]
        assert body["k"] == 2 and [h["doc_id"] for h in body["hits"]] == expected
        proc.send_signal(stop)
        assert proc.wait(timeout=60) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_refuses_bad_arguments_with_exit_code_2(index, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert main(["serve", str(index.folder), "--port", "70000"]) == 2
    assert "port" in capsys.readouterr().err
    assert main(["serve", str(index.folder), "-k", "5", "--max-k", "2"]) == 2
    assert "max_k" in capsys.readouterr().err


def test_serve_refuses_bad_index_options(index, tmp_path, capsys):
    assert main(["serve"]) == 2
    assert "--index-root" in capsys.readouterr().err
    assert main(["serve", "--index", str(index.folder)]) == 2  # no NAME=
    assert "NAME=FOLDER" in capsys.readouterr().err
    assert main(["serve", "--index", f"a b={index.folder}"]) == 2
    assert "index name" in capsys.readouterr().err
    assert main(["serve", "--index", f"a={index.folder}", "--index", f"a={index.folder}"]) == 2
    assert main(["serve", "--index-root", str(tmp_path / "missing")]) == 2
    assert "index_root" in capsys.readouterr().err
    assert main(["serve", "--index", f"a={index.folder}", "--default-index", "b",
                 "--port", "0"]) == 2  # fmt: skip
    assert "'b': not among the indexes served ['a']" in capsys.readouterr().err
    assert main(["serve", "--index-root", str(tmp_path), "--workers", "2"]) == 2


def test_serve_several_named_indexes(index, tiny_colbert, tmp_path):
    from latesearch import Index

    (tmp_path / "b.jsonl").write_text(json.dumps({"_id": "b0", "text": "river data"}) + "\n")
    other = Index.build(tmp_path / "b.jsonl", tmp_path / "b", tiny_colbert, progress=False)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "latesearch", "serve", "--index", f"a={index.folder}",
         "--index", f"b={other.folder}", "--default-index", "b", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "2 indexes ['a', 'b'] at http://" in line, (line, proc.poll())
        url = line.split(" at ")[1].split()[0]

        def get(path):
            with urllib.request.urlopen(url + path, timeout=60) as response:
                return json.loads(response.read())

        assert [row["name"] for row in get("/indexes")["indexes"]] == ["a", "b"]
        hits = get("/indexes/a/search?q=music+city&k=2")["hits"]
        assert [h["doc_id"] for h in hits] == [h.doc_id for h in index.search("music city", k=2)]
        assert [h["doc_id"] for h in get("/search?q=river")["hits"]] == ["b0"]  # the default
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
