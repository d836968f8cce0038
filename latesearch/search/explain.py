"""Why a document scored what it did: its MaxSim laid out per query token.

A late-interaction score is a sum over the query's scored tokens of each one's best
similarity with a document token. `explain_documents` recomputes that from the vectors the
score came from (the uncompressed ones, or those decompressed from the codes), names for
each query token the document token that won, and maps that token back to its characters
in the stored title or text (`modeling.offsets`). The matches' similarities add up to the
MaxSim score, to float rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from latesearch.errors import IndexCorruptError
from latesearch.indexing import IndexStore
from latesearch.indexing.pooling import token_spans
from latesearch.modeling import ColBERT, ColBERTTokenizer
from latesearch.modeling.offsets import Token, document_tokens, query_tokens


@dataclass
class Match:
    """One scored query token and the document token that won its MaxSim.

    `query_token` / `kind` ("special", "marker", "text" or "mask": a [MASK] of query
    augmentation) / `query_start`, `query_end` (its characters in the query, text tokens
    only); `doc_token`, `doc_kind` and where it is: `field` ("title" or "text"; None for
    [CLS], [D] and the like) with `start`, `end` in that field; `similarity` (the token's
    addend to the score) and `share` (similarity / score). `merged`: how many document
    tokens the winning vector stands for (more than 1 in a pooled index; the span is its
    first token's). `window`: the window of a windowed document the token is in (0 in
    others)."""

    query_token: str
    kind: str
    query_start: int | None
    query_end: int | None
    doc_token: str
    doc_kind: str
    field: str | None
    start: int | None
    end: int | None
    similarity: float
    share: float
    merged: int = 1
    window: int = 0


@dataclass
class Explanation:
    """A document's MaxSim score for a query as the sum of its `matches` (one per scored
    query token). `vectors`: what the score was computed from, "full" (the stored
    uncompressed vectors) or "residual" (decompressed from centroid codes and residuals:
    the compressed index's own scores, which approximate the model's); `exact` says
    whether these are the stored uncompressed vectors.

    A document indexed in windows (`IndexConfig.window`) is scored over all its windows'
    vectors; `window` names its best window (the one whose own MaxSim, `window_score`, is
    highest), `window_start` and `window_end` its characters in the stored text (title
    tokens count as from 0). None for documents not split into windows.

    `relevance`: the calibrated probability of relevance of the score (bounded: divided by
    the scored query tokens) where the index has a calibration, and `calibration` which
    ("index": its own, "shipped": the default model's); None elsewhere."""

    doc_id: str
    score: float
    vectors: str
    exact: bool
    matches: list[Match] = field(default_factory=list)
    window: int | None = None
    window_score: float | None = None
    window_start: int | None = None
    window_end: int | None = None
    relevance: float | None = None
    calibration: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain_documents(
    store: IndexStore,
    model: ColBERT,
    query: str,
    doc_indices: np.ndarray | list[int],
    *,
    source: str = "auto",
    encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[Explanation]:
    """An `Explanation` per document of `doc_indices` for `query`, from the vectors
    `source` reads ("auto", "full", "residual", as the search's). `encoded`: the query's
    embeddings and mask (1, Lq, dim), (1, Lq), when already computed."""
    vectors = store.check_source(source)
    q_tokens = query_tokens(model.tokenizer, query)
    if encoded is None:
        encoded = model.encode_queries([query], return_mask=True)
    Q, mask = (torch.as_tensor(t) for t in encoded)
    q = Q[0][mask[0].to(torch.bool)].detach().to("cpu", torch.float32)
    if q.shape[0] != len(q_tokens):
        raise ValueError(f"{q.shape[0]} scored query vectors but {len(q_tokens)} tokens")
    idx = np.asarray(doc_indices, dtype=np.int64).reshape(-1)
    if not idx.size:
        return []
    tokenizer = document_tokenizer(store, model)
    docs = store.documents(idx)
    join = store.manifest.config.title_join
    flat, lens = store.flat(idx, source=vectors)
    ends = np.cumsum(lens)
    out = []
    for i, doc in enumerate(docs):
        D = torch.from_numpy(np.asarray(flat[ends[i] - lens[i] : ends[i]], dtype=np.float32))
        out.append(_explain_one(store, int(idx[i]), doc, join, tokenizer, q, q_tokens, D,
                                vectors))  # fmt: skip
    return out


def document_tokenizer(store: IndexStore, model: ColBERT) -> ColBERTTokenizer:
    """The tokenizer as the index's build used it (its `doc_maxlen`, skiplist, ...)."""
    if store.colbert_config == model.config:
        return model.tokenizer
    return ColBERTTokenizer(model.tokenizer.hf, store.colbert_config)


def full_text(title: str, text: str, join: str) -> str:
    """The text the encoder saw for a document (`Document.full_text`)."""
    return f"{title}{join}{text}" if title else text


def _explain_one(store: IndexStore, doc_index: int, doc: dict[str, Any], join: str,
                 tokenizer: ColBERTTokenizer, q: torch.Tensor, q_tokens: list[Token],
                 D: torch.Tensor, vectors: str) -> Explanation:  # fmt: skip
    title, text = doc["title"] or "", doc["text"]
    windows = store.manifest.config.windows
    d_tokens = document_tokens(tokenizer, full_text(title, text, join), windows)
    members = token_spans(store, doc_index)  # per vector: the tokens it stands for
    if sum(len(m) for m in members) != len(d_tokens) or len(members) != D.shape[0]:
        raise IndexCorruptError(
            f"{store.folder}: document {doc['doc_id']!r} has {len(d_tokens)} tokens but its "
            f"stored vectors stand for {sum(len(m) for m in members)} (built with another "
            "tokenizer or doc_maxlen?)"
        )
    sim = similarities(q.numpy(), D.numpy(), store.colbert_config.similarity)
    where = sim.argmax(axis=1)
    best = sim[np.arange(len(where)), where]
    score = float(best.sum(dtype=np.float64))
    title_end = len(title) if title else -1
    offset = len(title) + len(join) if title else 0
    matches = []
    for qt, value, j in zip(q_tokens, best.tolist(), where.tolist(), strict=True):
        dt = d_tokens[int(members[j][0])]
        place = _field_span(dt, title_end, offset)
        matches.append(Match(qt.token, qt.kind, qt.start, qt.end, dt.token, dt.kind, *place,
                             similarity=value, share=value / score if score else 0.0,
                             merged=len(members[j]), window=dt.window))  # fmt: skip
    exact = vectors == "full"
    explanation = Explanation(doc["doc_id"], score, vectors, exact, matches)
    if windows is not None:
        _best_window(explanation, sim, [d_tokens[int(m[0])] for m in members], offset)
    return explanation


def _best_window(explanation: Explanation, sim: np.ndarray, tokens: list[Token],
                 offset: int) -> None:  # fmt: skip
    """Name the window with the highest MaxSim of its own (`tokens`: each vector's)."""
    of = np.array([t.window for t in tokens], dtype=np.int64)
    scores = {int(w): float(sim[:, of == w].max(axis=1).sum(dtype=np.float64))
              for w in np.unique(of)}  # fmt: skip
    best = max(scores, key=lambda w: (scores[w], -w))
    spans = [(t.start, t.end) for t in tokens if t.window == best and t.start is not None]
    explanation.window, explanation.window_score = best, scores[best]
    if spans:
        explanation.window_start = max(min(s for s, _ in spans) - offset, 0)
        explanation.window_end = max(max(e for _, e in spans) - offset, 0)


def similarities(q: np.ndarray, D: np.ndarray, similarity: str) -> np.ndarray:
    """(Lq, Ld) float32 similarity of every query vector with every document vector, as
    MaxSim scores them ("cosine": the dot product; "l2": minus the squared distance)."""
    dots = q @ D.T
    if similarity == "l2":
        return 2 * dots - (q * q).sum(1)[:, None] - (D * D).sum(1)[None, :]
    return dots


def _field_span(token: Token, title_end: int, offset: int) -> tuple[str | None, int | None,
                                                                    int | None]:  # fmt: skip
    """(field, start, end) of a document token in the stored title or text."""
    if token.start is None:
        return None, None, None
    if token.start < title_end:
        return "title", token.start, min(token.end, title_end)
    start = max(token.start - offset, 0)
    return "text", start, max(token.end - offset, start)
