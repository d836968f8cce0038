"""Check a `latesearch train` command against the logged config of the shipped model's run:
build the TrainConfig the command line describes (the CLI's own parser and
`config_from_args`, nothing is trained or read) and compare it field by field with a logged
train_config*.json, printing every difference. Exit status 1 if a training setting differs.

python scripts/default_model/check_train_config.py models/default-v17c/train_config-s2.json \
    -- --triples .work/dm/data16/neighbours.jsonl ... --seed 2 --output runs/v18-s2

`output` and `resume` say where a run is written and whether it continues, not what it
learns: a difference there is printed and allowed. `--dm DIR` reads paths under DIR as the
logged run's `.work/dm`; `--set FIELD=VALUE` changes the logged value first (for a seed
whose own config was not logged), and is printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from latesearch.cli.main import build_parser
from latesearch.cli.train import config_from_args

LOCATION_ONLY = ("output", "resume")
LOGGED_DM = ".work/dm"


def main() -> int:
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit("usage: check_train_config.py LOGGED.json [--dm DIR] [--set F=V] -- TRAIN_ARGS")
    split = argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("logged")
    ap.add_argument("--dm", default=LOGGED_DM, help=f"this rebuild's {LOGGED_DM}")
    ap.add_argument("--set", action="append", default=[], help="FIELD=VALUE (a JSON value)")
    args = ap.parse_args(argv[:split])
    built = config_from_args(build_parser().parse_args(["train", *argv[split + 1 :]])).to_dict()
    with open(args.logged, encoding="utf-8") as f:
        logged = json.load(f)
    for item in args.set:
        field, _, value = item.partition("=")
        print(f"  {args.logged}: {field} {logged.get(field)!r} -> {json.loads(value)!r} (--set)")
        logged[field] = json.loads(value)
    dm = args.dm.rstrip("/") + "/"
    for key, value in built.items():  # this rebuild's DM/... is the logged .work/dm/...
        if isinstance(value, str) and value.startswith(dm):
            built[key] = LOGGED_DM + "/" + value[len(dm) :]
    differ = location = 0
    for key in sorted(set(built) | set(logged)):
        if built.get(key, "<absent>") == logged.get(key, "<absent>"):
            continue
        allowed = key in LOCATION_ONLY
        location += allowed
        differ += not allowed
        kind = "location only" if allowed else "DIFFERS"
        print(f"  {key}: logged {logged.get(key, '<absent>')!r}, "
              f"command {built.get(key, '<absent>')!r} ({kind})")
    same = len(set(built) | set(logged)) - differ - location
    verdict = "OK" if not differ else f"{differ} training setting(s) differ"
    print(f"config check vs {args.logged}: {same} fields equal, {location} location only: "
          f"{verdict}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
