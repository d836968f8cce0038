"""ColBERTConfig validation: unknown fields and impossible values name the problem."""

from __future__ import annotations

import json

import pytest

from latesearch.errors import ConfigError
from latesearch.modeling.config import ColBERTConfig


def test_defaults_follow_the_paper():
    config = ColBERTConfig()
    assert (config.query_maxlen, config.doc_maxlen, config.dim) == (32, 180, 128)
    assert config.similarity == "cosine" and config.query_augmentation
    assert not config.attend_to_mask_tokens
    assert (config.query_token, config.doc_token) == ("[unused0]", "[unused1]")


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("dim", 0, "dim"),
        ("query_maxlen", 2, "query_maxlen"),
        ("doc_maxlen", "180", "doc_maxlen"),
        ("similarity", "dot", "similarity"),
        ("mask_punctuation", 1, "mask_punctuation"),
        ("dim", True, "dim"),
    ],
)
def test_impossible_values(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ColBERTConfig(**{field: value})


def test_unknown_field_is_named():
    with pytest.raises(ConfigError, match="colour"):
        ColBERTConfig.from_dict({"dim": 64, "colour": "red"})


def test_save_load_round_trip(tmp_path):
    config = ColBERTConfig(dim=64, similarity="l2")
    config.save(tmp_path)
    assert ColBERTConfig.load(tmp_path) == config


def test_load_rejects_malformed_file(tmp_path):
    (tmp_path / "latesearch_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="latesearch_config.json"):
        ColBERTConfig.load(tmp_path)
    (tmp_path / "latesearch_config.json").write_text(json.dumps({"dim": -1}), encoding="utf-8")
    with pytest.raises(ConfigError, match="dim"):
        ColBERTConfig.load(tmp_path)


def test_replace_validates():
    assert ColBERTConfig().replace(dim=24).dim == 24
    with pytest.raises(ConfigError):
        ColBERTConfig().replace(similarity="bogus")


def test_a_config_saved_by_earlier_versions_loads_and_saves_the_same_keys(tmp_path):
    saved = {
        "query_maxlen": 32, "doc_maxlen": 180, "dim": 4, "similarity": "cosine",
        "mask_punctuation": True, "query_augmentation": True, "markers": True,
        "attend_to_mask_tokens": False, "query_token": "[unused0]", "doc_token": "[unused1]",
        "strip_text": False, "lowercase": False, "query_mask_tokens": 0, "skiplist": ["!", "?"],
        "skiplist_lookup": "encode", "drop_cls": False, "normalize": True,
        "head": [{"bias": False, "activation": "identity", "residual": False,
                  "in_features": 8, "out_features": 4}],
    }  # fmt: skip
    (tmp_path / "latesearch_config.json").write_text(json.dumps(saved), encoding="utf-8")
    config = ColBERTConfig.load(tmp_path)
    assert config.skiplist == ("!", "?") and config.head[0]["in_features"] == 8
    assert config.to_dict() == saved
