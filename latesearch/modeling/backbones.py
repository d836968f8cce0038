"""Loading a checkpoint's pieces: weights files, the backbone (whatever the prefix its
wrapper gave the tensor names), the tokenizer, and the config built from a layout's values."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from latesearch.errors import CheckpointError, ConfigError
from latesearch.modeling.config import ColBERTConfig

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# backbone tensors a ColBERT never uses; a checkpoint may leave them out (colbert-ai, PyLate)
OPTIONAL_TENSORS = ("pooler.",)


@dataclass
class CheckpointParts:
    """What a checkpoint folder holds, whatever its layout."""

    layout: str  # see detect_layout
    folder: Path
    config: ColBERTConfig
    backbone: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers tokenizer
    # the head's weights (named as in ProjectionHead.state_dict()), or the paper's single
    # [dim, hidden] weight; None for a plain backbone (a new seeded projection)
    head_state: dict[str, torch.Tensor] | torch.Tensor | None


def usable_positions(hf_config: Any) -> int | None:
    """The most tokens the backbone takes: its position embeddings, less the two that
    RoBERTa-style models reserve for their padding offset (None: not bounded)."""
    positions = getattr(hf_config, "max_position_embeddings", None)
    if not positions:
        return None
    if getattr(hf_config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        return int(positions) - 2
    return int(positions)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: malformed JSON ({err})") from None


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of `folder`'s model.safetensors (or pytorch_model.bin)."""
    for name in WEIGHT_FILES:
        path = folder / name
        if path.exists():
            return load_tensor_file(path)
    raise CheckpointError(f"{folder}: no weights file (expected one of {WEIGHT_FILES})")


def load_tensor_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: unreadable weights ({err})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a mapping of names to tensors")
    return state


def _hf_config(folder: Path, trust_remote_code: bool):
    from transformers import AutoConfig

    config_path = folder / "config.json"
    raw = read_json(config_path)
    if raw.get("auto_map") and not trust_remote_code:
        raise CheckpointError(
            f"{config_path}: this model runs its own code (auto_map "
            f"{sorted(raw['auto_map'])}); load it with trust_remote_code=True if you trust "
            "its authors"
        )
    try:
        return AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except Exception as err:
        raise CheckpointError(f"{config_path}: not a usable model config ({err})") from None


def _backbone_keys(
    state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """`state`'s backbone tensors renamed as the backbone names them: the prefix a ColBERT
    wrapper puts before them ("bert.", "roberta.", "bert_model.", "model."...) is found
    from the names themselves."""
    prefixes: Counter[str] = Counter()
    for key in state:
        for name in expected:
            if key == name or key.endswith("." + name):
                prefixes[key[: len(key) - len(name)]] += 1
    if not prefixes:
        return {}
    prefix = prefixes.most_common(1)[0][0]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def build_backbone(
    folder: Path,
    state: dict[str, torch.Tensor],
    *,
    config_folder: Path | None = None,
    trust_remote_code: bool = False,
):
    """The backbone of `config_folder`'s (default: `folder`'s) config.json with the
    backbone tensors of `state`. Tensors a ColBERT never uses (a pooler) may be missing:
    they are zeroed, so that loading is deterministic."""
    from transformers import AutoModel

    hf_config = _hf_config(config_folder or folder, trust_remote_code)
    hf_config.architectures = None
    try:
        model = AutoModel.from_config(hf_config, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise CheckpointError(f"{folder}: cannot build the backbone ({err})") from None
    expected = model.state_dict()
    own = _backbone_keys(state, expected)
    missing = [k for k in expected if k not in own and not k.endswith("position_ids")]
    required = [k for k in missing if not k.startswith(OPTIONAL_TENSORS)]
    if required:
        raise CheckpointError(
            f"{folder}: weights lack {len(required)} backbone tensors, e.g. {required[:3]}"
        )
    for key in missing:
        own[key] = torch.zeros_like(expected[key])
    backbone_state = {k: v for k, v in own.items() if k in expected}
    for key, tensor in backbone_state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{folder}: tensor {key} has shape {tuple(tensor.shape)}, "
                f"config implies {tuple(expected[key].shape)}"
            )
    model.load_state_dict(backbone_state, strict=False)
    return model


def load_tokenizer(folder: Path, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except Exception as err:
        raise CheckpointError(f"{folder}: no usable tokenizer files ({err})") from None


def make_config(values: dict[str, Any], overrides: dict[str, Any], source: str) -> ColBERTConfig:
    try:
        return ColBERTConfig.from_dict({**values, **overrides}, source=source)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


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
