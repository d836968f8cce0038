"""The checkpoint layouts other libraries write, read into latesearch's pieces with the
settings their reference library encodes with:

- colbert-ai (colbertv2.0): `HF_ColBERT` weights (`<prefix>.` backbone + `linear.weight`)
  and `artifact.metadata`; markers by token id, punctuation looked up by encoding.
- PyLate / sentence-transformers: `modules.json` with a Transformer and one or more Dense
  modules, `config_sentence_transformers.json` (prefixes, lengths, expansion, skiplist);
  texts stripped, skiplist words looked up in the vocabulary.
- BGE-M3 (FlagEmbedding): XLM-RoBERTa plus `colbert_linear.pt` (with bias) over the last
  states, [CLS] dropped, no markers, no expansion.
- Hofstätter's ColBERT: `bert_model.` backbone plus `compressor` (with bias), no markers,
  8 attended [MASK] appended to queries, unnormalized vectors scored by dot product.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import torch

from latesearch.errors import CheckpointError
from latesearch.modeling.backbones import (
    CheckpointParts,
    build_backbone,
    load_tensor_file,
    load_tokenizer,
    load_weights,
    make_config,
    read_json,
    resolve_folder,
    usable_positions,
)
from latesearch.modeling.config import ColBERTConfig
from latesearch.modeling.head import simplified

COLBERT_METADATA = "artifact.metadata"
BGE_M3_COLBERT = "colbert_linear.pt"
PYLATE_CONFIG = "config_sentence_transformers.json"
HOFSTAETTER_MASKS = 8
BGE_M3_MAXLEN = 512  # FlagEmbedding's default query and passage lengths
# artifact.metadata keys mapped onto ColBERTConfig (colbert-ai writes many more; ignored)
METADATA_KEYS = {
    "query_maxlen": "query_maxlen",
    "doc_maxlen": "doc_maxlen",
    "dim": "dim",
    "similarity": "similarity",
    "mask_punctuation": "mask_punctuation",
    "attend_to_mask_tokens": "attend_to_mask_tokens",
    "query_token_id": "query_token",
    "doc_token_id": "doc_token",
}
# settings colbert-ai has no key for; latesearch records them in artifact.metadata too
EXTRA_METADATA_KEYS = (
    "markers", "query_augmentation", "query_mask_tokens", "strip_text", "lowercase",
    "skiplist", "skiplist_lookup", "drop_cls", "normalize",
)
ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.GELU": "gelu",
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
}


# ---------------------------------------------------------------------- colbert-ai
def read_colbert_ai(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    state = load_weights(folder)
    projection = state.get("linear.weight")
    if projection is None:
        raise CheckpointError(f"{folder}: ColBERT weights lack 'linear.weight'")
    values: dict[str, Any] = {"dim": int(projection.shape[0])}
    meta_path = folder / COLBERT_METADATA
    if meta_path.exists():
        meta = read_json(meta_path)
        meta = meta.get("config", meta) if isinstance(meta, dict) else meta
        if not isinstance(meta, dict):
            raise CheckpointError(f"{meta_path}: expected a JSON object")
        values.update({ours: meta[theirs] for theirs, ours in METADATA_KEYS.items()
                       if theirs in meta})
        values.update({key: meta[key] for key in EXTRA_METADATA_KEYS if key in meta})
    config = make_config(values, overrides, str(meta_path))
    backbone = build_backbone(folder, state, trust_remote_code=trust)
    tokenizer = load_tokenizer(folder, trust_remote_code=trust)
    return CheckpointParts("colbert-ai", folder, config, backbone, tokenizer, projection)


# ---------------------------------------------------------------------- PyLate
def pylate_modules(folder: Path) -> list[dict[str, Any]] | None:
    """modules.json's entries when they hold a Dense module (a PyLate model), else None
    (a plain sentence-transformers model is a backbone)."""
    path = folder / "modules.json"
    if not path.exists():
        return None
    modules = read_json(path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise CheckpointError(f"{path}: expected a list of modules")
    if not any(str(m.get("type", "")).endswith("Dense") for m in modules):
        return None
    return modules


def read_pylate(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    modules = pylate_modules(folder) or []
    transformers = [m for m in modules if str(m.get("type", "")).endswith("Transformer")]
    if len(transformers) != 1:
        raise CheckpointError(f"{folder / 'modules.json'}: expected one Transformer module")
    body = folder / transformers[0].get("path", "")
    sbert = body / "sentence_bert_config.json"
    lowercase = bool(sbert.exists() and read_json(sbert).get("do_lower_case"))
    backbone = build_backbone(body, load_weights(body), trust_remote_code=trust)
    tokenizer = load_tokenizer(body, trust_remote_code=trust)
    hidden = backbone.config.hidden_size
    layers, head_state = [], {}
    for module in (m for m in modules if str(m.get("type", "")).endswith("Dense")):
        index = len(layers)
        layer, tensors = _read_dense(folder / module.get("path", ""), module, index)
        layers.append(layer)
        head_state.update(tensors)
    settings = read_json(folder / PYLATE_CONFIG) if (folder / PYLATE_CONFIG).exists() else {}
    values = pylate_values(settings, str(folder / PYLATE_CONFIG))
    dim = layers[-1]["out_features"]
    values.update(dim=dim, head=simplified(layers, hidden, dim), lowercase=lowercase)
    config = make_config(values, overrides, str(folder / PYLATE_CONFIG))
    return CheckpointParts("pylate", folder, config, backbone, tokenizer, head_state)


def _read_dense(
    folder: Path, module: dict[str, Any], index: int
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """One Dense module as a head layer and its tensors, named as the head names them."""
    cfg = read_json(folder / "config.json")
    pylate_type = "pylate" in str(module.get("type", ""))
    default = "torch.nn.modules.linear.Identity" if pylate_type else \
        "torch.nn.modules.activation.Tanh"  # sentence-transformers' Dense default
    activation = cfg.get("activation_function", default)
    if activation not in ACTIVATIONS:
        raise CheckpointError(
            f"{folder / 'config.json'}: activation {activation!r} is not supported "
            f"(supported: {sorted(ACTIVATIONS)})"
        )
    try:
        layer = {
            "in_features": int(cfg["in_features"]),
            "out_features": int(cfg["out_features"]),
            "bias": bool(cfg.get("bias", True)),
            "activation": ACTIVATIONS[activation],
            "residual": bool(cfg.get("use_residual", False)),
        }
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{folder / 'config.json'}: bad Dense config ({err})") from None
    weights = load_weights(folder)
    name = "linear" if index == 0 else f"layers.{index - 1}"
    tensors = {f"{name}.{k.split('.')[-1]}": v for k, v in weights.items()
               if k.startswith("linear.")}
    if "residual.weight" in weights:
        tensors[f"residuals.{index}.weight"] = weights["residual.weight"]
    return layer, tensors


def pylate_values(settings: dict[str, Any], source: str) -> dict[str, Any]:
    """ColBERTConfig values for PyLate's settings (its defaults where one is missing)."""
    if not isinstance(settings, dict):
        raise CheckpointError(f"{source}: expected a JSON object")
    query_prefix = settings.get("query_prefix", "[Q] ")
    doc_prefix = settings.get("document_prefix", "[D] ")
    query_prefix = "[Q] " if query_prefix is None else query_prefix
    doc_prefix = "[D] " if doc_prefix is None else doc_prefix
    if bool(query_prefix) != bool(doc_prefix):
        raise CheckpointError(
            f"{source}: a prefix on one side only (query {query_prefix!r}, document "
            f"{doc_prefix!r}) is not supported"
        )
    expansion = settings.get("do_query_expansion", True)
    skiplist = settings.get("skiplist_words", list(string.punctuation))
    values: dict[str, Any] = {
        "query_maxlen": settings.get("query_length", 32) or 32,
        "doc_maxlen": settings.get("document_length", 180) or 180,
        "query_augmentation": expansion,
        "attend_to_mask_tokens": bool(settings.get("attend_to_expansion_tokens")) and expansion,
        "markers": bool(query_prefix),
        "mask_punctuation": bool(skiplist),
        "skiplist": list(skiplist or []),
        "skiplist_lookup": "vocabulary",
        "strip_text": True,
    }
    if query_prefix:
        values.update(query_token=query_prefix, doc_token=doc_prefix)
    return values


# ---------------------------------------------------------------------- BGE-M3
def read_bge_m3(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    backbone = build_backbone(folder, load_weights(folder), trust_remote_code=trust)
    tokenizer = load_tokenizer(folder, trust_remote_code=trust)
    tensors = load_tensor_file(folder / BGE_M3_COLBERT)
    weight, bias = tensors.get("weight"), tensors.get("bias")
    if weight is None or bias is None:
        raise CheckpointError(f"{folder / BGE_M3_COLBERT}: expected 'weight' and 'bias'")
    dim, hidden = (int(n) for n in weight.shape)
    maxlen = min(BGE_M3_MAXLEN, usable_positions(backbone.config) or BGE_M3_MAXLEN)
    values = {
        "dim": dim, "query_maxlen": maxlen, "doc_maxlen": maxlen,
        "markers": False, "query_augmentation": False, "mask_punctuation": False,
        "drop_cls": True,
        "head": [{"in_features": hidden, "out_features": dim, "bias": True}],
    }
    config = make_config(values, overrides, str(folder / BGE_M3_COLBERT))
    head = {"linear.weight": weight, "linear.bias": bias}
    return CheckpointParts("bge-m3", folder, config, backbone, tokenizer, head)


# ---------------------------------------------------------------------- Hofstätter
def read_hofstaetter(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    base_name = read_json(folder / "config.json").get("bert_model")
    if not isinstance(base_name, str) or not base_name:
        raise CheckpointError(f"{folder / 'config.json'}: bert_model must name the backbone")
    base = resolve_folder(base_name)
    state = load_weights(folder)
    weight, bias = state.get("compressor.weight"), state.get("compressor.bias")
    if weight is None:
        raise CheckpointError(f"{folder}: weights lack 'compressor.weight'")
    backbone = build_backbone(folder, state, config_folder=base, trust_remote_code=trust)
    has_tokenizer = any((folder / n).exists() for n in ("tokenizer.json", "vocab.txt"))
    tokenizer = load_tokenizer(folder if has_tokenizer else base, trust_remote_code=trust)
    dim, hidden = (int(n) for n in weight.shape)
    maxlen = min(512, usable_positions(backbone.config) or 512)
    values = {
        "dim": dim, "query_maxlen": maxlen, "doc_maxlen": maxlen,
        "markers": False, "mask_punctuation": False, "normalize": False,
        # queries: 8 attended [MASK] appended after [SEP] (the model card's usage)
        "query_augmentation": True, "query_mask_tokens": HOFSTAETTER_MASKS,
        "attend_to_mask_tokens": True,
        "head": [{"in_features": hidden, "out_features": dim, "bias": bias is not None}],
    }
    config = make_config(values, overrides, str(folder / "config.json"))
    head = {"linear.weight": weight} | ({} if bias is None else {"linear.bias": bias})
    return CheckpointParts("hofstaetter", folder, config, backbone, tokenizer, head)


def colbert_ai_metadata(config: ColBERTConfig) -> dict[str, Any]:
    """colbert-ai's `artifact.metadata` fields for a config, plus the settings colbert-ai
    has no key for (so that nothing that changes encoding goes unrecorded)."""
    meta = {theirs: getattr(config, ours) for theirs, ours in METADATA_KEYS.items()}
    meta.update(query_token="[Q]", doc_token="[D]", checkpoint_format="colbertv2.0")
    extra = config.to_dict()
    meta.update({key: extra[key] for key in EXTRA_METADATA_KEYS})
    return meta
