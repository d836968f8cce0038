"""IndexConfig: defaults, validation naming the field, JSON round trip."""

from __future__ import annotations

import json

import pytest

from latesearch.errors import ConfigError
from latesearch.indexing import IndexConfig


def test_defaults_follow_the_paper():
    config = IndexConfig()
    assert config.group_size == 100_000 and config.batch_size == 64
    assert config.precision == 16 and config.dtype == "float16"
    assert config.docs_per_chunk == config.group_size
    assert 1 <= config.tokenizer_workers <= 4
    assert config.length_bucketing and config.on_error == "raise"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("group_size", 0),
        ("batch_size", True),
        ("precision", 8),
        ("on_error", "ignore"),
        ("tokenizer_workers", -1),
        ("doc_maxlen", 2),
        ("devices", "cpu"),
        ("devices", []),
        ("compute_dtype", "float64"),
        ("length_bucketing", "yes"),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        IndexConfig(**{field: value})


def test_chunk_size_may_not_exceed_group_size():
    with pytest.raises(ConfigError, match="chunk_size"):
        IndexConfig(group_size=10, chunk_size=11)


def test_json_round_trip_and_unknown_field(tmp_path):
    config = IndexConfig(group_size=7, devices=["cpu", "cpu"], precision=32)
    path = config.save(tmp_path / "index_config.json")
    assert IndexConfig.load(path) == config
    assert config.devices == ("cpu", "cpu")
    data = json.loads(path.read_text())
    data["groupsize"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="groupsize"):
        IndexConfig.load(path)
    with pytest.raises(ConfigError, match="precision"):
        IndexConfig().replace(precision=24)
