"""Checkpoint layouts: colbert-ai (colbertv2.0), PyLate / sentence-transformers, plain BERT.

Reading returns the pieces (backbone, tokenizer, projection weight, config); the `ColBERT`
class assembles them. Writing produces the colbertv2.0 layout plus our own config file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from latesearch._atomic import check_replaceable, replace_folder
from latesearch.errors import CheckpointError, ConfigError
from latesearch.modeling.config import CONFIG_FILE, ColBERTConfig, from_dict

COLBERT_METADATA = "artifact.metadata"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# artifact.metadata keys we map onto ColBERTConfig (colbert-ai writes many more; ignored).
_METADATA_KEYS = {
    "query_maxlen": "query_maxlen",
    "doc_maxlen": "doc_maxlen",
    "dim": "dim",
    "similarity": "similarity",
    "mask_punctuation": "mask_punctuation",
    "attend_to_mask_tokens": "attend_to_mask_tokens",
    "query_token_id": "query_token",
    "doc_token_id": "doc_token",
}


@dataclass
class CheckpointParts:
    """What a checkpoint folder holds, whatever its layout."""

    layout: str  # "latesearch" | "colbert-ai" | "pylate" | "hf"
    folder: Path
    config: ColBERTConfig
    backbone: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers tokenizer
    projection: torch.Tensor | None  # [dim, hidden], None for a plain backbone


def resolve_folder(name_or_path: str | os.PathLike) -> Path:
    """A local folder, or a hub name downloaded (where a hub is reachable)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: a checkpoint must be a folder, not a file")
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise CheckpointError(f"{path}: checkpoint folder does not exist")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name))
    except Exception as err:  # network, auth, unknown repo
        raise CheckpointError(
            f"{name!r} is neither a local folder nor a downloadable hub model ({err})"
        ) from None


def detect_layout(folder: Path) -> str:
    """Which checkpoint layout a folder holds."""
    if (folder / CONFIG_FILE).exists():
        return "latesearch"
    if (folder / COLBERT_METADATA).exists() or "HF_ColBERT" in _architectures(folder):
        return "colbert-ai"
    if _pylate_dense_folder(folder) is not None:
        return "pylate"
    if (folder / "config.json").exists():
        return "hf"
    raise CheckpointError(f"{folder}: no config.json, {COLBERT_METADATA} or modules.json found")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: malformed JSON ({err})") from None


def _architectures(folder: Path) -> list[str]:
    path = folder / "config.json"
    return list(_read_json(path).get("architectures") or []) if path.exists() else []


def _pylate_dense_folder(folder: Path) -> Path | None:
    modules_path = folder / "modules.json"
    if not modules_path.exists():
        return None
    modules = _read_json(modules_path)
    for module in modules if isinstance(modules, list) else []:
        if str(module.get("type", "")).endswith("Dense"):
            return folder / module.get("path", "")
    return None


def _load_weights(folder: Path) -> dict[str, torch.Tensor]:
    for name in WEIGHT_FILES:
        path = folder / name
        if path.exists():
            try:
                if name.endswith(".safetensors"):
                    return load_file(str(path))
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:
                raise CheckpointError(f"{path}: unreadable weights ({err})") from None
    raise CheckpointError(f"{folder}: no weights file (expected one of {WEIGHT_FILES})")


def _build_backbone(folder: Path, state: dict[str, torch.Tensor]):
    from transformers import AutoConfig, AutoModel

    try:
        hf_config = AutoConfig.from_pretrained(str(folder))
    except Exception as err:
        raise CheckpointError(
            f"{folder / 'config.json'}: not a usable model config ({err})"
        ) from None
    hf_config.architectures = None
    model = AutoModel.from_config(hf_config)
    prefix = model.base_model_prefix + "."
    own = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in own and not k.endswith("position_ids")]
    if missing:
        raise CheckpointError(
            f"{folder}: weights lack {len(missing)} backbone tensors, e.g. {missing[:3]}"
        )
    backbone_state = {k: v for k, v in own.items() if k in expected}
    for key, tensor in backbone_state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{folder}: tensor {key} has shape {tuple(tensor.shape)}, "
                f"config implies {tuple(expected[key].shape)}"
            )
    model.load_state_dict(backbone_state, strict=False)
    return model


def _load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:
        raise CheckpointError(f"{folder}: no usable tokenizer files ({err})") from None


def _colbert_ai_config(
    folder: Path, overrides: dict[str, Any], dim: int | None
) -> ColBERTConfig:
    values: dict[str, Any] = {} if dim is None else {"dim": int(dim)}
    meta_path = folder / COLBERT_METADATA
    if meta_path.exists():
        meta = _read_json(meta_path)
        meta = meta.get("config", meta) if isinstance(meta, dict) else meta
        if not isinstance(meta, dict):
            raise CheckpointError(f"{meta_path}: expected a JSON object")
        values.update(
            {ours: meta[theirs] for theirs, ours in _METADATA_KEYS.items() if theirs in meta}
        )
    return _config(values, overrides, str(meta_path))


def _pylate_config(folder: Path, overrides: dict[str, Any]) -> ColBERTConfig:
    st = folder / "config_sentence_transformers.json"
    meta = _read_json(st) if st.exists() else {}
    values: dict[str, Any] = {}
    mapping = {
        "query_length": "query_maxlen",
        "document_length": "doc_maxlen",
        "attend_to_expansion_tokens": "attend_to_mask_tokens",
        "do_query_expansion": "query_augmentation",
    }
    values.update({ours: meta[theirs] for theirs, ours in mapping.items() if theirs in meta})
    for theirs, ours in (("query_prefix", "query_token"), ("document_prefix", "doc_token")):
        if meta.get(theirs):
            values[ours] = str(meta[theirs]).strip()
    if "skiplist_words" in meta:
        values["mask_punctuation"] = bool(meta["skiplist_words"])
    return _config(values, overrides, str(st))


def _config(values: dict[str, Any], overrides: dict[str, Any], source: str) -> ColBERTConfig:
    try:
        return from_dict({**values, **overrides}, source=source)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def read_checkpoint(folder: Path, **overrides: Any) -> CheckpointParts:
    """Read any supported layout; `overrides` replace config fields (validated)."""
    layout = detect_layout(folder)
    tokenizer = _load_tokenizer(folder)
    projection = None
    if layout == "pylate":
        dense = _pylate_dense_folder(folder)
        state = _load_weights(folder)
        dense_state = _load_weights(dense)
        projection = dense_state.get("linear.weight")
        if projection is None:
            raise CheckpointError(f"{dense}: Dense weights lack 'linear.weight'")
        config = _pylate_config(folder, {"dim": int(projection.shape[0]), **overrides})
    else:
        state = _load_weights(folder)
        if layout == "latesearch":
            try:
                config = ColBERTConfig.load(folder)
                if overrides:
                    config = config.replace(**overrides)
            except ConfigError as err:
                raise CheckpointError(str(err)) from None
        elif layout == "colbert-ai":
            dim = state["linear.weight"].shape[0] if "linear.weight" in state else None
            config = _colbert_ai_config(folder, overrides, dim)
        else:
            config = _config({}, overrides, str(folder / "config.json"))
        if layout != "hf":
            projection = state.get("linear.weight")
            if projection is None:
                raise CheckpointError(f"{folder}: ColBERT weights lack 'linear.weight'")
    backbone = _build_backbone(folder, state)
    if projection is not None:
        expected = (config.dim, backbone.config.hidden_size)
        if tuple(projection.shape) != expected:
            raise CheckpointError(
                f"{folder}: projection has shape {tuple(projection.shape)}, "
                f"expected [dim, hidden] = {list(expected)}"
            )
    return CheckpointParts(layout, folder, config, backbone, tokenizer, projection)


def colbert_metadata(config: ColBERTConfig) -> dict[str, Any]:
    """colbert-ai's `artifact.metadata` fields for a config."""
    meta = {theirs: getattr(config, ours) for theirs, ours in _METADATA_KEYS.items()}
    meta.update(query_token="[Q]", doc_token="[D]", checkpoint_format="colbertv2.0")
    return meta


def write_checkpoint(
    folder: str | os.PathLike,
    *,
    config: ColBERTConfig,
    backbone,
    tokenizer,
    projection: torch.Tensor,
) -> Path:
    """Write the colbertv2.0 layout atomically (a sibling temp folder renamed into place).
    An existing `folder` is replaced only if it is empty or already a model checkpoint."""
    target = Path(folder)
    check_replaceable(target, "config.json", COLBERT_METADATA, *WEIGHT_FILES)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        hf_config = backbone.config.to_dict()
        hf_config["architectures"] = ["HF_ColBERT"]
        (tmp / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")
        prefix = backbone.base_model_prefix + "."
        state = {
            prefix + k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()
        }
        state["linear.weight"] = projection.detach().cpu().contiguous()
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(str(tmp))
        meta = json.dumps(colbert_metadata(config), indent=2) + "\n"
        (tmp / COLBERT_METADATA).write_text(meta, encoding="utf-8")
        config.save(tmp)
        replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
