"""TrainConfig: the JSON of earlier versions loads, fields are checked and named."""

from __future__ import annotations

import json

import pytest

from latesearch import TrainConfig
from latesearch.errors import ConfigError

SAVED = {
    "triples": "t.tsv", "triples_format": "auto", "collection": None, "queries": None,
    "qrels": None, "mine_negatives": None, "mine_depth": 100, "negatives_per_query": 1,
    "in_batch_negatives": False, "on_error": "raise", "base_model": None,
    "query_maxlen": None, "doc_maxlen": None, "dim": None, "train_layers": None,
    "doc_chunk": None, "steps": 5, "batch_size": 32, "grad_accum": 1, "lr": 1e-05,
    "projection_lr": None, "warmup_steps": 0, "weight_decay": 0.0, "max_grad_norm": 2.0,
    "precision": "auto", "seed": 12345, "device": None, "anchor_weight": 0.0,
    "distill_from": None, "distill_temperature": 1.0, "output": "runs/train",
    "resume": False, "save_every": 0, "keep_last": 0, "log_every": 10, "eval_every": 0,
    "dev_queries": None, "dev_qrels": None, "dev_collection": None, "dev_average": "pooled",
}  # fmt: skip


ADDED = {  # defaults of later fields
    "cache_chunk_size": None, "gather_across_devices": False, "dev_beir": [],
    "dev_split": "test", "dev_metric": "nDCG@10",
}  # fmt: skip


def test_a_config_saved_by_earlier_versions_loads_from_its_folder(tmp_path):
    (tmp_path / "train_config.json").write_text(json.dumps(SAVED), encoding="utf-8")
    config = TrainConfig.load(tmp_path)
    assert config.steps == 5 and config.lr == 1e-5
    assert config.to_dict() == {**SAVED, **ADDED}
    config.save(tmp_path / "copy.json")
    assert TrainConfig.load(tmp_path / "copy.json") == config


def test_numbers_are_converted_and_checked_by_field(tmp_path):
    assert TrainConfig(triples=tmp_path / "t.tsv", lr=1).lr == 1.0  # int -> float, path -> str
    for field, value in (("steps", 0), ("batch_size", True), ("lr", "fast"),
                         ("dim", 0), ("negatives_per_query", -1)):  # fmt: skip
        with pytest.raises(ConfigError, match=f"TrainConfig.{field}") as caught:
            TrainConfig(triples="t.tsv", **{field: value})
        assert caught.value.field == field
    with pytest.raises(ConfigError, match="stepz"):
        TrainConfig.from_dict({**SAVED, "stepz": 3})


def test_large_batch_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="gather_across_devices"):
        TrainConfig(triples="t.tsv", gather_across_devices=True)
    with pytest.raises(ConfigError, match="cache_chunk_size"):
        TrainConfig(triples="t.tsv", cache_chunk_size=0)
    assert TrainConfig(triples="t.tsv", in_batch_negatives=True, gather_across_devices=True)


def test_json_triples_are_told_apart_by_their_first_line(tmp_path):
    import gzip

    text = tmp_path / "kd.jsonl.gz"
    text.write_bytes(gzip.compress(b'{"query": "q", "positive": "p", "negatives": ["n"]}\n'))
    ids = tmp_path / "ids.jsonl.gz"
    ids.write_bytes(gzip.compress(b'["1", "2", "3"]\n'))
    assert TrainConfig(triples=text).triples_format_resolved() == "text"
    config = TrainConfig(triples=ids, queries="q.tsv", collection="c.tsv")
    assert config.triples_format_resolved() == "ids"
    with pytest.raises(ConfigError, match="collection is required with id triples"):
        TrainConfig(triples=tmp_path / "not-yet-written.jsonl")
