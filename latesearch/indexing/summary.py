"""`BuildSummary`: what an indexing run produced, printed at the end and kept in the manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BuildSummary:
    """Totals of a build (resumed runs included)."""

    docs: int = 0
    embeddings: int = 0
    text_tokens: int = 0  # the documents' tokens: more than `embeddings` where pooled
    truncated_docs: int = 0
    empty_docs: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    bytes_on_disk: int = 0
    seconds: float = 0.0
    devices: list[str] = field(default_factory=list)
    dtype: str = "float16"
    resumed: bool = False

    @property
    def embeddings_per_doc(self) -> float:
        return self.embeddings / self.docs if self.docs else 0.0

    @property
    def docs_per_second(self) -> float:
        return self.docs / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "embeddings_per_doc": round(self.embeddings_per_doc, 3),
            "docs_per_second": round(self.docs_per_second, 2),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildSummary:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) lines for display."""
        skipped = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.skipped.items())) or "none"
        return [
            ("documents", f"{self.docs:,}"),
            ("embeddings", f"{self.embeddings:,} ({self.embeddings_per_doc:.1f} per document)"),
            ("text tokens", f"{self.text_tokens:,}"),
            ("truncated documents", f"{self.truncated_docs:,}"),
            ("empty documents", f"{self.empty_docs:,}"),
            ("skipped rows", skipped),
            ("bytes on disk", f"{_human(self.bytes_on_disk)} ({self.bytes_on_disk:,} B)"),
            ("time", f"{self.seconds:.1f} s ({self.docs_per_second:,.1f} documents/s)"),
            ("devices", ", ".join(self.devices) + f"; stored as {self.dtype}"),
        ]

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self.rows())


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
