"""Write a trained model as a delta over the pip-installed backbone (see
latesearch.modeling.delta): by default into latesearch/resources/default_model/, i.e. ship it
as the default; `--out DIR` writes it elsewhere (rebuild.sh does, and compares it with the
shipped default).

python scripts/default_model/ship.py .work/dm/soup --doc-maxlen 300 --out .work/dm/delta \
    --note recipe=models/README.md --note run=models/default-v17c/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latesearch import ColBERT
from latesearch.modeling.default import BACKBONE_NAME, DEFAULT_MODEL_DIR, backbone_path
from latesearch.modeling.delta import write_delta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--doc-maxlen", type=int, default=180, help="doc_maxlen the default uses")
    ap.add_argument("--note", action="append", default=[], help="KEY=VALUE recorded notes")
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR,
                    help=f"delta folder (default: the shipped default, {DEFAULT_MODEL_DIR})")
    args = ap.parse_args()
    model = ColBERT.from_pretrained(args.model, device="cpu", doc_maxlen=args.doc_maxlen)
    notes = dict(item.split("=", 1) for item in args.note)
    manifest = write_delta(model, backbone_path(), args.out, base_name=BACKBONE_NAME, notes=notes)
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(json.dumps(manifest["stored"], indent=1))
    print(f"{args.out}: {size / 2**20:.2f} MiB")
    texts = ["late interaction over BERT", "ColBERT encodes every token."]
    written = ColBERT.from_pretrained(args.out, device="cpu")
    diff = (written.encode_queries(texts) - model.encode_queries(texts)).abs().max()
    print(f"written delta vs trained model, query embeddings: max abs diff {float(diff):.2e}")
    if args.out.resolve() != DEFAULT_MODEL_DIR.resolve():
        shipped = ColBERT.from_pretrained(device="cpu")
        diff = (shipped.encode_queries(texts) - written.encode_queries(texts)).abs().max()
        print(f"written delta vs shipped default, query embeddings: max abs diff {float(diff):.2e}")


if __name__ == "__main__":
    main()
