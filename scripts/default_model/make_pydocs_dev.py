"""A dev set over the demo collection (409 Python standard-library docstrings) with 128
hand-written questions: the demo's 20 ('demo:' ids) and 108 more from
scripts/default_model/data/pydocs-dev.tsv ('py:' ids), none of them ever a training query.
A third dev domain of real questions larger than the demo's 20, whose single query moves
the multi-domain dev mean by up to 0.017.

python scripts/default_model/make_pydocs_dev.py --out .work/dm/devpy
python scripts/default_model/evaluate_dev.py --dev .work/dm/devpy \
    --out benchmarks/results/default-model/dev-pydocs.json NAME=MODEL ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from make_dev import add_demo, write_dev

EXTRA = Path(__file__).resolve().parent / "data" / "pydocs-dev.tsv"


def read_extra(path: Path, known: set[str]) -> list[tuple[str, str, list[str]]]:
    """Rows `qid<TAB>question<TAB>id,id,...` ('#' lines are comments); every id must be a
    document of the demo collection."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            raise SystemExit(f"{path}:{number}: expected qid<TAB>question<TAB>ids")
        qid, text, rel = fields
        ids = rel.split(",")
        unknown = [d for d in ids if d not in known]
        if unknown:
            raise SystemExit(f"{path}:{number}: {qid}: not in the demo collection: {unknown}")
        rows.append((qid, text, ids))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    docs: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: list[tuple[str, str]] = []
    add_demo(docs, queries, qrels)
    for qid, text, ids in read_extra(EXTRA, {d.removeprefix("demo:") for d in docs}):
        queries[f"py:{qid}"] = text
        qrels += [(f"py:{qid}", f"demo:{d}") for d in ids]
    write_dev(args.out, docs, queries, qrels)


if __name__ == "__main__":
    main()
