"""IndexConfig: defaults, groups, flat names of earlier versions, validation naming the
field, JSON round trip."""

from __future__ import annotations

import json

import pytest

from latesearch.cli.index import index_config
from latesearch.cli.main import build_parser
from latesearch.errors import ConfigError
from latesearch.indexing import (
    CodecConfig,
    DenseViewConfig,
    EncodingRun,
    IndexConfig,
    Manifest,
    RayConfig,
)
from latesearch.indexing.config import COMPACT_CODEC, NEW_CODEC, SAVED_CODEC

# What the flat IndexConfig of earlier versions wrote into a manifest's `index_config`.
FLAT_SAVED = {
    "group_size": 7, "batch_size": 64, "precision": 16, "title_join": " . ",
    "tokenizer_workers": 1, "devices": ["cpu"], "chunk_size": 5, "checkpoint_docs": 5000,
    "checkpoint_seconds": 120.0, "length_bucketing": True, "on_error": "raise",
    "doc_maxlen": 100, "compute_dtype": None, "nbits": 4, "keep_full": False,
    "n_centroids": 64, "kmeans_niter": 4, "assignment": "auto", "seed": 0,
    "dense": "backbone", "dense_model": "st-model", "ray": "auto", "ray_workers": 2,
    "ray_cpus_per_worker": 1, "ray_transport": "shared",
}  # fmt: skip


def test_defaults_follow_the_paper():
    config = IndexConfig()
    assert config.run.group_size == 100_000 and config.run.batch_size == 64
    assert config.codec.precision == 16 and config.codec.dtype == "float16"
    assert config.codec.compressed
    assert config.run.docs_per_chunk == config.run.group_size
    assert 1 <= config.run.tokenizer_workers <= 4
    assert config.run.length_bucketing and config.on_error == "raise"
    assert config.ray.address is None and config.dense.source is None


def test_a_flat_config_of_earlier_versions_loads_into_the_groups():
    config = IndexConfig.from_dict(FLAT_SAVED, source="manifest.json: index_config")
    assert config == IndexConfig(
        title_join=" . ",
        doc_maxlen=100,
        codec=CodecConfig(nbits=4, keep_full=False, n_centroids=64, pool_factor=1),
        run=EncodingRun(group_size=7, tokenizer_workers=1, devices=("cpu",), chunk_size=5),
        ray=RayConfig(address="auto", workers=2, transport="shared"),
        dense=DenseViewConfig(source="backbone", model="st-model"),
    )
    assert IndexConfig.from_dict(config.to_dict()) == config  # the grouped form reloads


def test_new_indexes_take_the_new_codec_and_saved_configs_the_one_they_were_built_with():
    new = IndexConfig().codec
    assert (new.nbits, new.keep_full, new.pool_factor) == tuple(NEW_CODEC.values())
    assert NEW_CODEC in (SAVED_CODEC, COMPACT_CODEC)
    CodecConfig(**COMPACT_CODEC)  # valid
    # a config saved before pool_factor existed (or naming no codec field) means the saved
    # defaults, whichever defaults new indexes take
    unnamed = {k: v for k, v in FLAT_SAVED.items() if k not in ("nbits", "keep_full")}
    old = IndexConfig.from_dict(unnamed, source="manifest.json: index_config").codec
    assert (old.nbits, old.keep_full, old.pool_factor) == tuple(SAVED_CODEC.values())
    assert IndexConfig.from_dict({}).codec == CodecConfig(**SAVED_CODEC)
    # fields a config names are kept
    for codec in (SAVED_CODEC, COMPACT_CODEC):
        saved = IndexConfig().replace(**codec).to_dict()
        assert IndexConfig.from_dict(saved).codec == CodecConfig(**codec)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], NEW_CODEC),
        (["--nbits", "2", "--keep-full", "--pool-factor", "1"], SAVED_CODEC),
        (["--nbits", str(COMPACT_CODEC["nbits"]), "--no-keep-full", "--pool-factor",
          str(COMPACT_CODEC["pool_factor"])], COMPACT_CODEC),
        (["--nbits", "none"], {**NEW_CODEC, "nbits": None}),
    ],
)  # fmt: skip
def test_the_index_command_defaults_to_the_new_codec(flags, expected):
    args = build_parser().parse_args(["index", "docs.jsonl", "idx", *flags])
    codec = index_config(args).codec
    assert {"nbits": codec.nbits, "keep_full": codec.keep_full,
            "pool_factor": codec.pool_factor} == expected  # fmt: skip


def test_a_manifest_with_a_flat_index_config_reads_as_groups():
    manifest = Manifest(format_version=1, model_source="m", model_fingerprint="f",
                        colbert_config={}, index_config=dict(FLAT_SAVED), n_docs=0,
                        n_embeddings=0, dim=8, dtype="float16", chunks=[], created="")  # fmt: skip
    assert manifest.config.dense.model == "st-model"
    assert manifest.config.title_join == " . "


def test_flat_names_and_groups_both_replace():
    config = IndexConfig().replace(ray_workers=3).replace(ray="auto")
    assert config.ray == RayConfig(address="auto", workers=3)  # the flat `ray` keeps workers
    config = config.replace(codec=CodecConfig(nbits=None), dense={"source": "pooled"})
    assert config.codec == CodecConfig(nbits=None) and config.dense.source == "pooled"
    assert config.replace(nbits=1).codec.nbits == 1
    with pytest.raises(ConfigError, match="codec"):
        IndexConfig().replace(codec="fast")
    with pytest.raises(ConfigError, match=r"RayConfig.workers .*\(given as ray_workers\)"):
        IndexConfig().replace(ray_workers=0)


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
        ("nbits", 3),
        ("dense_model", "x"),  # needs dense="backbone"
    ],
)
def test_bad_values_name_the_field(field, value):
    grouped = {"dense_model": "model"}.get(field, field)
    with pytest.raises(ConfigError, match=grouped) as caught:
        IndexConfig().replace(**{field: value})
    assert caught.value.field == grouped


def test_chunk_size_may_not_exceed_group_size():
    with pytest.raises(ConfigError, match="chunk_size"):
        EncodingRun(group_size=10, chunk_size=11)


def test_json_round_trip_and_unknown_fields(tmp_path):
    config = IndexConfig().replace(group_size=7, devices=["cpu", "cpu"], precision=32)
    path = config.save(tmp_path / "index_config.json")
    assert IndexConfig.load(path) == config
    assert config.run.devices == ("cpu", "cpu")
    data = json.loads(path.read_text())
    assert data["run"]["devices"] == ["cpu", "cpu"] and data["codec"]["precision"] == 32
    data["groupsize"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="groupsize"):
        IndexConfig.load(path)
    with pytest.raises(ConfigError, match="IndexConfig.codec: unknown CodecConfig.*'bits'"):
        IndexConfig.from_dict({"codec": {"bits": 2}})
    with pytest.raises(ConfigError, match="precision"):
        IndexConfig().replace(precision=24)
