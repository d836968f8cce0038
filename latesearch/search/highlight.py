"""Highlights: the words of a hit that carry most of its score, and their rendering.

From an `Explanation`, each document token's weight is the similarity of the query tokens
whose MaxSim it won. The heaviest tokens, until they carry `share` of the weight of all
tokens with a place in the text (at most `max_tokens`), are widened to whole words and
merged where only spaces separate them: readable spans, as a search engine's highlighter
marks the matched terms.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass

from latesearch.errors import InputError
from latesearch.search.explain import Explanation

STYLES = ("html", "ansi", "plain")
ANSI_BOLD, ANSI_RESET = "\x1b[1m", "\x1b[0m"


@dataclass
class Highlight:
    """A span [start, end) of a hit's `field` ("title" or "text") and the share of the
    score its tokens carry."""

    field: str
    start: int
    end: int
    share: float


def highlights(explanation: Explanation, title: str, text: str, *, share: float = 0.5,
               max_tokens: int = 8) -> list[Highlight]:  # fmt: skip
    """The merged whole-word spans of the document tokens carrying most of the score."""
    weight: dict[tuple[str, int, int], float] = defaultdict(float)
    for match in explanation.matches:
        if match.field is not None and match.end > match.start and match.similarity > 0:
            weight[(match.field, match.start, match.end)] += match.similarity
    total = sum(weight.values())
    chosen, carried = [], 0.0
    for key, value in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(chosen) >= max_tokens or (chosen and carried >= share * total):
            break
        chosen.append((key, value))
        carried += value
    fields = {"title": title or "", "text": text or ""}
    spans = [(f, *_whole_words(fields[f], s, e), v) for (f, s, e), v in chosen]
    score = explanation.score
    return [Highlight(f, s, e, w / score if score else 0.0)
            for f, s, e, w in _merged(spans, fields)]  # fmt: skip


def render(text: str, spans: list[Highlight] | list[tuple[int, int]], style: str = "html",
           *, markers: tuple[str, str] = ("[", "]")) -> str:  # fmt: skip
    """`text` with `spans` (Highlights of this field, or (start, end) pairs) marked:
    "html" (escaped, spans in <mark>), "ansi" (bold, for terminals) or "plain" (`markers`
    around them)."""
    if style not in STYLES:
        raise InputError(f"style must be one of {STYLES}, got {style!r}", field="style")
    opening, closing = {"html": ("<mark>", "</mark>"), "ansi": (ANSI_BOLD, ANSI_RESET),
                        "plain": markers}[style]  # fmt: skip
    escape = html.escape if style == "html" else str
    pairs = sorted((s.start, s.end) if isinstance(s, Highlight) else tuple(s) for s in spans)
    out, at = [], 0
    for start, end in pairs:
        start, end = max(start, at), min(end, len(text))
        if end <= start:
            continue
        out += [escape(text[at:start]), opening, escape(text[start:end]), closing]
        at = end
    out.append(escape(text[at:]))
    return "".join(out)


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to the word characters around it."""
    while start > 0 and _wordy(text[start - 1]):
        start -= 1
    while end < len(text) and _wordy(text[end]):
        end += 1
    return start, end


def _wordy(char: str) -> bool:
    return char.isalnum() or char in "_'-"


def _merged(spans: list, fields: dict[str, str]) -> list[tuple[str, int, int, float]]:
    """Spans of one field merged where they overlap or only whitespace lies between."""
    out: list[list] = []
    for f, s, e, w in sorted(spans):
        last = out[-1] if out else None
        if last and last[0] == f and not fields[f][last[2] : s].strip():
            last[2], last[3] = max(last[2], e), last[3] + w
        else:
            out.append([f, s, e, w])
    return [tuple(span) for span in out]
