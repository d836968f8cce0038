"""`latesearch index`: summary, refusing an existing folder, --overwrite, --resume, bad input."""

from __future__ import annotations

import json

import pytest

from latesearch.cli.main import main
from latesearch.indexing import IndexConfig, IndexStore, build_index, building_folder

FAST = ["--quiet", "--no-ann", "--precision", "32", "--group-size", "16", "--chunk-size", "8"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["index", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_index_prints_a_summary_and_refuses_to_overwrite(corpus, tmp_path, tiny_bert_dir, capsys):
    target = tmp_path / "idx"
    code, out, _ = run(capsys, str(corpus), str(target), "--model", str(tiny_bert_dir), *FAST)
    assert code == 0
    for label in ("documents", "truncated documents", "empty documents", "per document",
                  "bytes on disk", "documents/s"):  # fmt: skip
        assert label in out
    store = IndexStore.open(target)
    assert store.n_docs == 40 and store.dtype == "float32" and len(store.chunks) == 5
    assert store.manifest.config.run.group_size == 16

    code, _, err = run(capsys, str(corpus), str(target), "--model", str(tiny_bert_dir), *FAST)
    assert code == 2 and "--overwrite" in err
    code, _, _ = run(capsys, str(corpus), str(target), "--model", str(tiny_bert_dir), *FAST,
                     "--overwrite", "--doc-maxlen", "8")  # fmt: skip
    assert code == 0 and IndexStore.open(target).colbert_config.doc_maxlen == 8


def test_resume_continues_an_interrupted_build(corpus, tmp_path, tiny_bert_dir, capsys):
    target = tmp_path / "idx"
    config = IndexConfig().replace(precision=32, group_size=16, chunk_size=8)

    def crash(info):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, target, str(tiny_bert_dir), config, progress=False, on_chunk=crash)
    code, _, err = run(capsys, str(corpus), str(target), "--model", str(tiny_bert_dir), *FAST)
    assert code == 2 and "--resume" in err
    code, out, _ = run(capsys, str(corpus), str(target), "--model", str(tiny_bert_dir), *FAST,
                       "--resume")  # fmt: skip
    assert code == 0 and "40" in out
    assert not building_folder(target).exists()
    store = IndexStore.open(target)
    assert store.n_docs == 40 and store.summary.resumed


def test_bad_rows_fail_with_file_and_line_or_are_skipped(tmp_path, tiny_bert_dir, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\tthe cat\n\n2\ta dog\n2\tthe dog again\n", encoding="utf-8")
    code, _, err = run(capsys, str(bad), str(tmp_path / "a"), "--model", str(tiny_bert_dir), *FAST)
    assert code == 2 and f"{bad}:2" in err and "blank line" in err
    assert not (tmp_path / "a").exists()
    code, out, _ = run(capsys, str(bad), str(tmp_path / "b"), "--model", str(tiny_bert_dir),
                       *FAST, "--skip-bad-rows")  # fmt: skip
    assert code == 0 and "blank_line: 1" in out and "duplicate_id: 1" in out
    assert list(IndexStore.open(tmp_path / "b").doc_ids) == ["1", "2"]


def test_dense_view_from_the_command_line(corpus, tmp_path, tiny_bert_dir, capsys):
    target = tmp_path / "dense"
    code, _, err = run(capsys, str(corpus), str(target), "--model", str(tiny_bert_dir), *FAST,
                       "--dense", "backbone", "--dense-model", str(tiny_bert_dir))  # fmt: skip
    assert code == 0, err
    store = IndexStore.open(target)
    assert store.dense_source == "backbone" and store.has_dense
    code = main(["search", str(target), "protein", "--model", str(tiny_bert_dir), "--mode",
                 "fused", "--fusion", "rrf", "-k", "3", "--json"])  # fmt: skip
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert code == 0 and len(hits) == 3
    code, _, err = run(capsys, str(corpus), str(tmp_path / "x"), "--model", str(tiny_bert_dir),
                       *FAST, "--dense-model", str(tiny_bert_dir))  # fmt: skip
    assert code == 2 and "dense_model" in err
