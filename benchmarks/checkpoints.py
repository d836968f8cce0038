"""Work lost when a build is killed at a random moment, with and without checkpoints.

A build of the first --limit documents of a BEIR collection (the default model, CPU) runs
in a subprocess (`latesearch index`) and is killed with SIGKILL at a moment drawn uniformly
over its encoding. While it runs, the staging folder's `progress.json` is watched; the
work lost by the kill is the encoding time since the last save (or since encoding began,
where nothing was saved), and the documents encoded in that time at the measured
throughput. Two settings:

- before: one group of 100,000 documents and no checkpoint limits (`--group-size 100000
  --checkpoint-docs 0 --checkpoint-seconds 0`), as builds ran before checkpoints: nothing
  is saved until the whole group is encoded;
- checkpoints: the checkpoint limits with `--checkpoint-seconds` scaled down (default 15 s,
  against 120 s in production) so that a build of a few hundred documents crosses several.

Each setting also runs --rounds times uninterrupted (interleaved), for its build time,
throughput and chunk count.

    python benchmarks/checkpoints.py --collection ../shared/data/scifact [--limit 600]
        [--kills 6] [--checkpoint-seconds 15]

Writes benchmarks/results/checkpoints-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
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

POLL = 0.05  # seconds between looks at progress.json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--collection", type=Path, required=True, help="a BEIR collection folder")
    p.add_argument("--limit", type=int, default=600, help="documents to index (600)")
    p.add_argument("--kills", type=int, default=6, help="killed builds per setting (6)")
    p.add_argument("--checkpoint-seconds", type=float, default=15.0)
    p.add_argument("--rounds", type=int, default=2, help="uninterrupted builds per setting")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    rng = random.Random(args.seed)
    settings = {
        "before (one 100,000-document group)": ["--group-size", "100000", "--checkpoint-docs",
                                                "0", "--checkpoint-seconds", "0"],
        f"checkpoints (5,000 documents / {args.checkpoint_seconds:g} s)": [
            "--checkpoint-seconds", str(args.checkpoint_seconds)],
    }  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "corpus.jsonl"
        with open(args.collection / "corpus.jsonl", encoding="utf-8") as src:
            corpus.write_text("".join(line for _, line in zip(range(args.limit), src,
                                                               strict=False)))  # fmt: skip
        fulls: dict[str, list[dict[str, Any]]] = {name: [] for name in settings}
        for _ in range(args.rounds):  # uninterrupted builds, interleaved: throughput
            for name, flags in settings.items():
                fulls[name].append(run_build(corpus, work / "full", flags))
                shutil.rmtree(work / "full")
        for name, flags in settings.items():
            full = {key: statistics.median(run[key] for run in fulls[name])
                    for key in ("encoding_s", "wall_s", "chunks")}  # fmt: skip
            kills = []
            for _ in range(args.kills):
                at = rng.uniform(0.05, 0.95) * full["encoding_s"]
                kills.append(run_build(corpus, work / "killed", flags, kill_after=at))
                shutil.rmtree(work / "killed.building", ignore_errors=True)
            rate = args.limit / full["encoding_s"]
            lost = [k["lost_s"] for k in kills]
            rows.append({
                "setting": name, "flags": flags, "docs_per_s": round(rate, 2),
                "encoding_s": round(full["encoding_s"], 1), "chunks": int(full["chunks"]),
                "build_wall_s": round(full["wall_s"], 1), "rounds": fulls[name],
                "kills": kills, "lost_s_mean": round(statistics.mean(lost), 1),
                "lost_s_max": round(max(lost), 1),
                "lost_docs_mean": round(statistics.mean(lost) * rate),
                "lost_docs_max": round(max(lost) * rate),
                "saved_docs_mean": round(statistics.mean(k["saved_docs"] for k in kills)),
            })  # fmt: skip
            print(json.dumps(rows[-1]))
    payload = {"benchmark": "checkpoints", "machine": machine_info(), "limit": args.limit,
               "collection": args.collection.name, "rows": rows}  # fmt: skip
    write_results(args.out, "checkpoints-cpu", payload, markdown(payload))


def run_build(corpus: Path, target: Path, flags: list[str], kill_after: float | None = None
              ) -> dict[str, Any]:  # fmt: skip
    """Run `latesearch index`, watching its staging folder; with `kill_after`, SIGKILL it
    that many seconds after encoding began. Returns the timeline's figures."""
    staging = target.with_name(target.name + ".building")
    command = [sys.executable, "-m", "latesearch", "index", str(corpus), str(target),
               "--quiet", *flags]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    began = last_save = None
    saved_docs, seen_mtime = 0, None
    while proc.poll() is None:
        now = time.monotonic()
        if began is None and (staging / "chunks").is_dir():
            began = now  # the model is loaded, the first group is being encoded
        progress = staging / "progress.json"
        try:
            mtime = progress.stat().st_mtime
        except OSError:
            mtime = None
        if mtime is not None and mtime != seen_mtime:
            try:
                state = json.loads(progress.read_text())
                saved_docs, seen_mtime = sum(c["n_docs"] for c in state["chunks"]), mtime
                last_save = now
            except (OSError, ValueError):
                pass  # being replaced: read it at the next look
        if kill_after is not None and began is not None and now - began >= kill_after:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            since = last_save if last_save is not None else began
            return {"killed_at_s": round(now - began, 1), "lost_s": round(now - since, 1),
                    "saved_docs": saved_docs}  # fmt: skip
        time.sleep(POLL)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr.read().decode()[-800:]}")
    if kill_after is not None:
        raise RuntimeError("the build finished before the kill: lower the kill moment")
    manifest = json.loads((target / "manifest.json").read_text())
    end = last_save if last_save is not None else time.monotonic()
    return {"encoding_s": end - began, "wall_s": time.monotonic() - started,
            "chunks": len(manifest["chunks"])}  # fmt: skip


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        f"# Work lost by a kill at a random moment of a build ({payload['limit']} documents "
        f"of {payload['collection']})",
        "",
        f"Machine: {describe(payload['machine'])}. Model: the default. Whole build: median "
        "wall time of the uninterrupted builds (model load and compression included; the "
        "settings interleaved). Each killed build is killed (SIGKILL) at a moment drawn "
        "uniformly over its encoding; lost = encoding time since the last save "
        "(progress.json), and the documents encoded in it at the setting's throughput.",
        "",
        "| setting | whole build s | encoding docs/s | chunks | kills | lost s (mean / max) "
        "| lost docs (mean / max) | docs saved at the kill (mean) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        lines.append(
            f"| {r['setting']} | {r['build_wall_s']:.1f} | {r['docs_per_s']:.1f} | "
            f"{r['chunks']} | {len(r['kills'])} | "
            f"{r['lost_s_mean']:.1f} / {r['lost_s_max']:.1f} | {r['lost_docs_mean']} / "
            f"{r['lost_docs_max']} | {r['saved_docs_mean']} |"
        )
    lines += [
        "",
        "Production defaults are 5,000 documents and 120 s: a kill loses at most about one "
        "group's encoding, the smaller of those two limits (plus the group being read "
        "ahead, which was not encoded yet).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
