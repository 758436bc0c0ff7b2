#!/usr/bin/env bash
# screenshot.sh INPUT OUTPUT.png [WIDTH HEIGHT]
# Renders INPUT (a chart .svg or a page .html) in headless Chromium (Debian's `chromium` package) at 100 %
# zoom and saves a PNG; an SVG is shot at its own width and height. Fails when Chromium writes nothing or
# the picture is blank. Used by check_page.sh (CI) and readme_images.sh.
set -euo pipefail
input=$1 output=$2
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "screenshot.sh: no chromium (apt-get install -y chromium)" >&2; exit 1; }
if [ $# -ge 4 ]; then
    width=$3 height=$4
else
    # The root element's width="..." height="..."; rounded up to whole pixels.
    read -r width height < <(python3 -c 'import re, sys, math
head = open(sys.argv[1], encoding="utf-8").read(2000)
size = [math.ceil(float(re.search(k + r"=\"([0-9.]+)\"", head).group(1))) for k in ("width", "height")]
print(*size)' "$input")
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$output"
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$profile" --force-device-scale-factor=1 --window-size="$width,$height" \
    --screenshot="$output" "file://$(realpath "$input")" >"$profile/log" 2>&1 || { cat "$profile/log" >&2; exit 1; }
# A PNG of the asked size whose pixels are not all alike.
python3 - "$output" "$width" "$height" <<'PY'
import struct, sys, zlib
path, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (width, height), f"{path}: {w}x{h}, expected {width}x{height}"
chunks, i = [], 8
while i < len(data):
    n, kind = struct.unpack(">I4s", data[i:i + 8])
    if kind == b"IDAT":
        chunks.append(data[i + 8:i + 8 + n])
    i += 12 + n
pixels = zlib.decompress(b"".join(chunks))
distinct = len(set(pixels[k:k + 3] for k in range(0, min(len(pixels), 3_000_000), 3)))
assert distinct > 50, f"{path}: looks blank ({distinct} distinct byte triples)"
print(f"screenshot.sh: {path}, {w}x{h}, {len(data) // 1024} KiB")
PY
