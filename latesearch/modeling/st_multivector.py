"""Sentence Transformers 6's `MultiVectorEncoder` checkpoints (`model_type:
"MultiVectorEncoder"` in `config_sentence_transformers.json`), read with the settings
Sentence Transformers encodes with:

- `Transformer` (the backbone, `sentence_bert_config.json`): `query_length`,
  `document_length` (else the backbone's length), `query_expansion` ("fixed", or "min" up
  to the same length: queries padded with [MASK] after [SEP], attended or not);
- `Dense` modules over `token_embeddings` (the projection head, any number of layers);
- `MultiVectorMask`: `skiplist_words` looked up as vocabulary tokens, dropped from
  documents (`skiplist_tasks` ["document"]);
- `Normalize` over `token_embeddings`: vectors normalized (absent: not normalized);
- `HierarchicalTokenPooling` (the last module, on documents only): the config's
  `doc_pooling` (`token_pooling.DocumentPooling`), the same clustering at encode time;
- `prompts`: empty, or one marker token per side (prepended text that is one token).

What latesearch's encoder cannot reproduce is refused with a CheckpointError naming the
module: token pooling followed by other modules or applied to queries, another pooling
class, a query-side skiplist, an allowlist of token ids, text prompts of several tokens,
`truncate_dim`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latesearch.errors import CheckpointError
from latesearch.modeling.backbones import (
    CheckpointParts,
    build_backbone,
    load_tokenizer,
    load_weights,
    make_config,
    read_json,
    usable_positions,
)
from latesearch.modeling.head import simplified

ST_CONFIG = "config_sentence_transformers.json"
MODEL_TYPE = "MultiVectorEncoder"
SIMILARITIES = (None, "maxsim", "meanmaxsim")  # meanmaxsim: maxsim / query tokens, same ranking


def is_multivector(folder: Path) -> bool:
    """Whether `folder` holds a Sentence Transformers 6 MultiVectorEncoder."""
    path = folder / ST_CONFIG
    if not path.is_file():
        return False
    settings = read_json(path)
    return isinstance(settings, dict) and settings.get("model_type") == MODEL_TYPE


def read_multivector(folder: Path, overrides: dict[str, Any], trust: bool) -> CheckpointParts:
    from latesearch.modeling.layouts import _read_dense  # the PyLate Dense reader, shared

    settings = read_json(folder / ST_CONFIG)
    source = str(folder / ST_CONFIG)
    modules = read_json(folder / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise CheckpointError(f"{folder / 'modules.json'}: expected a list of modules")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:1] != ["Transformer"] or kinds.count("Transformer") != 1:
        raise CheckpointError(f"{folder / 'modules.json'}: expected the Transformer first")
    body = folder / modules[0].get("path", "")
    backbone = build_backbone(body, load_weights(body), trust_remote_code=trust)
    tokenizer = load_tokenizer(body, trust_remote_code=trust)
    transformer = read_json(body / "sentence_bert_config.json")
    values = _lengths(
        transformer, tokenizer, backbone.config, str(body / "sentence_bert_config.json")
    )
    values.update(_prompts(settings, tokenizer, source))
    if settings.get("similarity_fn_name") not in SIMILARITIES:
        raise CheckpointError(
            f"{source}: similarity_fn_name {settings['similarity_fn_name']!r} is not supported"
        )
    if settings.get("truncate_dim") is not None:
        raise CheckpointError(f"{source}: truncate_dim is not supported (save the full model)")
    layers, head_state = [], {}
    values.update(normalize=False, mask_punctuation=False, skiplist=[])
    for module, kind in zip(modules[1:], kinds[1:], strict=True):
        where = folder / module.get("path", "")
        if kind == "Dense":
            _check_token_level(where, read_json(where / "config.json"))
            layer, tensors = _read_dense(where, module, len(layers))
            layers.append(layer)
            head_state.update(tensors)
        elif kind == "MultiVectorMask":
            values.update(_mask(where))
        elif kind == "Normalize":
            values["normalize"] = True
        elif kind == "HierarchicalTokenPooling" and module is modules[-1]:
            values["doc_pooling"] = _pooling(where)
        else:
            raise CheckpointError(_unsupported(where, kind))
    if not layers:
        raise CheckpointError(f"{folder / 'modules.json'}: no Dense projection module")
    if values["query_augmentation"] and "MultiVectorMask" not in kinds:
        raise CheckpointError(
            f"{folder / 'modules.json'}: query_expansion without a "
            "MultiVectorMask (its expansion tokens would not be scored)"
        )
    hidden, dim = backbone.config.hidden_size, layers[-1]["out_features"]
    values.update(dim=dim, head=simplified(layers, hidden, dim), strip_text=False)
    config = make_config(values, overrides, source)
    return CheckpointParts("sentence-transformers", folder, config, backbone, tokenizer, head_state)


def _lengths(transformer: Any, tokenizer: Any, hf_config: Any, source: str) -> dict[str, Any]:
    if not isinstance(transformer, dict):
        raise CheckpointError(f"{source}: expected a JSON object")
    limit = min(
        int(getattr(tokenizer, "model_max_length", 10**6) or 10**6),
        transformer.get("max_seq_length") or 10**6,
        usable_positions(hf_config) or 10**6,
    )
    query = transformer.get("query_length") or limit
    values: dict[str, Any] = {
        "doc_maxlen": transformer.get("document_length") or limit,
        "query_augmentation": False,
        "query_maxlen": query,
    }
    expansion = transformer.get("query_expansion")
    if expansion is None:
        return values
    if not isinstance(expansion, dict) or "length" not in expansion:
        raise CheckpointError(f"{source}: query_expansion must be an object with a length")
    length = int(expansion["length"])
    if expansion.get("strategy") == "min" and transformer.get("query_length") != length:
        raise CheckpointError(
            f"{source}: query_expansion 'min' lets queries grow past its "
            "length, which latesearch does not (set query_length to it)"
        )
    token = expansion.get("token")
    if token not in (None, tokenizer.mask_token):
        raise CheckpointError(
            f"{source}: query_expansion token {token!r} is not supported "
            "(latesearch expands queries with the mask token)"
        )
    values.update(
        query_augmentation=True,
        query_maxlen=length,
        attend_to_mask_tokens=bool(expansion.get("attend", False)),
    )
    return values


def _prompts(settings: dict[str, Any], tokenizer: Any, source: str) -> dict[str, Any]:
    prompts = settings.get("prompts") or {}
    query, document = prompts.get("query") or "", prompts.get("document") or ""
    if not query and not document:
        return {"markers": False}
    tokens = []
    for prompt in (query, document):
        token = prompt.strip()
        if not token or tokenizer.tokenize(token) != [token]:
            raise CheckpointError(
                f"{source}: prompts {prompts!r} are not supported: latesearch reads a prompt that "
                "is one marker token on each side (or none)"
            )
        tokens.append(token)
    return {"markers": True, "query_token": tokens[0], "doc_token": tokens[1]}


def _mask(folder: Path) -> dict[str, Any]:
    cfg = read_json(folder / "config.json")
    tasks = cfg.get("skiplist_tasks", ["document"])
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if cfg.get("keep_only_token_ids") is not None:
        raise CheckpointError(f"{folder / 'config.json'}: keep_only_token_ids is not supported")
    words = list(cfg.get("skiplist_words") or [])
    if words and tasks != ["document"]:
        raise CheckpointError(
            f"{folder / 'config.json'}: a skiplist on {tasks} is not "
            "supported (latesearch drops skiplist tokens from documents)"
        )
    return {"mask_punctuation": bool(words), "skiplist": words, "skiplist_lookup": "vocabulary"}


def _pooling(folder: Path) -> dict[str, Any]:
    """`HierarchicalTokenPooling`'s saved config as `doc_pooling` (documents only)."""
    path = folder / "config.json"
    cfg = read_json(path) if path.is_file() else {}
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    tasks = cfg.get("tasks", ["document"])
    if (tasks := [tasks] if isinstance(tasks, str) else list(tasks)) != ["document"]:
        raise CheckpointError(f"{path}: token pooling on {tasks} is not supported "
                              "(latesearch pools documents only)")  # fmt: skip
    return {"pool_factor": cfg.get("pool_factor", 1.0), "max_tokens": cfg.get("max_tokens"),
            "distance_threshold": cfg.get("distance_threshold"),
            "protected_tokens": cfg.get("num_protected_tokens", 1),
            # configs saved before the setting existed load without normalization, as in ST
            "normalize": cfg.get("normalize_embeddings", False)}  # fmt: skip


def _check_token_level(folder: Path, cfg: Any) -> None:
    name = cfg.get("module_input_name", "token_embeddings") if isinstance(cfg, dict) else None
    if name != "token_embeddings":
        raise CheckpointError(
            f"{folder / 'config.json'}: a Dense over {name!r} is not a token-level projection"
        )


def _unsupported(folder: Path, kind: str) -> str:
    if kind == "HierarchicalTokenPooling":
        return (
            f"{folder}: {kind} followed by other modules is not supported (latesearch pools "
            "the encoder's final vectors: put the pooling last, after Normalize)"
        )
    if kind.endswith("TokenPooling"):
        return f"{folder}: {kind} is not supported (HierarchicalTokenPooling is)"
    return f"{folder}: module {kind} is not supported in a MultiVectorEncoder checkpoint"
