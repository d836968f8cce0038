"""Delta checkpoints: a trained ColBERT stored as what differs from a pip-installed backbone.

A delta folder holds `delta.json` (format, the base model's name and SHA-256, the ColBERT
config, what is stored) and `delta.safetensors`: the projection, every backbone tensor that
changed (whole, or only its changed rows when few are), in half precision. Loading applies
it to the base weights after checking the base file's checksum, so a delta never silently
lands on the wrong backbone. The default model ships this way: a few MB instead of 90.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from latesearch._atomic import check_replaceable, replace_folder
from latesearch.errors import CheckpointError
from latesearch.modeling.backbones import CheckpointParts
from latesearch.modeling.checkpoints import read_checkpoint
from latesearch.modeling.config import ColBERTConfig

DELTA_FILE = "delta.json"
DELTA_WEIGHTS = "delta.safetensors"
DELTA_FORMAT = 1
_ROWS = "rows::"
_INDEX = "index::"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def base_weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder}: base model has no weights file")


def is_delta(folder: str | os.PathLike) -> bool:
    return (Path(folder) / DELTA_FILE).is_file()


def write_delta(
    model: Any,
    base_folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    base_name: str,
    row_fraction: float = 0.5,
    notes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store `model` (a ColBERT) as a delta against the backbone in `base_folder`.

    Tensors equal to the base (after rounding to float16) are left out; a 2-D tensor with
    fewer than `row_fraction` of its rows changed stores only those rows. Written to a
    temporary sibling folder and renamed. Returns the manifest written to `delta.json`.
    """
    base_folder, out = Path(base_folder), Path(out)
    check_replaceable(out, DELTA_FILE)
    base = read_checkpoint(base_folder).backbone.state_dict()
    tensors: dict[str, torch.Tensor] = {
        "linear.weight": model.linear.weight.detach().cpu().half().contiguous()
    }
    stored: dict[str, str] = {}
    for name, value in model.backbone.state_dict().items():
        if name.endswith("position_ids"):
            continue
        new = value.detach().cpu().half()
        old = base[name].half()
        if torch.equal(new, old):
            continue
        if new.dim() == 2:
            changed = (new != old).any(dim=1).nonzero().flatten()
            if len(changed) < row_fraction * new.shape[0]:
                tensors[_ROWS + name] = new[changed].contiguous()
                tensors[_INDEX + name] = changed.to(torch.int64).contiguous()
                stored[name] = f"{len(changed)} of {new.shape[0]} rows"
                continue
        tensors[name] = new.contiguous()
        stored[name] = "whole"
    manifest = {
        "format": "latesearch-delta",
        "format_version": DELTA_FORMAT,
        "base": {
            "name": base_name,
            "weights_file": base_weights_file(base_folder).name,
            "sha256": file_sha256(base_weights_file(base_folder)),
        },
        "colbert_config": model.config.to_dict(),
        "stored": stored,
        "dtype": "float16",
        "notes": notes or {},
    }
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / DELTA_WEIGHTS))
    os.chmod(tmp / DELTA_WEIGHTS, 0o644)
    (tmp / DELTA_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    replace_folder(tmp, out)
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / DELTA_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable delta manifest ({err})") from None
    if manifest.get("format") != "latesearch-delta" or manifest.get("format_version") != 1:
        raise CheckpointError(f"{path}: not a latesearch delta of format version {DELTA_FORMAT}")
    for key in ("base", "colbert_config"):
        if not isinstance(manifest.get(key), dict):
            raise CheckpointError(f"{path}: field {key!r} is missing or not an object")
    return manifest


def read_delta(
    folder: str | os.PathLike, base_folder: str | os.PathLike, **overrides: Any
) -> CheckpointParts:
    """Apply the delta in `folder` to the backbone in `base_folder` (checksum verified)."""
    folder, base_folder = Path(folder), Path(base_folder)
    manifest = read_manifest(folder)
    weights = base_weights_file(base_folder)
    expected = manifest["base"].get("sha256")
    if file_sha256(weights) != expected:
        raise CheckpointError(
            f"{weights}: checksum differs from the base this delta was made for "
            f"({manifest['base'].get('name')}, sha256 {str(expected)[:12]}...); "
            "reinstall that backbone package or load a full checkpoint"
        )
    try:
        source = str(folder / DELTA_FILE)
        config = ColBERTConfig.from_dict(manifest["colbert_config"], source=source)
        if overrides:
            config = config.replace(**overrides)
    except Exception as err:
        raise CheckpointError(f"{folder / DELTA_FILE}: bad colbert_config ({err})") from None
    try:
        tensors = load_file(str(folder / DELTA_WEIGHTS))
    except Exception as err:
        raise CheckpointError(f"{folder / DELTA_WEIGHTS}: unreadable ({err})") from None
    parts = read_checkpoint(base_folder)
    backbone = parts.backbone
    state = backbone.state_dict()
    with torch.no_grad():
        for key, value in tensors.items():
            if key == "linear.weight" or key.startswith(_INDEX):
                continue
            name = key[len(_ROWS):] if key.startswith(_ROWS) else key
            if name not in state:
                raise CheckpointError(f"{folder / DELTA_WEIGHTS}: unknown tensor {name!r}")
            target = state[name]
            if key.startswith(_ROWS):
                rows = tensors[_INDEX + name]
                target[rows] = value.to(target.dtype)
            elif tuple(value.shape) != tuple(target.shape):
                raise CheckpointError(
                    f"{folder / DELTA_WEIGHTS}: {name} has shape {tuple(value.shape)}, "
                    f"the base has {tuple(target.shape)}"
                )
            else:
                target.copy_(value.to(target.dtype))
    projection = tensors.get("linear.weight")
    if projection is None or tuple(projection.shape) != (config.dim, backbone.config.hidden_size):
        raise CheckpointError(f"{folder / DELTA_WEIGHTS}: missing or misshapen linear.weight")
    return CheckpointParts(
        "latesearch-delta", folder, config, backbone, parts.tokenizer, projection.float()
    )
