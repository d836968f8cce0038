"""Query and document tokenization with ColBERT markers, [MASK] augmentation and skiplists."""

from __future__ import annotations

import contextlib
import string
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from latesearch.errors import CheckpointError, InputError
from latesearch.modeling.config import ColBERTConfig


@dataclass
class TokenBatch:
    """Token ids ready for the encoder.

    `attention_mask` says what the encoder attends to; `output_mask` says which output
    positions are embeddings to keep (queries: all positions the paper scores, documents:
    real tokens minus punctuation).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    output_mask: torch.Tensor

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(*(t.to(device, non_blocking=True) for t in self.astuple()))

    def astuple(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.input_ids, self.attention_mask, self.output_mask

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def check_texts(texts: Sequence[str], kind: str, *, allow_empty: bool) -> list[str]:
    """Validate a batch of texts: every item a str; queries also non-blank."""
    if isinstance(texts, str):
        plural = {"query": "queries"}.get(kind, f"{kind}s")
        raise InputError(f"{plural} must be a list of strings, not a single string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InputError(f"{kind} {i} is {type(text).__name__}, expected str", field=f"{i}")
        if not allow_empty and not text.strip():
            raise InputError(f"{kind} {i} is empty or whitespace only", field=f"{i}")
    return out


class ColBERTTokenizer:
    """Wraps a Hugging Face tokenizer; inserts [Q]/[D] markers by token id (unless
    ``config.markers`` is False).

    Query: ``[CLS] [Q] tokens [SEP]`` padded with [MASK] to ``query_maxlen`` (query
    augmentation), truncated beyond. Document: ``[CLS] [D] tokens [SEP]`` truncated at
    ``doc_maxlen`` and padded to the batch's longest. Same ids as colbert-ai.
    """

    def __init__(self, hf_tokenizer, config: ColBERTConfig) -> None:
        self.hf = hf_tokenizer
        self.config = config
        self._gate = _TruncationGate()
        self.query_token_id = self._token_id(config.query_token, "query_token")
        self.doc_token_id = self._token_id(config.doc_token, "doc_token")
        specials = {
            "cls": hf_tokenizer.cls_token_id,
            "sep": hf_tokenizer.sep_token_id,
            "mask": hf_tokenizer.mask_token_id,
            "pad": hf_tokenizer.pad_token_id,
        }
        missing = [name for name, value in specials.items() if value is None]
        if missing:
            raise CheckpointError(f"tokenizer has no {', '.join(missing)} token")
        self.cls_id, self.sep_id = specials["cls"], specials["sep"]
        self.mask_id, self.pad_id = specials["mask"], specials["pad"]
        self.skiplist = self._punctuation_ids() if config.mask_punctuation else frozenset()
        self.query_prefix = [self.cls_id, self.query_token_id] if config.markers else [self.cls_id]
        self.doc_prefix = [self.cls_id, self.doc_token_id] if config.markers else [self.cls_id]
        self.frame = len(self.query_prefix) + 1  # prefix + [SEP]

    def _token_id(self, token: str, field: str) -> int:
        token_id = self.hf.convert_tokens_to_ids(token)
        if token_id is None or (
            token_id == self.hf.unk_token_id and token != self.hf.unk_token
        ):
            raise CheckpointError(f"marker {field}={token!r} is not in the tokenizer's vocabulary")
        return int(token_id)

    def _punctuation_ids(self) -> frozenset[int]:
        ids = set()
        for symbol in string.punctuation:
            encoded = self.hf.encode(symbol, add_special_tokens=False)
            if encoded:
                ids.add(encoded[0])
        return frozenset(ids)

    def _content_ids(self, texts: list[str], maxlen: int) -> list[list[int]]:
        if not texts:
            return []
        with self._gate.holding(maxlen - self.frame):
            encoded = self.hf(
                texts,
                add_special_tokens=False,
                truncation=True,
                max_length=maxlen - self.frame,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
        return encoded["input_ids"]

    def query_lengths(self, texts: list[str]) -> list[int]:
        """Token counts (markers included) each query would have before padding."""
        return [len(ids) + self.frame for ids in self._content_ids(texts, self.config.query_maxlen)]

    def queries(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenize queries. With augmentation all ``query_maxlen`` positions are scored."""
        texts = check_texts(texts, "query", allow_empty=False)
        cfg = self.config
        content = self._content_ids(texts, cfg.query_maxlen)
        longest = max(len(c) for c in content) + self.frame
        width = cfg.query_maxlen if cfg.query_augmentation else longest
        fill = self.mask_id if cfg.query_augmentation else self.pad_id
        ids = torch.full((len(texts), width), fill, dtype=torch.long)
        attention = torch.zeros((len(texts), width), dtype=torch.long)
        for row, tokens in enumerate(content):
            seq = [*self.query_prefix, *tokens, self.sep_id]
            ids[row, : len(seq)] = torch.tensor(seq)
            attention[row, : len(seq)] = 1
        if cfg.query_augmentation:
            output = torch.ones_like(ids, dtype=torch.bool)
            if cfg.attend_to_mask_tokens:
                attention[ids == self.mask_id] = 1
        else:
            output = attention.bool()
        return TokenBatch(ids, attention, output)

    def document_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Full token ids (``[CLS] [D] ... [SEP]``) for each document, unpadded."""
        texts = check_texts(texts, "document", allow_empty=True)
        content = self._content_ids(texts, self.config.doc_maxlen)
        return [[*self.doc_prefix, *c, self.sep_id] for c in content]

    def pad_documents(self, id_lists: Sequence[Sequence[int]]) -> TokenBatch:
        """Pad documents' ids to the batch's longest; the output mask drops punctuation."""
        width = max(len(ids) for ids in id_lists)
        ids = torch.full((len(id_lists), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(id_lists), width), dtype=torch.long)
        for row, seq in enumerate(id_lists):
            ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
            attention[row, : len(seq)] = 1
        output = attention.bool()
        if self.skiplist:
            skip = torch.tensor(sorted(self.skiplist), dtype=torch.long)
            output &= ~torch.isin(ids, skip)
        return TokenBatch(ids, attention, output)

    def documents(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenize and pad documents in one call."""
        return self.pad_documents(self.document_ids(texts))


class _TruncationGate:
    """Lets calls with the same truncation length run together and keeps calls with
    another length out meanwhile. A fast tokenizer sets its truncation length on the
    shared Rust object at each call, so a document batch and a query batch tokenized at
    the same time (a server adding documents while it searches) could truncate each
    other's texts, or fail with "Already borrowed"; calls of one length (the indexer's
    tokenizer threads) never conflict."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._length: int | None = None
        self._active = 0

    def __reduce__(self) -> tuple[type, tuple]:
        return _TruncationGate, ()  # a copy (deepcopy, pickle) starts with a gate of its own

    @contextlib.contextmanager
    def holding(self, length: int) -> Iterator[None]:
        with self._cond:
            while self._active and self._length != length:
                self._cond.wait()
            self._length = length
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()
