"""Query and document tokenization with ColBERT markers, [MASK] augmentation and skiplists."""

from __future__ import annotations

import contextlib
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
    """Wraps a Hugging Face tokenizer and builds ColBERT's inputs, as colbert-ai and PyLate
    do: the tokenizer's own special tokens around the text, truncated one token short, and
    the marker token (``config.query_token`` / ``doc_token``, unless ``config.markers`` is
    False) inserted at position 1.

    Query: ``[CLS] [Q] tokens [SEP]`` padded with [MASK] to ``query_maxlen`` (query
    augmentation), truncated beyond. Document: ``[CLS] [D] tokens [SEP]`` truncated at
    ``doc_maxlen`` and padded to the batch's longest. Punctuation (``config.skiplist``,
    looked up as colbert-ai or PyLate does) is dropped from documents' outputs;
    ``config.drop_cls`` drops position 0 from both (BGE-M3's multi-vector output).
    """

    def __init__(self, hf_tokenizer, config: ColBERTConfig) -> None:
        self.hf = hf_tokenizer
        self.config = config
        self._gate = _TruncationGate()
        self.query_token_id = self._token_id(config.query_token, "query_token")
        self.doc_token_id = self._token_id(config.doc_token, "doc_token")
        mask_id = hf_tokenizer.mask_token_id
        if mask_id is None and config.query_augmentation:
            raise CheckpointError(
                "tokenizer has no mask token, needed for query augmentation "
                "(set query_augmentation=False)"
            )
        pad_id = hf_tokenizer.pad_token_id
        self.mask_id = mask_id if mask_id is not None else pad_id
        self.pad_id = pad_id if pad_id is not None else self.mask_id
        if self.pad_id is None:
            raise CheckpointError("tokenizer has neither a pad nor a mask token")
        self.head_ids, self.tail_ids = self._special_frame()
        self.skiplist = self._skiplist_ids() if config.mask_punctuation else frozenset()
        self.frame = len(self.head_ids) + len(self.tail_ids) + (1 if config.markers else 0)

    def _token_id(self, token: str, field: str) -> int:
        token_id = self.hf.convert_tokens_to_ids(token)
        if token_id is None or (
            token_id == self.hf.unk_token_id and token != self.hf.unk_token
        ):
            if not self.config.markers:
                return -1  # not used
            raise CheckpointError(f"marker {field}={token!r} is not in the tokenizer's vocabulary")
        return int(token_id)

    def _special_frame(self) -> tuple[list[int], list[int]]:
        """The special token ids the tokenizer puts before and after a text's tokens."""
        probe = self.hf("late interaction", add_special_tokens=False)["input_ids"]
        full = self.hf("late interaction", add_special_tokens=True)["input_ids"]
        for start in range(len(full) - len(probe) + 1):
            if full[start : start + len(probe)] == probe:
                return list(full[:start]), list(full[start + len(probe):])
        raise CheckpointError("tokenizer's special tokens change the text's own tokens")

    def _skiplist_ids(self) -> frozenset[int]:
        ids = set()
        for word in self.config.skiplist:
            if self.config.skiplist_lookup == "vocabulary":  # PyLate
                token_id = self.hf.convert_tokens_to_ids(word)
                if token_id is not None:
                    ids.add(int(token_id))
            else:  # colbert-ai: the first token of the word encoded as text
                encoded = self.hf.encode(word, add_special_tokens=False)
                if encoded:
                    ids.add(int(encoded[0]))
        return frozenset(ids)

    def _content_ids(self, texts: list[str], maxlen: int, *, extra: int = 0) -> list[list[int]]:
        """Each text's own token ids, truncated to fit `maxlen` with the frame (plus
        `extra` tokens, to tell truncated texts apart)."""
        if not texts:
            return []
        return self._content(texts, maxlen, extra=extra)["input_ids"]

    def prepared(self, text: str) -> str:
        """The text as the tokenizer sees it: stripped and lowercased where the config says
        (as sentence-transformers does for PyLate models and do_lower_case ones)."""
        if self.config.strip_text:
            text = text.strip()
        return text.lower() if self.config.lowercase else text

    def _content(self, texts: list[str], maxlen: int, *, extra: int = 0,
                 offsets: bool = False) -> dict:  # fmt: skip
        """The tokenizer's output for the texts' own tokens (`_content_ids`), with each
        token's character offsets in the prepared text where `offsets`."""
        limit = maxlen - self.frame + extra
        with self._gate.holding(limit):
            return self.hf(
                [self.prepared(text) for text in texts],
                add_special_tokens=False,
                truncation=True,
                max_length=limit,
                return_attention_mask=False,
                return_token_type_ids=False,
                return_offsets_mapping=offsets,
            )

    def assemble(self, content: Sequence[int], marker_id: int) -> list[int]:
        """Specials around the content, the marker at position 1."""
        seq = [*self.head_ids, *content, *self.tail_ids]
        if self.config.markers:
            seq.insert(1, marker_id)
        return seq

    def query_lengths(self, texts: list[str]) -> list[int]:
        """Token counts (markers included) each query would have before padding."""
        extra = self.config.query_mask_tokens
        maxlen = self.config.query_maxlen - extra
        return [len(ids) + self.frame + extra for ids in self._content_ids(texts, maxlen)]

    def queries(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenize queries. With augmentation all ``query_maxlen`` positions are scored."""
        texts = check_texts(texts, "query", allow_empty=False)
        cfg = self.config
        if cfg.query_mask_tokens:
            return self._queries_with_masks(texts)
        seqs = [
            self.assemble(c, self.query_token_id)
            for c in self._content_ids(texts, cfg.query_maxlen)
        ]
        longest = max(len(seq) for seq in seqs)
        width = cfg.query_maxlen if cfg.query_augmentation else longest
        fill = self.mask_id if cfg.query_augmentation else self.pad_id
        ids = torch.full((len(texts), width), fill, dtype=torch.long)
        attention = torch.zeros((len(texts), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            attention[row, : len(seq)] = 1
        if cfg.query_augmentation:
            output = torch.ones_like(ids, dtype=torch.bool)
            if cfg.attend_to_mask_tokens:
                attention[:] = 1
        else:
            output = attention.bool()
        if cfg.drop_cls:
            output[:, 0] = False
        return TokenBatch(ids, attention, output)

    def _queries_with_masks(self, texts: list[str]) -> TokenBatch:
        """Queries with exactly `query_mask_tokens` [MASK] appended (Hofstätter's ColBERT),
        truncated so that the whole fits `query_maxlen`; padding beyond is not scored."""
        cfg = self.config
        extra = cfg.query_mask_tokens
        seqs = [
            [*self.assemble(c, self.query_token_id), *[self.mask_id] * extra]
            for c in self._content_ids(texts, cfg.query_maxlen - extra)
        ]
        width = max(len(seq) for seq in seqs)
        ids = torch.full((len(texts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(texts), width), dtype=torch.long)
        output = torch.zeros((len(texts), width), dtype=torch.bool)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            output[row, : len(seq)] = True
            attention[row, : len(seq) - (0 if cfg.attend_to_mask_tokens else extra)] = 1
        if cfg.drop_cls:
            output[:, 0] = False
        return TokenBatch(ids, attention, output)

    def document_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Full token ids (``[CLS] [D] ... [SEP]``) for each document, unpadded."""
        return self.document_ids_flagged(check_texts(texts, "document", allow_empty=True))[0]

    def document_ids_flagged(
        self, texts: list[str]
    ) -> tuple[list[list[int]], list[bool], list[bool]]:
        """`document_ids`, and for each text whether it was truncated and whether it has no
        tokens at all (one token more is read to tell truncated texts apart)."""
        limit = self.config.doc_maxlen - self.frame
        content = self._content_ids(texts, self.config.doc_maxlen, extra=1)
        ids = [self.assemble(c[:limit], self.doc_token_id) for c in content]
        return ids, [len(c) > limit for c in content], [not c for c in content]

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
        if self.config.drop_cls:
            output[:, 0] = False
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
