#!/usr/bin/env bash
# readme_images.sh [--full | --render-only] [PYTHON]
# Regenerates the sample results in docs/benchmarks/: runs every benchmark through the plugin (--quick unless
# --full; PyTorch from PYTHON, default ~/.torchenv/bin/python), copies the reports (JSON) there, and renders
# each chart as the PNG the README shows (screenshot.sh, headless Chromium). --render-only skips the run and
# redraws the PNGs from the reports already there. Run it on a quiet machine: the README shows what it measures.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=quick
case ${1:-} in --full) mode=full; shift ;; --render-only) mode=render; shift ;; esac
python=${1:-$HOME/.torchenv/bin/python}
if [ $mode != render ]; then
    swift package --allow-writing-to-package-directory benchmark $([ $mode = quick ] && echo --quick) --pytorch "$python"
    rm -f docs/benchmarks/*.json
    mkdir -p docs/benchmarks
    for json in results/*.json; do
        case $json in *.workloads.json) ;; *) cp "$json" docs/benchmarks/ ;; esac
    done
fi
swift build -c release --product BenchmarkPage
page=$(mktemp -d)
cp docs/benchmarks/*.json "$page/"
"$(swift build -c release --show-bin-path)/BenchmarkPage" "$page"
rm -f docs/benchmarks/*.png
for svg in "$page"/*.svg; do bash Benchmarks/screenshot.sh "$svg" "docs/benchmarks/$(basename "${svg%.svg}").png"; done
echo "readme_images.sh: docs/benchmarks/ updated ($mode); commit it"
