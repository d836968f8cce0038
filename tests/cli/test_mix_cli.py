"""`latesearch mix` writes a loadable mixed checkpoint and rejects bad input with exit 2."""

from __future__ import annotations

import json

import torch

from latesearch import ColBERT
from latesearch.cli.main import main


def _saved_pair(tmp_path, tiny_bert_dir):
    start = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=16, doc_maxlen=24)
    start.save_pretrained(tmp_path / "start")
    with torch.no_grad():
        start.linear.weight.mul_(3.0)
    start.save_pretrained(tmp_path / "tuned")
    return tmp_path / "start", tmp_path / "tuned"


def test_mix_writes_the_interpolated_checkpoint(tmp_path, tiny_bert_dir, capsys):
    a, b = _saved_pair(tmp_path, tiny_bert_dir)
    out = tmp_path / "wise"
    assert main(["mix", str(a), str(b), "--weights", "0.25", "0.75", "--output", str(out)]) == 0
    assert "mixed 2 models" in capsys.readouterr().out
    mixed = ColBERT.from_pretrained(out, device="cpu")
    start = ColBERT.from_pretrained(a, device="cpu")
    torch.testing.assert_close(mixed.linear.weight, 2.5 * start.linear.weight)
    assert mixed.config == start.config
    assert json.loads((out / "mix.json").read_text())["weights"] == [0.25, 0.75]


def test_mix_rejects_bad_weights_and_unrelated_output(tmp_path, tiny_bert_dir, capsys):
    a, b = _saved_pair(tmp_path, tiny_bert_dir)
    assert main(["mix", str(a), str(b), "--weights", "0.5", "0.6",
                 "--output", str(tmp_path / "x")]) == 2
    assert "sum to 1" in capsys.readouterr().err
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("keep me")
    assert main(["mix", str(a), str(b), "--output", str(tmp_path / "data")]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert (tmp_path / "data" / "notes.txt").read_text() == "keep me"
