"""Reading checkpoints of every layout: ours, colbert-ai (colbertv2.0), PyLate /
sentence-transformers, BGE-M3 (FlagEmbedding), Hofstätter's ColBERT, a plain backbone.

Reading returns the pieces (backbone, tokenizer, head weights, config); the `ColBERT`
class assembles them. Writing is in `saving.py`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from latesearch.errors import CheckpointError, ConfigError
from latesearch.modeling import layouts, st_multivector
from latesearch.modeling.backbones import (
    CheckpointParts,
    build_backbone,
    load_tokenizer,
    load_weights,
    make_config,
    read_json,
)
from latesearch.modeling.config import CONFIG_FILE, ColBERTConfig

COLBERT_METADATA = layouts.COLBERT_METADATA


def detect_layout(folder: Path) -> str:
    """Which checkpoint layout a folder holds: "latesearch", "sentence-transformers" (a
    Sentence Transformers 6 MultiVectorEncoder), "pylate", "colbert-ai",
    "bge-m3", "hofstaetter" or "hf" (a plain backbone)."""
    if (folder / CONFIG_FILE).exists():
        return "latesearch"
    if st_multivector.is_multivector(folder):
        return "sentence-transformers"
    if layouts.pylate_modules(folder):
        return "pylate"
    hf_path = folder / "config.json"
    hf_config = read_json(hf_path) if hf_path.exists() else None
    architectures = list((hf_config or {}).get("architectures") or [])
    if (folder / COLBERT_METADATA).exists() or "HF_ColBERT" in architectures:
        return "colbert-ai"
    if (folder / layouts.BGE_M3_COLBERT).exists():
        return "bge-m3"
    if hf_config is not None and "bert_model" in hf_config:
        return "hofstaetter"
    if any("colbert" in name.lower() for name in architectures):
        return "colbert-ai"  # e.g. Vespa's VespaColBERT: `bert.` + `linear`, no metadata
    if hf_config is not None:
        return "hf"
    raise CheckpointError(f"{folder}: no config.json, {COLBERT_METADATA} or modules.json found")


def read_checkpoint(
    folder: Path, *, trust_remote_code: bool = False, **overrides: Any
) -> CheckpointParts:
    """Read any supported layout; `overrides` replace config fields (validated)."""
    layout = detect_layout(folder)
    reader = {
        "latesearch": _read_latesearch,
        "pylate": layouts.read_pylate,
        "sentence-transformers": st_multivector.read_multivector,
        "colbert-ai": layouts.read_colbert_ai,
        "bge-m3": layouts.read_bge_m3,
        "hofstaetter": layouts.read_hofstaetter,
        "hf": _read_plain,
    }[layout]
    return reader(folder, overrides, trust_remote_code)


def _read_latesearch(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    try:
        config = ColBERTConfig.load(folder)
        if overrides:
            config = config.replace(**overrides)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    # the weights are in colbert-ai's layout (the paper's head) or PyLate's (any head; every
    # checkpoint saved since several-layer heads exist has PyLate's files)
    read = layouts.read_pylate if layouts.pylate_modules(folder) else layouts.read_colbert_ai
    parts = read(folder, {}, trust)
    return dataclasses.replace(parts, layout="latesearch", config=config)


def _read_plain(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    config = make_config({}, overrides, str(folder / "config.json"))
    backbone = build_backbone(folder, load_weights(folder), trust_remote_code=trust)
    tokenizer = load_tokenizer(folder, trust_remote_code=trust)
    return CheckpointParts("hf", folder, config, backbone, tokenizer, None)
