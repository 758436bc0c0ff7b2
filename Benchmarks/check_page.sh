#!/usr/bin/env bash
# check_page.sh [FOLDER]
# Builds BenchmarkPage, renders the committed sample reports (docs/benchmarks/*.json) into FOLDER (default: a
# temporary folder) as index.html and charts, and shoots the page and every chart in headless Chromium
# (screenshot.sh): the results page renders in a real browser. .ci/run runs it where Chromium is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
swift build -c release --product BenchmarkPage
cp docs/benchmarks/*.json "$out/"
"$(swift build -c release --show-bin-path)/BenchmarkPage" "$out"
bash Benchmarks/screenshot.sh "$out/index.html" "$out/index.png" 1280 2400
for svg in "$out"/*.svg; do bash Benchmarks/screenshot.sh "$svg" "${svg%.svg}.png"; done
