"""`latesearch train` on a tiny random BERT: flags, resume, errors with exit code 2."""

from __future__ import annotations

import json

from latesearch.cli.main import main
from latesearch.training import checkpointing as ckpt

TINY = [
    "--dim",
    "16",
    "--query-maxlen",
    "12",
    "--doc-maxlen",
    "24",
    "--device",
    "cpu",
    "--precision",
    "fp32",
    "--lr",
    "1e-3",
    "--log-every",
    "1",
]


def test_train_then_resume_longer(tmp_path, tiny_bert_dir, capsys):
    triples = tmp_path / "triples.tsv"
    triples.write_text(
        "what cat\tthe cat dog\tthe gene cell\nwhat gene\tthe gene cell\tthe cat dog\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    base = [
        "train",
        "--triples",
        str(triples),
        "--base-model",
        str(tiny_bert_dir),
        "--output",
        str(out),
        "--batch-size",
        "2",
        "--save-every",
        "1",
        *TINY,
    ]
    assert main([*base, "--steps", "2", "--in-batch-negatives", "--projection-lr", "2e-3"]) == 0
    err = capsys.readouterr().err
    assert "step       2  loss" in err and "final model in" in err
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["in_batch_negatives"] and saved["projection_lr"] == 2e-3
    assert saved["base_model"] == str(tiny_bert_dir) and saved["batch_size"] == 2
    # resuming may raise the step count; other settings come from the saved config
    assert (
        main(["train", "--config", str(out / "train_config.json"), "--resume", "--steps", "3"]) == 0
    )
    assert [r["step"] for r in ckpt.JsonlLog(out / ckpt.LOSS_LOG).read()] == [1, 2, 3]
    assert json.loads((out / "final" / ckpt.COMPLETE).read_text())["step"] == 3


def test_bad_input_exits_2_naming_file_and_line(tmp_path, tiny_bert_dir, capsys):
    triples = tmp_path / "triples.tsv"
    triples.write_text("what cat\tthe cat dog\tthe gene cell\nwhat gene\tonly two\n")
    base = [
        "train",
        "--triples",
        str(triples),
        "--base-model",
        str(tiny_bert_dir),
        "--batch-size",
        "2",
        "--steps",
        "1",
        *TINY,
    ]
    assert main([*base, "--output", str(tmp_path / "a")]) == 2
    assert "triples.tsv:2" in capsys.readouterr().err
    assert main([*base, "--output", str(tmp_path / "b"), "--on-error", "skip"]) == 0
    assert "1 bad rows skipped" in capsys.readouterr().err
    assert main([*base, "--output", str(tmp_path / "c"), "--negatives", "0"]) == 2
    assert "negatives_per_query" in capsys.readouterr().err


def test_large_batch_distillation_and_dev_flags_map_onto_the_config(tmp_path):
    from latesearch.cli.main import build_parser
    from latesearch.cli.train import config_from_args

    args = build_parser().parse_args([
        "train", "--triples", "kd.jsonl", "--triples-format", "text", "--distill-from",
        "triples", "--in-batch-negatives", "--gather-across-devices", "--cache-chunk-size",
        "8", "--eval-every", "10", "--dev-beir", "nano/a", "nano/b", "--dev-split", "dev",
        "--dev-metric", "RR@10",
    ])  # fmt: skip
    config = config_from_args(args)
    assert config.cache_chunk_size == 8 and config.gather_across_devices
    assert config.dev_beir == ("nano/a", "nano/b") and config.dev_split == "dev"
    assert config.dev_metric == "RR@10" and config.distill_from == "triples"
