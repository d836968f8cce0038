"""Search results: `Hit` (one ranked document) and `Hits` (a ranked list of them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Hit:
    """One ranked document: its id, MaxSim score, 1-based rank, and optionally its text
    and its metadata (the collection's other fields)."""

    doc_id: str
    score: float
    rank: int
    title: str | None = None
    text: str | None = None
    metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; title, text and metadata only when they were asked for."""
        out: dict[str, Any] = {"doc_id": self.doc_id, "score": self.score, "rank": self.rank}
        if self.title is not None:
            out["title"] = self.title
        if self.text is not None:
            out["text"] = self.text
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


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
