"""Pack a trained run's chosen checkpoint for the trip back from the GPU machine: a delta
against the bundle's start folder (the changed layers and the projection in float16,
`latesearch.modeling.delta`) plus the run's logs, as one tar, split into parts under the
device's 16 MB-per-file limit.

python scripts/default_model/gpu/pack.py runs/v11a .work/gpu/start OUT/v11a.tar
"""

from __future__ import annotations

import argparse
import shutil
import tarfile
import tempfile
from pathlib import Path

from latesearch import ColBERT
from latesearch.modeling.delta import write_delta

LOGS = ("eval.jsonl", "loss.jsonl", "train_config.json", "train.log")
PART = 15 * 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path, help="a latesearch train --output folder")
    ap.add_argument("start", help="the bundle's start folder, as a path relative to the repo")
    ap.add_argument("out", type=Path, help="tar file to write (parts: .aa, .ab, ...)")
    ap.add_argument("--checkpoint", default="best", help="sub-folder of the run to pack")
    args = ap.parse_args()
    model = ColBERT.from_pretrained(args.run / args.checkpoint, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / args.run.name
        folder.mkdir()
        write_delta(model, args.start, folder / "delta", base_name=args.start)
        for name in LOGS:
            if (args.run / name).is_file():
                shutil.copy2(args.run / name, folder / name)
        with tarfile.open(Path(tmp) / "pack.tar", "w") as tar:
            tar.add(folder, arcname=args.run.name)
        data = (Path(tmp) / "pack.tar").read_bytes()
    if len(data) <= PART:
        args.out.write_bytes(data)
        print(f"{args.out}: {len(data) / 2**20:.1f} MiB")
        return
    for i, offset in enumerate(range(0, len(data), PART)):
        part = args.out.with_name(f"{args.out.name}.{chr(97 + i // 26)}{chr(97 + i % 26)}")
        part.write_bytes(data[offset : offset + PART])
        print(f"{part}: {len(data[offset : offset + PART]) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
