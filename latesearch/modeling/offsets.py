"""Where each embedding of a query or document comes from: its token, what kind of token
it is, and its character span in the original string, through everything
`ColBERTTokenizer` does to a text (stripping, lowercasing, markers, truncation at the
maximum length, the punctuation skiplist, [MASK] augmentation). Needs a fast (Rust)
Hugging Face tokenizer, the only kind that reports offsets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latesearch.errors import ConfigError
from latesearch.modeling.tokenization import ColBERTTokenizer

KINDS = ("special", "marker", "text", "mask")


@dataclass(frozen=True)
class Token:
    """One scored (query) or stored (document) token: its position in the encoder's
    input, id, vocabulary entry, kind ("special": [CLS]/[SEP] and the like, "marker": [Q]
    or [D], "text": from the text, "mask": a [MASK] of query augmentation) and, for "text"
    tokens, its character span [start, end) in the original string."""

    position: int
    token_id: int
    token: str
    kind: str
    start: int | None = None
    end: int | None = None


def query_tokens(tokenizer: ColBERTTokenizer, text: str) -> list[Token]:
    """The tokens of `text` as a query, one per scored position, in the order of the
    query's embeddings (`encode_queries(..., return_mask=True)`'s scored rows)."""
    cfg = tokenizer.config
    extra = cfg.query_mask_tokens
    batch = tokenizer.queries([text])
    ids, scored = batch.input_ids[0].tolist(), batch.output_mask[0].tolist()
    content, spans = _content(tokenizer, text, cfg.query_maxlen - extra, 0)
    kinds = _frame_kinds(tokenizer, len(content)) + ["mask"] * extra
    spans = _frame_spans(tokenizer, spans) + [None] * extra
    out = []
    for position, (token_id, keep) in enumerate(zip(ids, scored, strict=True)):
        if not keep:
            continue
        kind = kinds[position] if position < len(kinds) else "mask"
        out.append(_token(tokenizer, position, token_id, kind, spans, position))
    return out


def document_tokens(tokenizer: ColBERTTokenizer, text: str) -> list[Token]:
    """The tokens of `text` as a document whose vectors an index stores, in order (one per
    stored vector of an unpooled index): truncated at `doc_maxlen`, punctuation of the
    skiplist left out."""
    limit = tokenizer.config.doc_maxlen - tokenizer.frame
    content, spans = _content(tokenizer, text, tokenizer.config.doc_maxlen, 1)
    content, spans = content[:limit], spans[:limit]
    ids = tokenizer.assemble(content, tokenizer.doc_token_id)
    kept = tokenizer.pad_documents([ids]).output_mask[0].tolist()
    kinds = _frame_kinds(tokenizer, len(content))
    spans = _frame_spans(tokenizer, spans)
    return [_token(tokenizer, p, token_id, kinds[p], spans, p)
            for p, (token_id, keep) in enumerate(zip(ids, kept, strict=True)) if keep]  # fmt: skip


def _token(tokenizer: ColBERTTokenizer, position: int, token_id: int, kind: str,
           spans: list, index: int) -> Token:  # fmt: skip
    span = spans[index] if index < len(spans) else None
    name = tokenizer.hf.convert_ids_to_tokens(int(token_id))
    start, end = span if span is not None else (None, None)
    return Token(position, int(token_id), str(name), kind, start, end)


def _frame_kinds(tokenizer: ColBERTTokenizer, n_content: int) -> list[str]:
    """The kind of each position of an assembled sequence of `n_content` text tokens."""
    kinds = ["special"] * len(tokenizer.head_ids) + ["text"] * n_content
    kinds += ["special"] * len(tokenizer.tail_ids)
    if tokenizer.config.markers:
        kinds.insert(1, "marker")
    return kinds


def _frame_spans(tokenizer: ColBERTTokenizer, spans: list) -> list:
    """The content's spans placed as `assemble` places the content (None elsewhere)."""
    out = [None] * len(tokenizer.head_ids) + list(spans) + [None] * len(tokenizer.tail_ids)
    if tokenizer.config.markers:
        out.insert(1, None)
    return out


def _content(tokenizer: ColBERTTokenizer, text: str, maxlen: int,
             extra: int) -> tuple[list[int], list[tuple[int, int]]]:  # fmt: skip
    """The text's own token ids, as the tokenizer truncates them, and each one's span in
    the original `text`."""
    if not getattr(tokenizer.hf, "is_fast", False):
        raise ConfigError("token offsets need a fast (Rust) Hugging Face tokenizer; this "
                          f"model's is {type(tokenizer.hf).__name__}")  # fmt: skip
    encoded = tokenizer._content([text], maxlen, extra=extra, offsets=True)
    origin = _origin(tokenizer, text)
    spans = [
        (int(origin[a]), int(origin[b - 1]) + 1 if b > a else int(origin[a]))
        for a, b in encoded["offset_mapping"][0]
    ]
    return list(encoded["input_ids"][0]), spans


def _origin(tokenizer: ColBERTTokenizer, text: str) -> np.ndarray:
    """For each character boundary of the prepared text (`ColBERTTokenizer.prepared`),
    the boundary of the original `text` it comes from."""
    shift, body = 0, text
    if tokenizer.config.strip_text:
        body = text.strip()
        shift = len(text) - len(text.lstrip())
    widths = np.ones(len(body), dtype=np.int64)
    if tokenizer.config.lowercase and len(body.lower()) != len(body):
        widths = np.array([len(c.lower()) for c in body], dtype=np.int64)  # "İ" -> 2 chars
    origin = np.append(np.repeat(np.arange(len(body)), widths), len(body))
    return origin + shift
