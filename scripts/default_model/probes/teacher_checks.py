"""Two checks behind the v20 teacher (issue 7), written to
benchmarks/results/default-model/probe-teacher-checks.json with the machine:
- precision: the dense teacher's document embeddings of the first N SciFact abstracts in
  float32, bfloat16 and int8 dynamic quantization (time, and the lowest cosine to float32);
- distributions: mean entropy (nats) and mean top probability of the softmax (temperature
  1) over each example's teacher scores, for make_neighbours.py-format files.

python scripts/default_model/probes/teacher_checks.py --dense .work/teachers/all-mpnet-base-v2 \
    --corpus ../shared/data/scifact/corpus.jsonl \
    --neighbours data16=.work/dm/data16/neighbours.jsonl data20=.work/dm/data20/neighbours.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from latesearch._atomic import write_json
from latesearch.data import read_collection
from latesearch.modeling.dense import DenseEncoder

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from _machine import machine_info  # noqa: E402

OUT = Path("benchmarks/results/default-model/probe-teacher-checks.json")


@torch.inference_mode()
def precision(folder: str, texts: list[str]) -> dict:
    encoder = DenseEncoder.from_pretrained(folder)
    variants = {
        "float32": encoder.backbone,
        "int8_dynamic": torch.ao.quantization.quantize_dynamic(
            encoder.backbone, {torch.nn.Linear}, dtype=torch.qint8
        ),
    }
    results, reference = {}, None
    for name in ("float32", "int8_dynamic", "bfloat16"):
        if name == "bfloat16":  # last: converts the float32 backbone in place
            variants[name] = encoder.backbone.to(torch.bfloat16)
        variant = DenseEncoder(variants[name], encoder.tokenizer, encoder.max_length)
        start = time.perf_counter()
        emb = variant.encode(texts, batch_size=16).float()
        seconds = time.perf_counter() - start
        reference = emb if reference is None else reference
        results[name] = {
            "seconds": round(seconds, 2),
            "min_cosine_to_float32": round(float(F.cosine_similarity(emb, reference).min()), 5),
        }
    return results


def distribution(path: Path, limit: int) -> dict:
    entropies, tops = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(itertools.islice(f, limit), 1):
            try:
                scores = torch.tensor([s for _, s in json.loads(line)[1:]], dtype=torch.float64)
            except (ValueError, TypeError) as err:
                message = f"{path}:{number}: expected [qid, [doc, score], ...]: {err}"
                raise SystemExit(message) from None
            p = scores.softmax(0)
            entropies.append(float(-(p * p.log()).sum()))
            tops.append(float(p.max()))
    n = len(entropies)
    return {
        "examples": n,
        "mean_entropy": sum(entropies) / n,
        "mean_top_probability": sum(tops) / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dense", required=True, help="the dense teacher's folder")
    ap.add_argument("--corpus", required=True, help="SciFact corpus.jsonl")
    ap.add_argument("--documents", type=int, default=48)
    ap.add_argument("--neighbours", nargs="+", default=[], metavar="NAME=FILE")
    ap.add_argument("--limit", type=int, default=1600, help="first LIMIT examples of each")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(2)
    docs = itertools.islice(read_collection(args.corpus), args.documents)
    result = {
        "machine": machine_info(),
        "precision": precision(args.dense, [doc.full_text() for doc in docs]),
        "distributions": {
            name: distribution(Path(path), args.limit)
            for name, path in (item.split("=", 1) for item in args.neighbours)
        },
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
