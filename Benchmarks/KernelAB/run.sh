#!/usr/bin/env bash
# Two builds of the C kernels, one process, alternating: the way to see a kernel change of a few percent
# on a host whose speed drifts by 10-40 % between runs (a shared VM). Each build is compiled as a shared
# object; the driver loads both and times one head's attention (sdpa_attend over every query and key
# tile, as the fused driver calls it) with A and B in turn, and prints the ratio of B's time to A's.
#   Benchmarks/KernelAB/run.sh [--a REV] [--b REV|worktree] [FAMILY E DTYPE ROUNDS [KEYS_A [KEYS_B]]]
#     REV: a git revision (default: HEAD for A, the working tree for B)
#     FAMILY: a kernel family (amx, avx512bf16, avx512, avx2, portable, ...; default: the best)
#     E: head dimension (default 64); DTYPE: float32 | float16 | bfloat16 (default bfloat16)
#     ROUNDS: A/B pairs (default 30); KEYS_A / KEYS_B: keys per tile (default: 128 up to E = 64, else 64)
#   Environment: QUERY_ROWS (query tile rows, default 96), L and S (default 2048), MASK (none, causal or
#   causal-lower-right: the driver's causal tiles, skipped, whole, or with a diagonal bool mask; default none).
#   Decoding: L of at most 4 times the direct reader instead (the query rows of one key-value head, as a
#   GQA group's are stacked) over HEADS key-value heads (default 8), K and V left in cache between calls,
#   or read from memory with COLD=1 (a 512 MiB buffer read before each call), e.g.
#     L=1 S=4096 COLD=1 Benchmarks/KernelAB/run.sh avx512 128 float32 10
#   As the library does, two or more rows hand P.V the next tile where the build's sdpa_prefetches_next_tile()
#   says so (SDPA_PREFETCH_NEXT_TILE=0 or 1 sets it for both builds).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
a=HEAD b=worktree
while [ $# -gt 0 ]; do
    case "$1" in
        --a) a=$2; shift 2 ;;
        --b) b=$2; shift 2 ;;
        *) break ;;
    esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
build() { # build REV NAME
    local src="$root/Sources/CSDPAKernels"
    if [ "$1" != worktree ]; then
        git -C "$root" archive "$1" Sources/CSDPAKernels | tar -x -C "$out" --transform "s|^Sources/CSDPAKernels|$2-src|"
        src="$out/$2-src"
    fi
    clang -O2 -fPIC -shared -I"$src/include" "$src"/*.c -o "$out/$2.so" -lm
}
build "$a" a & pa=$!
build "$b" b & pb=$!
wait "$pa" && wait "$pb" # a failed build stops here (a bare `wait` would not)
clang -O2 -I"$root/Sources/CSDPAKernels/include" "$root/Benchmarks/KernelAB/kernel_ab.c" -o "$out/kernel_ab" -ldl -lm
echo "A = $a, B = $b"
"$out/kernel_ab" "$out/a.so" "$out/b.so" "$@"
