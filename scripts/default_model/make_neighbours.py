"""The default model's training data (data16): make_data.py examples distilled over
their BM25 neighbours only. Each weak example of SOURCE/weak.jsonl loses its positive (the
source-derived document) and keeps its first KEEP neighbours with their teacher scores,
sorted by teacher score; OUT also gets SOURCE's collection and queries cut to what is used.

python scripts/default_model/make_neighbours.py .work/dm/data14 .work/dm/data16 --keep 12 \
    --name neighbours.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", type=Path, help="a make_data.py folder with weak.jsonl")
    ap.add_argument("out", type=Path)
    ap.add_argument("--keep", type=int, default=None, help="neighbours per example (all)")
    ap.add_argument("--name", default="triples.jsonl", help="file name of the examples")
    args = ap.parse_args()
    if args.keep is not None and args.keep < 2:
        ap.error(f"--keep must be >= 2 (a distribution needs two documents), got {args.keep}")
    rows = []
    weak = args.source / "weak.jsonl"
    if not weak.is_file():
        ap.error(f"{weak}: not found (grep -v '^\\[\"sf:' triples.jsonl > weak.jsonl)")
    with open(weak, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                qid, _positive, *neighbours = json.loads(line)
                if len(neighbours) < 2 or not all(len(d) == 2 for d in neighbours):
                    raise ValueError("expected [qid, [pos, score], [doc, score], ...]")
            except ValueError as err:
                raise SystemExit(f"{weak}:{number}: {err}") from None
            rows.append([qid, *sorted(neighbours[: args.keep], key=lambda d: -d[1])])
    docs = {d for row in rows for d, _ in row[1:]}
    queries = {row[0] for row in rows}
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / args.name, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
    with (
        open(args.source / "collection.jsonl", encoding="utf-8") as src,
        open(args.out / "collection.jsonl", "w", encoding="utf-8") as out,
    ):
        out.writelines(line for line in src if json.loads(line)["_id"] in docs)
    with (
        open(args.source / "queries.tsv", encoding="utf-8") as src,
        open(args.out / "queries.tsv", "w", encoding="utf-8") as out,
    ):
        out.writelines(line for line in src if line.split("\t", 1)[0] in queries)
    print(f"{len(rows)} examples, {len(docs)} documents, {len(queries)} queries -> {args.out}")


if __name__ == "__main__":
    main()
