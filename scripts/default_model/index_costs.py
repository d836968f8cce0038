"""Index cost of models read at different document lengths (issue 7, v18): the build stats
that `latesearch index` records in each manifest (documents, embeddings, bytes on disk,
seconds), for the SciFact and Vaswani indexes evaluate.sh keeps under .work/dm/indexes/NAME.

python scripts/default_model/index_costs.py v17csoup v18soup300 \
    --out benchmarks/results/default-model/index-cost-doclen.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from latesearch._atomic import write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _machine import machine_info  # noqa: E402

INDEXES = Path(".work/dm/indexes")
FIELDS = ("docs", "embeddings", "bytes_on_disk", "seconds", "docs_per_second", "truncated_docs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="+", help="evaluate.sh run names")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    results: dict = {"machine": machine_info(), "indexes": {}}
    for name in args.names:
        for collection in ("scifact", "vaswani"):
            path = INDEXES / name / collection / "manifest.json"
            if not path.is_file():
                ap.error(f"{path}: not found (run evaluate.sh for {name} first)")
            manifest = json.loads(path.read_text())
            stats = manifest["stats"]
            results["indexes"][f"{name}/{collection}"] = {
                "doc_maxlen": manifest["index_config"]["doc_maxlen"],
                "model_source": manifest["model_source"],
                **{field: stats[field] for field in FIELDS},
            }
    write_json(args.out, results)
    print(json.dumps(results["indexes"], indent=1))


if __name__ == "__main__":
    main()
