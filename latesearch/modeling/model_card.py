"""The model card (README.md) written beside a saved checkpoint: the metadata a hub page
shows, the encoder's settings, and how to load the model in latesearch and PyLate."""

from __future__ import annotations

import json
from typing import Any

from latesearch.modeling.config import ColBERTConfig
from latesearch.modeling.tokenization import ColBERTTokenizer


def model_card(
    config: ColBERTConfig,
    backbone: Any,
    *,
    base_model: str | None,
    colbert_ai: bool,
    tokenizer: Any = None,
) -> str:
    """README.md text with YAML front matter (library, tags, base model, pipeline)."""
    base = base_model or getattr(backbone.config, "_name_or_path", "") or ""
    front = ["---", "library_name: latesearch", "pipeline_tag: sentence-similarity", "tags:"]
    front += [f"- {tag}" for tag in ("ColBERT", "PyLate", "sentence-transformers",
                                      "late-interaction", "latesearch")]
    if base and not base.startswith(("/", ".")):
        front.append(f"base_model: {base}")
    front.append("---")
    markers = (
        f"{config.query_token!r} / {config.doc_token!r} inserted after the first token"
        if config.markers else "none (the backbone's own `[CLS] text [SEP]`)"
    )
    settings = [
        ("backbone", f"{backbone.config.model_type}, hidden size {backbone.config.hidden_size}"),
        ("dimension", str(config.dim)),
        ("query length", f"{config.query_maxlen} tokens"),
        ("document length", f"{config.doc_maxlen} tokens"),
        ("markers", markers),
        ("query augmentation ([MASK] expansion)",
         "yes" if config.query_augmentation else "no"),
        ("attend to [MASK] tokens", "yes" if config.attend_to_mask_tokens else "no"),
        ("punctuation skipped in documents", "yes" if config.mask_punctuation else "no"),
        ("similarity", config.similarity if config.normalize else "dot product (unnormalized)"),
        ("projection head", _head_text(config, backbone.config.hidden_size)),
    ]
    table = ["| setting | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in settings]
    gaps = pylate_gaps(config, tokenizer)
    if gaps:
        pylate = f"\nPyLate cannot encode this model as latesearch does ({'; '.join(gaps)}).\n"
    else:
        pylate = (
            "\nWith PyLate (which reads `modules.json` and "
            "`config_sentence_transformers.json`):\n\n```python\nfrom pylate import models\n\n"
            'model = models.ColBERT(model_name_or_path="<this model>")\n'
            'queries = model.encode(["a question"], is_query=True)\n```\n'
        )
    colbert = (
        "\ncolbert-ai reads `artifact.metadata` and the `linear.weight` projection.\n"
        if colbert_ai and config.markers and config.query_augmentation
        else "\ncolbert-ai always adds markers and [MASK] expansion, so it cannot encode "
        "this model as latesearch does.\n" if colbert_ai else ""
    )
    body = [
        "",
        "# ColBERT model",
        "",
        "A late-interaction retrieval model (ColBERT: one vector per token, scored by "
        "MaxSim) saved by [latesearch](https://pypi.org/project/latesearch/).",
        "",
        *table,
        "",
        "## Usage",
        "",
        "```python",
        "from latesearch import ColBERT, Index",
        "",
        'model = ColBERT.from_pretrained("<this model>")',
        'index = Index.build("corpus.jsonl", "indexes/corpus", model)',
        'hits = index.search("a question", k=10)',
        "```",
        pylate + colbert,
        "## Settings (latesearch_config.json)",
        "",
        "```json",
        json.dumps(config.to_dict(), indent=2),
        "```",
        "",
    ]
    return "\n".join(front + body)


def pylate_gaps(config: ColBERTConfig, tokenizer: Any = None) -> list[str]:
    """The settings of `config` PyLate has no equivalent for (with the Hugging Face
    `tokenizer`, also those that change this tokenizer's output: PyLate strips every text
    and looks skiplist words up in the vocabulary)."""
    gaps = []
    if config.drop_cls:
        gaps.append("it keeps the [CLS] vector")
    if not config.normalize:
        gaps.append("it normalizes every vector")
    if config.query_mask_tokens:
        gaps.append("it pads queries with [MASK] up to the query length")
    if tokenizer is not None:
        if not config.strip_text:
            plain = tokenizer("late interaction", add_special_tokens=False)["input_ids"]
            spaced = tokenizer(" late interaction ", add_special_tokens=False)["input_ids"]
            if plain != spaced:
                gaps.append("it strips surrounding whitespace, which this tokenizer encodes")
        if config.mask_punctuation and config.skiplist_lookup == "encode":
            ours = ColBERTTokenizer(tokenizer, config).skiplist
            theirs = ColBERTTokenizer(tokenizer, config.replace(skiplist_lookup="vocabulary"))
            if ours != theirs.skiplist:
                gaps.append("it looks punctuation up in the vocabulary, which skips other "
                            "tokens with this tokenizer")
    return gaps


def _head_text(config: ColBERTConfig, hidden: int) -> str:
    if config.simple_head:
        return f"one bias-free linear layer {hidden} -> {config.dim}"
    parts = [
        f"{layer['in_features']} -> {layer['out_features']}"
        + (" + bias" if layer["bias"] else "")
        + ("" if layer["activation"] == "identity" else f", {layer['activation']}")
        + (", residual" if layer["residual"] else "")
        for layer in config.head
    ]
    return "; ".join(parts)
