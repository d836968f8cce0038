"""Writing a checkpoint that latesearch, colbert-ai and PyLate all read the same way:

    config.json, model.safetensors    the backbone (and colbert-ai's `linear.weight`)
    tokenizer files
    latesearch_config.json            every setting (ColBERTConfig)
    artifact.metadata                 colbert-ai's settings (paper's head only)
    modules.json, 1_Dense/...         PyLate's modules: the Transformer and the head's
    config_sentence_transformers.json   Dense layers; prefixes, lengths, expansion, skiplist
    sentence_bert_config.json
    README.md                         the model card

The folder is staged beside the target and renamed into place; `push_to_hub` uploads
the same folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from latesearch._atomic import check_replaceable, replace_folder
from latesearch.modeling.config import CONFIG_FILE, ColBERTConfig
from latesearch.modeling.layouts import (
    ACTIVATIONS,
    COLBERT_METADATA,
    PYLATE_CONFIG,
    colbert_ai_metadata,
)
from latesearch.modeling.model_card import model_card

ACTIVATION_NAMES = {ours: theirs for theirs, ours in ACTIVATIONS.items()}


def write_checkpoint(
    folder: str | os.PathLike,
    *,
    config: ColBERTConfig,
    backbone,
    tokenizer,
    head,
    base_model: str | None = None,
) -> Path:
    """Write the checkpoint atomically (a sibling temp folder renamed into place). An
    existing `folder` is replaced only if it is empty or already a model checkpoint."""
    target = Path(folder)
    check_replaceable(target, "config.json", COLBERT_METADATA, CONFIG_FILE, "model.safetensors",
                      "pytorch_model.bin")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write_files(tmp, config=config, backbone=backbone, tokenizer=tokenizer, head=head,
                    base_model=base_model)
        replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_files(folder: Path, *, config, backbone, tokenizer, head, base_model) -> None:
    """Every file of the checkpoint into an existing (empty) `folder`."""
    colbert_ai = config.simple_head
    hf_config = backbone.config.to_dict()
    hf_config["architectures"] = ["HF_ColBERT"] if colbert_ai else [type(backbone).__name__]
    _write_json(folder / "config.json", hf_config)
    prefix = backbone.base_model_prefix + "."
    state = {prefix + k: _cpu(v) for k, v in backbone.state_dict().items()}
    if colbert_ai:
        state["linear.weight"] = _cpu(head.linear.weight)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(str(folder))
    if colbert_ai:
        _write_json(folder / COLBERT_METADATA, colbert_ai_metadata(config))
    config.save(folder)
    _write_pylate(folder, config, head)
    (folder / "README.md").write_text(
        model_card(config, backbone, base_model=base_model, colbert_ai=colbert_ai,
                   tokenizer=tokenizer),
        encoding="utf-8",
    )


def _write_pylate(folder: Path, config: ColBERTConfig, head) -> None:
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"}]
    linears = [head.linear, *head.layers]
    for i, (spec, linear) in enumerate(zip(head.specs, linears, strict=True)):
        path = f"{i + 1}_Dense"
        modules.append({"idx": i + 1, "name": str(i + 1), "path": path,
                        "type": "pylate.models.Dense.Dense"})
        (folder / path).mkdir()
        dense = {
            "in_features": spec["in_features"],
            "out_features": spec["out_features"],
            "bias": spec["bias"],
            "activation_function": ACTIVATION_NAMES[spec["activation"]],
        }
        if spec["residual"]:  # only where used: PyLate before 1.3 refuses the key
            dense["use_residual"] = True
        _write_json(folder / path / "config.json", dense)
        tensors = {"linear.weight": _cpu(linear.weight)}
        if linear.bias is not None:
            tensors["linear.bias"] = _cpu(linear.bias)
        if str(i) in head.residuals:
            tensors["residual.weight"] = _cpu(head.residuals[str(i)].weight)
        save_file(tensors, str(folder / path / "model.safetensors"), metadata={"format": "pt"})
    _write_json(folder / "modules.json", modules)
    _write_json(folder / "sentence_bert_config.json",
                {"max_seq_length": config.doc_maxlen, "do_lower_case": config.lowercase})
    _write_json(folder / PYLATE_CONFIG, pylate_settings(config))


def pylate_settings(config: ColBERTConfig) -> dict[str, Any]:
    """PyLate's `config_sentence_transformers.json` for a config."""
    return {
        "model_type": "ColBERT",
        "prompts": {},
        "default_prompt_name": None,
        "similarity_fn_name": "MaxSim",
        "query_prefix": config.query_token if config.markers else "",
        "document_prefix": config.doc_token if config.markers else "",
        "query_length": config.query_maxlen,
        "document_length": config.doc_maxlen,
        "attend_to_expansion_tokens": config.attend_to_mask_tokens,
        "skiplist_words": list(config.skiplist) if config.mask_punctuation else [],
        "do_query_expansion": config.query_augmentation,
    }


def push_to_hub(
    save: Any,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload latesearch ColBERT model",
    api: Any = None,
) -> str:
    """Save into a temporary folder with `save(folder)` (the same code path as saving),
    then create the hub repository (if needed) and upload the folder. Returns the URL of
    the commit. `api`: a `huggingface_hub.HfApi` (default: a new one with `token`)."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="latesearch-push-") as tmp:
        folder = save(Path(tmp) / "model")
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), commit_message=commit_message
        )
    return str(getattr(info, "commit_url", info))


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().cpu().contiguous()
