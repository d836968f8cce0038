"""Fit the calibration shipped with the default model (latesearch/resources/default_model/
calibration.json): `Index.calibrate`'s isotonic regression of relevance on the bounded
score, in mode e2e at depth 100, on the default model's own dev data: the 108 pydocs dev
questions (data/pydocs-dev.tsv) over the demo collection, searched in the default
compressed index of that collection (what `Index.build` writes: 2 bits, fp16 vectors
kept). Any index built with the default model and without a calibration of its own uses
it. Run it again whenever the default model changes (the calibration names the model's
fingerprint, and tests/indexing/test_shipped_calibration.py fails until it matches).

    python scripts/default_model/fit_calibration.py [--index DIR] [--out FILE]

--index: an existing default index of the demo collection (built into a temporary folder,
about a minute on 2 cores, when not given).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the checkout's latesearch, whose resources are written

from latesearch import ColBERT, Index  # noqa: E402
from latesearch.indexing.components.calibration import SHIPPED_FILE  # noqa: E402

DEMO = REPO / "latesearch" / "resources" / "demo" / "collection.jsonl"
PYDOCS = Path(__file__).resolve().parent / "data" / "pydocs-dev.tsv"


def pydocs() -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The dev questions and their judgements: qid<TAB>question<TAB>relevant ids."""
    rows = [line.split("\t") for line in PYDOCS.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]  # fmt: skip
    queries = {r[0]: r[1] for r in rows}
    qrels = {r[0]: dict.fromkeys(r[2].strip().split(","), 1) for r in rows}
    return queries, qrels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=None, help="the demo's default index")
    ap.add_argument("--out", type=Path, default=SHIPPED_FILE, help=f"({SHIPPED_FILE})")
    ap.add_argument("--depth", type=int, default=100, help="hits per question labelled (100)")
    args = ap.parse_args()
    model = ColBERT.from_pretrained(device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        if args.index is None:
            index = Index.build(DEMO, Path(tmp) / "demo", model, progress=True)
        else:
            index = Index.load(args.index, model)  # refuses an index of another model
        manifest = index.store.manifest
        if not str(manifest.collection.get("path", "")).endswith("demo/collection.jsonl"):
            sys.exit(f"{index.folder}: not an index of {DEMO}")
        queries, qrels = pydocs()
        fitted = index.calibrate(queries, qrels, mode="e2e", depth=args.depth, keep=False)
        codec = manifest.index_config["codec"]
        about = (f"{fitted.queries} pydocs dev questions (scripts/default_model/data/"
                 f"pydocs-dev.tsv) over the demo collection ({manifest.n_docs} Python "
                 f"docstrings), default index (nbits {codec['nbits']}, pool_factor "
                 f"{codec['pool_factor']})")  # fmt: skip
    command = " ".join(["python", "scripts/default_model/fit_calibration.py",
                        *map(shlex.quote, sys.argv[1:])])  # fmt: skip
    fitted = fitted.replace(fitted_on=about, command=command)
    fitted.save(args.out)
    print(f"{args.out}: {len(fitted.scores)} breakpoints from {fitted.pairs} hits "
          f"({fitted.positives} relevant) of {fitted.queries} questions; model "
          f"{fitted.model_fingerprint[:12]}")  # fmt: skip


if __name__ == "__main__":
    main()
