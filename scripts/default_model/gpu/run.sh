#!/usr/bin/env bash
# Issue 7's GPU training runs (v11 candidates), on the lent device machine or, scaled down,
# anywhere. Trains each named variant from the bundle (bundle.py) and packs its best
# checkpoint (pack.py) into OUT right after it finishes, so a run cut short keeps what it did.
#
#   scripts/default_model/gpu/run.sh BUNDLE OUT VARIANT...
#
# Variants (the recipes fixed in models/README.md, "v11 candidates"; v12 ran all and weak
# on a bundle of data12):
#   all   the bundle's data (judged + weak pairs), top 3 layers, lr 3e-5 / 1e-4
#   weak  its weak pairs only (no judged SciFact pairs), otherwise as all
#   low   as all with lr 1e-5 / 3e-5
#   deep  as low with all 6 layers trained
# A variant may name its training seed, VARIANT:SEED (v14: weak:2); the default is 12345.
# Its run and its tar are then named VARIANT-sSEED.
# Environment: STEPS (800), EVAL_EVERY (100), BATCH (32), DEVICE (cuda), LIMIT_S (540: a
# variant is skipped when the time left is under 1.2x the first variant's duration, 1.8x
# for deep), HEAD (use only the first HEAD training examples; for smoke tests), NEGATIVES
# (31: documents per example minus one; v16g's rows have 31 documents, NEGATIVES=30),
# DATA (BUNDLE/data: another bundle's data folder over this bundle's start).
set -euo pipefail
bundle=$1; out=$2; shift 2
STEPS=${STEPS:-800}; EVAL_EVERY=${EVAL_EVERY:-100}; BATCH=${BATCH:-32}
DEVICE=${DEVICE:-cuda}; LIMIT_S=${LIMIT_S:-540}; NEGATIVES=${NEGATIVES:-31}
DATA=${DATA:-$bundle/data}
t0=$(date +%s)
work=$(mktemp -d)
mkdir -p "$out"
unxz() { python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; }
for f in "$DATA"/*.xz; do unxz "$f" "$work/$(basename "${f%.xz}")"; done
for f in "$bundle"/dev/*.xz; do unxz "$f" "$work/dev_$(basename "${f%.xz}")"; done
if [ -n "${HEAD:-}" ]; then head -n "$HEAD" "$work/triples.jsonl" > "$work/t" && mv "$work/t" "$work/triples.jsonl"; fi
grep -v '^\["sf:' "$work/triples.jsonl" > "$work/triples-weak.jsonl"
wc -l "$work"/triples*.jsonl
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"

mkdir -p runs
first=""
for spec in "$@"; do
  variant=${spec%%:*}; seed=12345; tag=$variant
  if [ "$spec" != "$variant" ]; then seed=${spec#*:}; tag=$variant-s$seed; fi
  case $seed in ''|*[!0-9]*) echo "bad seed in $spec" >&2; exit 2 ;; esac
  lr=3e-5; plr=1e-4; layers=3; triples="$work/triples.jsonl"
  case $variant in
    all) ;;
    weak) triples="$work/triples-weak.jsonl" ;;
    low) lr=1e-5; plr=3e-5 ;;
    deep) lr=1e-5; plr=3e-5; layers=6 ;;
    *) echo "unknown variant $variant" >&2; exit 2 ;;
  esac
  now=$(date +%s); left=$((LIMIT_S - (now - t0)))
  if [ -n "$first" ]; then
    need=$((first * 12 / 10)); [ "$variant" = deep ] && need=$((first * 18 / 10))
    if [ "$left" -lt "$need" ]; then echo "skip $tag: ${left}s left, needs ~${need}s"; continue; fi
  fi
  run="runs/gpu-$tag"
  rm -rf "$run"
  s=$(date +%s)
  python3 -m latesearch train --triples "$triples" --collection "$work/collection.jsonl" \
    --queries "$work/queries.tsv" --negatives "$NEGATIVES" --distill-from triples \
    --base-model "$bundle/start" --output "$run" --steps "$STEPS" --batch-size "$BATCH" \
    --lr "$lr" --projection-lr "$plr" --warmup-steps $((STEPS / 10)) --doc-maxlen 128 \
    --train-layers "$layers" --anchor-weight 1.0 --save-every "$EVAL_EVERY" --keep-last 1 \
    --eval-every "$EVAL_EVERY" --dev-queries "$work/dev_queries.tsv" \
    --dev-qrels "$work/dev_qrels-novel.txt" --dev-collection "$work/dev_collection.jsonl" \
    --dev-average groups --log-every 20 --seed "$seed" --device "$DEVICE" 2>&1 | tee "$run.log"
  cp "$run.log" "$run/train.log"
  took=$(( $(date +%s) - s ))
  [ -z "$first" ] && first=$took
  echo "variant $tag: ${took}s for $STEPS steps"
  python3 scripts/default_model/gpu/pack.py "$run" "$bundle/start" "$out/$tag.tar"
done
echo "total $(( $(date +%s) - t0 ))s"
