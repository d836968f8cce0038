"""Peak memory of one training step on a large batch, with the cached contrastive loss
(GradCache, `TrainConfig.cache_chunk_size`) at several chunk sizes against the uncached loss.

Each measurement is a fresh process that builds the encoder, tokenizes the batch, then
runs one forward and backward pass of the trainer's loss (n-way cross-entropy plus
in-batch negatives) and reports the growth of its peak resident memory (ru_maxrss) over
its resident memory just before the step, and the step's time. Settings alternate over
`--repeats` rounds. The encoder is a random BERT built here (no download): by default 4
layers, hidden 256, which is enough to show how activation memory scales; texts are random
words of its vocabulary, documents cut at --doc-maxlen tokens. Dropout is off, so the
losses of all settings agree (a check that the cached loss is the same loss).

    python benchmarks/train_memory.py --batch-size 32 --nway 4 --chunks 0 32 8 --repeats 2

Writes benchmarks/results/train-memory-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32, help="queries in the batch")
    p.add_argument("--nway", type=int, default=4, help="documents per query (1 + negatives)")
    p.add_argument("--chunks", type=int, nargs="+", default=[0, 32, 8],
                   help="cache_chunk_size settings (0: uncached)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=2, help="rounds, settings interleaved")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--query-maxlen", type=int, default=32)
    p.add_argument("--doc-maxlen", type=int, default=128)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.nway < 1 or min(args.chunks) < 0 or args.repeats < 1:
        p.error("--batch-size, --nway and --repeats >= 1, --chunks >= 0")
    return args


def build_encoder(folder: Path, layers: int, hidden: int) -> list[str]:
    """A random BERT with a vocabulary of 2000 made-up words; the words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    words = [f"w{i}" for i in range(2000)]
    vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=max(1, hidden // 64), intermediate_size=4 * hidden,
                        max_position_embeddings=512, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)  # fmt: skip
    BertModel(config).save_pretrained(str(folder))
    return words


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One step in this process: peak memory growth and time."""
    import torch

    from latesearch import ColBERT
    from latesearch.training.cached import cached_backward
    from latesearch.training.loss import Objective

    torch.set_num_threads(1)
    rng = random.Random(0)
    words = spec["words"]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    model = ColBERT.from_pretrained(spec["encoder"], device="cpu", dim=128,
                                    query_maxlen=spec["query_maxlen"],
                                    doc_maxlen=spec["doc_maxlen"]).train()  # fmt: skip
    b, nway = spec["batch_size"], spec["nway"]
    queries = model.tokenizer.queries([text(12) for _ in range(b)])
    documents = model.tokenizer.documents([text(spec["doc_maxlen"]) for _ in range(b * nway)])
    objective = Objective(nway=nway, similarity="cosine", in_batch=True)

    def encode(q, d):
        Q = None if q is None else model.forward_queries(q)
        D, mask = (None, None) if d is None else model.forward_documents(d)
        return Q, D, mask

    before = _rss_kib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if spec["chunk"]:
        loss = cached_backward(encode, queries, documents, objective, spec["chunk"])
    else:
        loss = objective(*encode(queries, documents))
        loss.backward()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "chunk": spec["chunk"], "loss": float(loss), "seconds": seconds,
        "rss_before_mib": before / 1024, "peak_mib": peak / 1024,
        "step_peak_mib": max(0, peak - before) / 1024, "earlier_peak_mib": peak_before / 1024,
    }  # fmt: skip


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return {}
    runs: dict[int, list[dict[str, Any]]] = {c: [] for c in args.chunks}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        words = build_encoder(Path(tmp), args.layers, args.hidden)
        base = dict(encoder=tmp, words=words, batch_size=args.batch_size, nway=args.nway,
                    query_maxlen=args.query_maxlen, doc_maxlen=args.doc_maxlen)  # fmt: skip
        for repeat in range(args.repeats):
            for chunk in args.chunks if repeat % 2 == 0 else args.chunks[::-1]:
                spec = json.dumps({**base, "chunk": chunk})
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                done = subprocess.run([sys.executable, __file__, "--child", spec], env=env,
                                      capture_output=True, text=True, check=True)  # fmt: skip
                record = json.loads(done.stdout.strip().splitlines()[-1])
                runs[chunk].append(record)
                print(
                    f"chunk {chunk or 'off'}: +{record['step_peak_mib']:.0f} MiB, "
                    f"{record['seconds']:.1f} s, loss {record['loss']:.4f}",
                    flush=True,
                )
    load_after = os.getloadavg()
    first = args.chunks[0]
    ref_mem = statistics.median(r["step_peak_mib"] for r in runs[first])
    ref_time = statistics.median(r["seconds"] for r in runs[first])
    rows = []
    for chunk, records in runs.items():
        mem = statistics.median(r["step_peak_mib"] for r in records)
        seconds = statistics.median(r["seconds"] for r in records)
        rows.append({
            "cache_chunk_size": chunk or None, "step_peak_mib": round(mem, 1),
            "peak_rss_mib": round(statistics.median(r["peak_mib"] for r in records), 1),
            "seconds": round(seconds, 2), "loss": records[0]["loss"],
            "memory_vs_first": round(mem / ref_mem, 3),
            "time_vs_first": round(seconds / ref_time, 2),
        })  # fmt: skip
    info = machine_info()
    result = {
        "benchmark": "train_memory", "machine": info, "load_average": [load, load_after],
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                     if k != "child"},
        "rows": rows,
    }  # fmt: skip
    docs = args.batch_size * args.nway
    lines = [
        f"# Peak memory of a training step, cached loss against uncached ({describe(info)})",
        "",
        f"One forward and backward pass over {args.batch_size} queries x {args.nway} documents "
        f"({docs} documents, doc_maxlen {args.doc_maxlen}, query_maxlen {args.query_maxlen}), "
        f"n-way cross-entropy plus in-batch negatives, random BERT of {args.layers} layers, "
        f"hidden {args.hidden}, dim 128, 1 thread; step peak = growth of ru_maxrss over the "
        f"resident memory before the step, median of {args.repeats} fresh processes per "
        f"setting, interleaved. Load average {load[0]:.2f} before, {load_after[0]:.2f} after.",
        "",
        "| cache_chunk_size | step peak MiB | process peak MiB | s/step | memory vs first | "
        "time vs first | loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['cache_chunk_size'] or 'off (uncached)'} | {r['step_peak_mib']} | "
                     f"{r['peak_rss_mib']} | {r['seconds']} | {r['memory_vs_first']}x | "
                     f"{r['time_vs_first']}x | {r['loss']:.5f} |")  # fmt: skip
    write_results(args.out, "train-memory-cpu", result, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
