"""The long run of the fuzz tests (tests/test_fuzz.py): every hypothesis test of that file
under --seeds different seeds, i.e. seeds x (60 reader/parser cases per test, 40 damaged
indexes). A failure is any exception other than a LatesearchError (or a hang past the
timeout), or a damaged index file that opens and passes `verify`; the summary lists the
cases tried and the failures found, with their output.

    python tests/stress/fuzz.py --seeds 25

Writes benchmarks/results/fuzz-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import REPO, RESULTS, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

TESTS = "tests/test_fuzz.py"
CASES = {"readers": 9 * 60, "request parsers": 60, "filter compiler": 60, "damaged index": 40}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=25)
    p.add_argument("--timeout", type=int, default=600, help="seconds per seed")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    runs: list[dict[str, Any]] = []
    for seed in range(1, args.seeds + 1):
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS,
                 f"--hypothesis-seed={seed}"],
                cwd=REPO, capture_output=True, text=True, timeout=args.timeout,
            )  # fmt: skip
            out, code = done.stdout + done.stderr, done.returncode
        except subprocess.TimeoutExpired:
            out, code = "timed out (a hang)", -1
        failed = re.findall(r"^FAILED (\S+)", out, flags=re.M)
        runs.append({"seed": seed, "returncode": code, "failed": failed,
                     "seconds": round(time.perf_counter() - started, 1),
                     "output": failure_report(out) if code else ""})  # fmt: skip
        print(f"seed {seed}: {'ok' if code == 0 else failed or out[-200:]}", flush=True)
    payload = {"benchmark": "fuzz", "machine": machine_info(), "seeds": args.seeds,
               "cases": {k: v * args.seeds for k, v in CASES.items()},
               "failures": [r for r in runs if r["returncode"] != 0], "runs": runs}  # fmt: skip
    write_results(args.out, "fuzz-cpu", payload, markdown(payload))
    print(markdown(payload))


def markdown(payload: dict[str, Any]) -> str:
    cases = payload["cases"]
    lines = [f"# Fuzzing ({describe(payload['machine'])})", "",
             f"`{TESTS}` under {payload['seeds']} hypothesis seeds: "
             + ", ".join(f"{n:,} {k} cases" for k, n in cases.items())
             + f" ({sum(cases.values()):,} in all). A failure is an exception other than "
             "a `LatesearchError`, a hang, or a damaged index file (any but the checksum "
             "records) that opens and passes `verify`.", "",
             f"Failures: **{len(payload['failures'])}** of {payload['seeds']} seeds."]  # fmt: skip
    for failure in payload["failures"]:
        lines += ["", f"- seed {failure['seed']}: {failure['failed'] or 'see the JSON'}"]
    return "\n".join(lines) + "\n"


def failure_report(out: str) -> str:
    """The failures section of pytest's output (the falsifying example and traceback), not
    its warnings; at most 3,000 characters."""
    start = out.find("= FAILURES =")
    end = out.find("warnings summary", start)
    section = out[start:end] if start >= 0 else out
    return section[-3000:]


if __name__ == "__main__":
    main()

