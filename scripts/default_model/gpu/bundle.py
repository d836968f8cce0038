"""Pack what a GPU training run needs into one folder that fits the device's 64 MiB carry:
the starting model with its weights in float16 (45 MB instead of 90), and the training and
dev data xz-compressed (the collection repeats most texts, as abstracts and as whole
documents, which xz's window finds and gzip's does not: 2.6 MB against 6.1). The run
writes its deltas against this very start folder (same bytes here and there, so the
delta's checksum check passes when it comes back).

python scripts/default_model/gpu/bundle.py --start .work/dm/start8 --data .work/dm/data11 \
    --dev .work/dm/dev --out .work/gpu
"""

from __future__ import annotations

import argparse
import lzma
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

DATA_FILES = ("triples.jsonl", "collection.jsonl", "queries.tsv")
DEV_FILES = ("queries.tsv", "qrels-novel.txt", "collection.jsonl")


def xz_to(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, lzma.open(dst, "wb", preset=9 | lzma.PRESET_EXTREME) as fout:
        shutil.copyfileobj(fin, fout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--dev", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    sources = [args.start / "model.safetensors"]
    sources += [args.data / name for name in DATA_FILES] + [args.dev / name for name in DEV_FILES]
    missing = [str(f) for f in sources if not f.is_file()]
    if missing:  # checked before the old bundle is cleared
        raise SystemExit(f"missing input: {', '.join(missing)}")
    start = args.out / "start"
    for sub in ("start", "data", "dev"):
        shutil.rmtree(args.out / sub, ignore_errors=True)
        (args.out / sub).mkdir(parents=True)
    for f in args.start.iterdir():
        if f.name != "model.safetensors":
            shutil.copy2(f, start / f.name)
    weights = load_file(str(args.start / "model.safetensors"))
    half = {k: v.half().contiguous() if v.is_floating_point() else v for k, v in weights.items()}
    save_file(half, str(start / "model.safetensors"))
    for name in DATA_FILES:
        xz_to(args.data / name, args.out / "data" / f"{name}.xz")
    for name in DEV_FILES:
        xz_to(args.dev / name, args.out / "dev" / f"{name}.xz")
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{args.out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
