"""The `calibration/` component: a monotone mapping from a hit's bounded score (MaxSim per
scored query token) to the probability that the hit is relevant, fitted on judged queries
(`latesearch calibrate`) and kept with the index, so that hits carry `relevance` in [0, 1]
and searches can cut at `min_relevance`.

The mapping is isotonic regression (pool adjacent violators) of the relevance labels of
the judged queries' top hits on their bounded scores: a non-decreasing step function,
interpolated linearly between its steps and flat beyond them. It depends on the model and
the search mode, not on the documents: an update of the index keeps it as it is.

The default model ships one (`SHIPPED_FILE`, fitted on its own dev questions by
scripts/default_model/fit_calibration.py): an index built with that model and without a
calibration of its own uses it (`calibration_of`); its own, once fitted, wins.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from latesearch._configio import JsonConfig
from latesearch.errors import InputError
from latesearch.modeling.default import DEFAULT_MODEL_DIR

CALIBRATION_DIR = "calibration"
SHIPPED_FILE = DEFAULT_MODEL_DIR / "calibration.json"
INDEX, SHIPPED = "index", "shipped"  # where the calibration in use comes from


@dataclass(frozen=True)
class Calibration(JsonConfig):
    """Breakpoints (`scores`: bounded scores, increasing; `probabilities`: non-decreasing,
    in [0, 1]) of the fitted mapping, and what it was fitted on: `mode`, `depth` (hits per
    query), `queries`, `pairs` (judged hits), `positives`, the `model_fingerprint` of the
    index's model, and (the shipped one) `fitted_on` (the data) and `command`."""

    file_name = "calibration.json"

    scores: tuple[float, ...]
    probabilities: tuple[float, ...]
    mode: str = "e2e"
    depth: int = 100
    queries: int = 0
    pairs: int = 0
    positives: int = 0
    model_fingerprint: str = ""
    fitted_on: str = ""
    command: str = ""

    def validate(self) -> None:
        s, p = np.asarray(self.scores), np.asarray(self.probabilities)
        if not s.size or s.shape != p.shape:
            self._bad("probabilities", "as many as the scores, at least one")
        if np.any(np.diff(s) <= 0):
            self._bad("scores", "strictly increasing")
        if np.any(np.diff(p) < 0) or p.min() < 0 or p.max() > 1:
            self._bad("probabilities", "non-decreasing, in [0, 1]")

    def describe(self, source: str) -> dict[str, Any]:
        """What `describe` tells of the calibration in use: its `source` ("index" or
        "shipped"), mode, depth, queries, hits and what it was fitted on."""
        return {"source": source, "mode": self.mode, "depth": self.depth,
                "queries": self.queries, "hits": self.pairs,
                "fitted_on": self.fitted_on}  # fmt: skip

    def relevance(self, bounded: np.ndarray | list[float]) -> np.ndarray:
        """The probability of relevance of hits with these bounded scores."""
        return np.interp(np.asarray(bounded, dtype=np.float64), self.scores, self.probabilities)

    @classmethod
    def fit(cls, bounded: np.ndarray, labels: np.ndarray, **about: Any) -> Calibration:
        """Isotonic regression (pool adjacent violators) of 0/1 `labels` on `bounded`
        scores; equal scores are pooled first."""
        x, y = np.asarray(bounded, np.float64), np.asarray(labels, np.float64)
        points, inverse = np.unique(x, return_inverse=True)
        sums, counts = np.bincount(inverse, y), np.bincount(inverse)
        blocks: list[list[float]] = []  # [sum of labels, count, first score, last score]
        for point, total, count in zip(points.tolist(), sums.tolist(), counts.tolist(),
                                       strict=True):  # fmt: skip
            blocks.append([total, count, point, point])
            while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1]
                                       >= blocks[-1][0] / blocks[-1][1]):  # fmt: skip
                total, count, _, last = blocks.pop()
                blocks[-1] = [blocks[-1][0] + total, blocks[-1][1] + count, blocks[-1][2], last]
        scores, probabilities = [], []
        for total, count, first, last in blocks:  # flat from its first score to its last
            for point in dict.fromkeys((first, last)):
                scores.append(point)
                probabilities.append(total / count)
        return cls(tuple(scores), tuple(probabilities), pairs=int(y.size),
                   positives=int(y.sum()), **about)  # fmt: skip


def fit_judged(search: Callable[[list[str]], list[Any]], queries: dict[str, str],
               qrels: dict[str, dict[str, int]], **about: Any) -> Calibration:  # fmt: skip
    """The calibration of the hits `search` (query texts -> one list of hits per text,
    each with `doc_id` and `bounded_score`) finds for every judged query of `queries`,
    labelled by `qrels` (relevance > 0: relevant); `about`: the fit's description
    (mode, depth, model_fingerprint)."""
    judged = [q for q in queries if qrels.get(q)]
    if not judged:
        raise InputError("no query has judgements in the qrels", field="qrels")
    scores, labels = [], []
    for qid, hits in zip(judged, search([queries[q] for q in judged]), strict=True):
        for hit in hits:
            scores.append(hit.bounded_score)
            labels.append(qrels[qid].get(hit.doc_id, 0) > 0)
    if not scores:
        raise InputError("the judged queries found no documents", field="queries")
    return Calibration.fit(np.array(scores), np.array(labels), queries=len(judged), **about)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = 10) -> float:  # fmt: skip
    """ECE: the mean over equal-width probability bins of |mean label - mean probability|,
    weighted by the bin's share of the hits."""
    p, y = np.asarray(probabilities, np.float64), np.asarray(labels, np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(y[inside].mean() - p[inside].mean())
    return float(error)


def load_calibration(index_folder: Path) -> Calibration | None:
    """The index's calibration; None where it has none."""
    folder = index_folder / CALIBRATION_DIR
    return Calibration.load(folder) if folder.is_dir() else None


def calibration_of(index_folder: Path, model_fingerprint: str) -> tuple[Calibration, str] | None:
    """The calibration an index uses and where it comes from: its own (INDEX), else the
    default model's (SHIPPED) when the index was built with that model; None."""
    own = load_calibration(index_folder)
    if own is not None:
        return own, INDEX
    shipped = shipped_calibration()
    if shipped is not None and shipped.model_fingerprint == model_fingerprint:
        return shipped, SHIPPED
    return None


@lru_cache(maxsize=1)
def shipped_calibration() -> Calibration | None:
    """The calibration shipped with the default model; None where the package has none."""
    return Calibration.load(SHIPPED_FILE) if SHIPPED_FILE.is_file() else None


def update_calibration(folder: Path, old: Any, new: Any, change: Any) -> None:
    """After an update: the same mapping (it depends on the model, not the documents)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(old.folder / CALIBRATION_DIR / Calibration.file_name,
                 folder / Calibration.file_name)  # fmt: skip
