"""latesearch against Sentence Transformers 6's `MultiVectorEncoder`, both directions.

Tiny random checkpoints (2-layer BERT, hidden 32) are built and saved by Sentence
Transformers itself, one per setting latesearch reads (bare backbone + projection, ColBERT
lengths with [MASK] expansion and a punctuation skiplist, attended expansion with a
two-layer head and no normalization, a BERT whose markers are special tokens, and a
`HierarchicalTokenPooling` module after Normalize: factor 2, fractional 1.5 with two
protected tokens, factor 3 unnormalized, `max_tokens`, `distance_threshold`); latesearch
loads each and encodes the same texts. The other way, checkpoints saved by latesearch
(markers and expansion; plain) are loaded by Sentence Transformers. Records the largest
absolute difference of the embeddings and the texts whose shapes differ. Runs in the
project's environment (sentence-transformers is in the test extra):

    python scripts/interop/sentence_transformers6.py

Writes benchmarks/results/interop-st6.json and interop-st6.md.
"""

from __future__ import annotations

import json
import os
import string
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from sentence_transformers import MultiVectorEncoder  # noqa: E402
from sentence_transformers import __version__ as st_version  # noqa: E402
from sentence_transformers.base.modules import Normalize, Transformer  # noqa: E402
from sentence_transformers.base.modules.dense import Dense  # noqa: E402
from sentence_transformers.multi_vector_encoder.modules import (  # noqa: E402
    HierarchicalTokenPooling,
    MultiVectorMask,
)

from latesearch import ColBERT  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from _machine import describe, machine_info  # noqa: E402
from conftest import write_tiny_bert  # noqa: E402

QUERIES = [
    "what is late interaction?",
    "How do proteins fold, in 3 steps?!",
    "  Café naïve résumé: Zürich & 東京 🙂  ",
    "which model scores every query token against every document token, and why does "
    "that beat a single vector on long and noisy passages with many rare terms?",
]
DOCS = [
    "ColBERT encodes every token of a passage.",
    "",
    "!!! ... ???",
    "Late interaction keeps one vector per token; MaxSim sums, for each query token, its "
    "best match in the document, so rare terms and exact phrases are not averaged away "
    "into a single vector, which is why it transfers well to new domains and long texts.",
]
POOLINGS = {  # HierarchicalTokenPooling settings, saved after Normalize
    "pool-2": {"pool_factor": 2},
    "pool-1.5-two-protected": {"pool_factor": 1.5, "num_protected_tokens": 2},
    "pool-3-unnormalized": {"pool_factor": 3, "normalize_embeddings": False},
    "max-tokens-6": {"max_tokens": 6},
    "distance-0.5": {"distance_threshold": 0.5},
}


def dense(i: int, o: int, *, bias=False, activation=None, seed=0) -> Dense:
    torch.manual_seed(seed)
    return Dense(
        i,
        o,
        bias=bias,
        activation_function=activation or torch.nn.Identity(),
        module_input_name="token_embeddings",
    )


def families(bert: Path, marked: Path) -> dict[str, list]:
    colbert = {
        "query_length": 16,
        "document_length": 32,
        "query_expansion": {"strategy": "fixed", "attend": False, "length": 16},
    }
    attend = {
        "document_length": 32,
        "query_expansion": {"strategy": "fixed", "attend": True, "length": 16},
    }
    pooled = {
        f"st6-colbert-{name}": [
            Transformer(str(bert), **colbert),
            dense(32, 16),
            MultiVectorMask(skiplist_words=list(string.punctuation)),
            Normalize(module_input_name="token_embeddings"),
            HierarchicalTokenPooling(**settings),
        ]
        for name, settings in POOLINGS.items()
    }
    return {
        "st6-bare": None,  # MultiVectorEncoder(backbone): Dense(128), mask, normalize
        "st6-colbert": [
            Transformer(str(bert), **colbert),
            dense(32, 16),
            MultiVectorMask(skiplist_words=list(string.punctuation)),
            Normalize(module_input_name="token_embeddings"),
        ],
        "st6-attend-2dense-unnormalized": [
            Transformer(str(bert), **attend),
            dense(32, 24, bias=True, activation=torch.nn.Tanh()),
            dense(24, 8, seed=1),
            MultiVectorMask(),
        ],
        "st6-marker-prompts": [
            Transformer(str(marked), **colbert),
            dense(32, 16),
            MultiVectorMask(skiplist_words=list(string.punctuation)),
            Normalize(module_input_name="token_embeddings"),
        ],
        **pooled,
    }


def compare(ours: ColBERT, theirs: MultiVectorEncoder) -> dict:
    worst, shapes, vectors = 0.0, [], 0
    queries, mask = ours.encode_queries(QUERIES, return_mask=True)
    pairs = [
        (queries[i][mask[i]], e, f"query {i}") for i, e in enumerate(theirs.encode_query(QUERIES))
    ]
    pairs += [
        (g, e, f"document {i}")
        for i, (g, e) in enumerate(
            zip(ours.encode_documents(DOCS), theirs.encode_document(DOCS), strict=True)
        )
    ]
    for got, expected, name in pairs:
        vectors += len(expected) if name.startswith("document") else 0
        if got.shape != expected.shape:
            shapes.append(name)
        else:
            worst = max(worst, float((got - expected).abs().max()) if got.numel() else 0.0)
    return {"max_abs_diff": worst, "shape_mismatches": shapes, "texts": len(pairs),
            "document_vectors": vectors}  # fmt: skip


def run(tmp: Path) -> list[dict]:
    bert = write_tiny_bert(tmp / "bert")
    marked = write_tiny_bert(tmp / "marked")  # markers as special tokens, one piece each
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(marked))
    tokenizer.add_special_tokens({"additional_special_tokens": ["[unused0]", "[unused1]"]})
    tokenizer.save_pretrained(str(marked))
    rows = []
    for name, modules in families(bert, marked).items():
        folder = tmp / name
        prompts = {"query": "[unused0] ", "document": "[unused1] "} if "marker" in name else None
        if modules is None:
            built = MultiVectorEncoder(str(bert), device="cpu")
        else:
            built = MultiVectorEncoder(modules=modules, device="cpu", prompts=prompts)
        built.save_pretrained(str(folder))
        theirs = MultiVectorEncoder(str(folder), device="cpu")
        ours = ColBERT.from_pretrained(folder, device="cpu")
        rows.append(
            {
                "family": name,
                "direction": "latesearch reads ST 6",
                "layout": ours.layout,
                **compare(ours, theirs),
            }
        )
    for name, settings in {"latesearch-markers-expansion": {},
                           "latesearch-plain": {"markers": False, "query_augmentation": False}
                           }.items():  # fmt: skip
        ours = ColBERT.from_pretrained(
            bert, device="cpu", dim=16, query_maxlen=16, doc_maxlen=32, **settings
        )
        ours.save_pretrained(tmp / name)
        theirs = MultiVectorEncoder(str(tmp / name), device="cpu")
        rows.append(
            {
                "family": name,
                "direction": "ST 6 reads latesearch",
                "layout": "latesearch",
                **compare(ours, theirs),
            }
        )
    return rows


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(Path(tmp))
    report = {
        "benchmark": "interop-st6",
        "machine": machine_info(),
        "sentence_transformers": st_version,
        "command": "python scripts/interop/sentence_transformers6.py",
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "interop-st6.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# latesearch and Sentence Transformers 6 MultiVectorEncoder",
        "",
        f"Command: `{report['command']}`. Machine: {describe(report['machine'])}, load average "
        f"{report['load_average'][0]:.2f}. "
        f"sentence-transformers {st_version}.",
        "",
        "| family | direction | layout read | texts | document vectors | largest difference "
        "| shape mismatches |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['direction']} | {r['layout']} | {r['texts']} | "
            f"{r['document_vectors']} | "
            f"{r['max_abs_diff']:.2e} | {', '.join(r['shape_mismatches']) or 'none'} |"
        )
    (RESULTS / "interop-st6.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    bad = [r for r in rows if r["shape_mismatches"] or r["max_abs_diff"] > 1e-5]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
