"""Reading checkpoints of every layout: ours, colbert-ai (colbertv2.0), PyLate /
sentence-transformers, BGE-M3 (FlagEmbedding), Hofstätter's ColBERT, a plain backbone.

Reading returns the pieces (backbone, tokenizer, head weights, config); the `ColBERT`
class assembles them. Writing is in `saving.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latesearch.errors import CheckpointError, ConfigError
from latesearch.modeling import layouts
from latesearch.modeling.backbones import (
    CheckpointParts,
    build_backbone,
    load_tokenizer,
    load_weights,
    make_config,
    read_json,
)
from latesearch.modeling.config import CONFIG_FILE, ColBERTConfig
from latesearch.modeling.head import ProjectionHead, head_layers

COLBERT_METADATA = layouts.COLBERT_METADATA


def detect_layout(folder: Path) -> str:
    """Which checkpoint layout a folder holds: "latesearch", "pylate", "colbert-ai",
    "bge-m3", "hofstaetter" or "hf" (a plain backbone)."""
    if (folder / CONFIG_FILE).exists():
        return "latesearch"
    if layouts.pylate_modules(folder):
        return "pylate"
    if (folder / COLBERT_METADATA).exists() or "HF_ColBERT" in _architectures(folder):
        return "colbert-ai"
    if (folder / layouts.BGE_M3_COLBERT).exists():
        return "bge-m3"
    if (folder / "config.json").exists() and "bert_model" in read_json(folder / "config.json"):
        return "hofstaetter"
    if any("colbert" in name.lower() for name in _architectures(folder)):
        return "colbert-ai"  # e.g. Vespa's VespaColBERT: `bert.` + `linear`, no metadata
    if (folder / "config.json").exists():
        return "hf"
    raise CheckpointError(f"{folder}: no config.json, {COLBERT_METADATA} or modules.json found")


def _architectures(folder: Path) -> list[str]:
    path = folder / "config.json"
    return list(read_json(path).get("architectures") or []) if path.exists() else []


def read_checkpoint(
    folder: Path, *, trust_remote_code: bool = False, **overrides: Any
) -> CheckpointParts:
    """Read any supported layout; `overrides` replace config fields (validated)."""
    layout = detect_layout(folder)
    reader = {
        "latesearch": _read_latesearch,
        "pylate": layouts.read_pylate,
        "colbert-ai": layouts.read_colbert_ai,
        "bge-m3": layouts.read_bge_m3,
        "hofstaetter": layouts.read_hofstaetter,
        "hf": _read_plain,
    }[layout]
    parts = reader(folder, overrides, trust_remote_code)
    _check_head(parts)
    return parts


def _read_latesearch(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    try:
        config = ColBERTConfig.load(folder)
        if overrides:
            config = config.replace(**overrides)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    if layouts.pylate_modules(folder):  # saved by latesearch: PyLate's files hold the head
        parts = layouts.read_pylate(folder, {}, trust)
        return CheckpointParts("latesearch", folder, config, parts.backbone, parts.tokenizer,
                               parts.head_state)
    state = load_weights(folder)
    projection = state.get("linear.weight")
    if projection is None:
        raise CheckpointError(f"{folder}: ColBERT weights lack 'linear.weight'")
    backbone = build_backbone(folder, state, trust_remote_code=trust)
    tokenizer = load_tokenizer(folder, trust_remote_code=trust)
    return CheckpointParts("latesearch", folder, config, backbone, tokenizer, projection)


def _read_plain(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    config = make_config({}, overrides, str(folder / "config.json"))
    backbone = build_backbone(folder, load_weights(folder), trust_remote_code=trust)
    tokenizer = load_tokenizer(folder, trust_remote_code=trust)
    return CheckpointParts("hf", folder, config, backbone, tokenizer, None)


def _check_head(parts: CheckpointParts) -> None:
    """The head's weights must fit its layers: the first takes the backbone's width, the
    last gives `dim`; a misfit names the checkpoint folder."""
    hidden = parts.backbone.config.hidden_size
    state = parts.head_state
    if state is None:  # a plain backbone: the model seeds a new projection
        return
    if isinstance(state, torch.Tensor):
        state = {"linear.weight": state}
    layers = head_layers(parts.config, hidden)
    if layers[-1]["out_features"] != parts.config.dim:
        raise CheckpointError(
            f"{parts.folder}: the head gives {layers[-1]['out_features']} features, "
            f"the config's dim is {parts.config.dim}"
        )
    with torch.device("meta"):
        head = ProjectionHead(layers)
    head.load_shapes(state, f"{parts.folder}: projection")
