"""The calibration shipped with the default model: it loads, is monotone, says what it was
fitted on, belongs to today's default model (a model change without a refit by
scripts/default_model/fit_calibration.py fails here), and serves that model's indexes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latesearch.indexing.components.calibration import (
    SHIPPED_FILE,
    Calibration,
    shipped_calibration,
)


def test_the_shipped_calibration_loads_and_is_monotone():
    shipped = Calibration.load(SHIPPED_FILE)
    assert shipped == shipped_calibration()
    grid = np.linspace(-1, 1, 401)
    assert np.all(np.diff(shipped.relevance(grid)) >= 0)
    assert 0 <= shipped.relevance([-1.0])[0] < shipped.relevance([1.0])[0] <= 1
    assert (shipped.mode, shipped.depth, shipped.queries) == ("e2e", 100, 108)
    assert shipped.pairs > 0 and 0 < shipped.positives < shipped.pairs
    assert "fit_calibration.py" in shipped.command and "pydocs" in shipped.fitted_on


@pytest.mark.slow
def test_the_shipped_calibration_is_the_default_models(tmp_path):
    from latesearch import ColBERT, Index
    from latesearch.modeling.default import DEFAULT_MODEL_DIR

    model = ColBERT.from_pretrained(device="cpu")
    assert shipped_calibration().model_fingerprint == model.fingerprint(), (
        "the default model changed: refit its calibration with "
        "scripts/default_model/fit_calibration.py"
    )
    demo = DEFAULT_MODEL_DIR.parent / "demo" / "collection.jsonl"
    rows = demo.read_text(encoding="utf-8").splitlines()
    rows = rows[:20] + [r for r in rows if r.startswith('{"_id": "shutil.')]
    (tmp_path / "docs.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    index = Index.build(tmp_path / "docs.jsonl", tmp_path / "ix", model, progress=False)
    assert index.calibration_source == "shipped"
    hits = index.search("copy a file to another location", k=24)
    assert all(h.calibration == "shipped" and 0 <= h.relevance <= 1 for h in hits)
    assert hits[0].doc_id.startswith("shutil.") and hits[0].relevance > 0.3 > hits[-1].relevance
    cut = hits[2].relevance
    kept = index.search("copy a file to another location", k=24, min_relevance=cut)
    assert [h.doc_id for h in kept] == [h.doc_id for h in hits if h.relevance >= cut]
    assert json.loads(json.dumps(index.describe()))["calibration"]["source"] == "shipped"
