"""Ship a trained model as the default: write it as a delta over the pip-installed backbone
into latesearch/resources/default_model/ (see latesearch.modeling.delta).

python scripts/default_model/ship.py runs/default-v3/best --doc-maxlen 180 \
    --note run=models/default-v3/
"""

from __future__ import annotations

import argparse
import json

from latesearch import ColBERT
from latesearch.modeling.default import BACKBONE_NAME, DEFAULT_MODEL_DIR, backbone_path
from latesearch.modeling.delta import write_delta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--doc-maxlen", type=int, default=180, help="doc_maxlen the default uses")
    ap.add_argument("--note", action="append", default=[], help="KEY=VALUE recorded notes")
    args = ap.parse_args()
    model = ColBERT.from_pretrained(args.model, device="cpu", doc_maxlen=args.doc_maxlen)
    notes = dict(item.split("=", 1) for item in args.note)
    manifest = write_delta(
        model, backbone_path(), DEFAULT_MODEL_DIR, base_name=BACKBONE_NAME, notes=notes
    )
    size = sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.iterdir())
    print(json.dumps(manifest["stored"], indent=1))
    print(f"{DEFAULT_MODEL_DIR}: {size / 2**20:.2f} MiB")
    shipped = ColBERT.from_pretrained(device="cpu")
    texts = ["late interaction over BERT", "ColBERT encodes every token."]
    diff = (shipped.encode_queries(texts) - model.encode_queries(texts)).abs().max()
    print(f"shipped vs trained query embeddings: max abs diff {float(diff):.2e}")


if __name__ == "__main__":
    main()
