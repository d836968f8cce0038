"""Search results: `Hit` (one ranked document) and `Hits` (a ranked list of them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from latesearch.search.explain import Explanation
from latesearch.search.highlight import Highlight, render


@dataclass
class Hit:
    """One ranked document: its id, score, 1-based rank, and optionally its text and its
    metadata (the collection's other fields).

    `bounded_score`: a MaxSim score divided by the number of query tokens that count (in
    [-1, 1] for cosine models, comparable across queries of different lengths; None where
    the score is not a MaxSim: fused, dense); `relevance`: its calibrated probability of
    relevance, on a calibrated index (`latesearch calibrate`, or the default model's
    shipped calibration), and `calibration`: which one ("index" or "shipped"). With
    `explain`: the
    `explanation` (the score per query token) and the `highlights` (spans of the title or
    text carrying most of it; `render_highlights` marks them)."""

    doc_id: str
    score: float
    rank: int
    title: str | None = None
    text: str | None = None
    metadata: dict[str, Any] | None = None
    bounded_score: float | None = None
    relevance: float | None = None
    calibration: str | None = None
    explanation: Explanation | None = None
    highlights: list[Highlight] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; title, text, metadata and explanations only when they were
        asked for."""
        out: dict[str, Any] = {"doc_id": self.doc_id, "score": self.score, "rank": self.rank}
        if self.bounded_score is not None:
            out["bounded_score"] = self.bounded_score
        if self.relevance is not None:
            out["relevance"] = self.relevance
            out["calibration"] = self.calibration
        if self.title is not None:
            out["title"] = self.title
        if self.text is not None:
            out["text"] = self.text
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.explanation is not None:
            out["explanation"] = self.explanation.to_dict()
        if self.highlights is not None:
            out["highlights"] = [asdict(h) for h in self.highlights]
        return out

    def render_highlights(self, field: str = "text", style: str = "html", **kwargs: Any) -> str:
        """The hit's title or text (`field`) with its highlights marked (`highlight.render`:
        "html", "ansi" or "plain"); the plain field without highlights."""
        value = (self.title if field == "title" else self.text) or ""
        spans = [h for h in self.highlights or () if h.field == field]
        return render(value, spans, style, **kwargs)


class Hits(list[Hit]):
    """The ranked hits of one query: a plain `list[Hit]`, best first, plus `skipped`, the
    candidate ids that `rerank(..., missing="skip")` left out because the index lacks them.
    """

    def __init__(self, hits: list[Hit] | None = None, skipped: list[str] | None = None):
        super().__init__(hits or [])
        self.skipped = list(skipped or [])

    def __repr__(self) -> str:
        extra = f", skipped={self.skipped!r}" if self.skipped else ""
        return f"Hits({list.__repr__(self)}{extra})"

    def to_dicts(self) -> list[dict[str, Any]]:
        return [hit.to_dict() for hit in self]
