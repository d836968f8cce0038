#!/usr/bin/env bash
# The v20c run and its dev scoring (models/README.md, "v20 candidate"). Its data:
# scripts/default_model/fetch_teacher_mpnet.sh, then make_teacher_dense.py (teacher.json
# beside this file is that step's summary).
set -euo pipefail
latesearch train --triples .work/dm/data20/neighbours.jsonl --collection .work/dm/data14/collection.jsonl \
    --queries .work/dm/data14/queries.tsv --negatives 11 --distill-from triples \
    --base-model .work/dm/start8 --output runs/default-v20c --steps 100 --batch-size 16 --lr 3e-5 \
    --projection-lr 1e-4 --warmup-steps 20 --doc-maxlen 128 --train-layers 3 --anchor-weight 1.0 \
    --doc-chunk 32 --save-every 50 --eval-every 50 --dev-queries .work/dm/dev/queries.tsv \
    --dev-qrels .work/dm/dev/qrels-novel.txt --dev-collection .work/dm/dev/collection.jsonl \
    --dev-average groups --log-every 10 --seed 12345 --device cpu
python scripts/default_model/evaluate_dev.py --dev .work/dm/dev --novel-positives .work/dm/data6/triples.jsonl \
    --doc-maxlen 300 --out benchmarks/results/default-model/dev-doclen.json \
    "v20c step 50 @300=runs/default-v20c/checkpoints/step-000050" "v20c step 100 @300=runs/default-v20c/checkpoints/step-000100"
