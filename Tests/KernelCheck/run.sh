#!/usr/bin/env bash
# Builds Tests/KernelCheck/kernel_check.c with the C kernels and runs it: every kernel family
# this CPU runs, each entry point against a reference in double.
#   Tests/KernelCheck/run.sh           # natively (x86-64: amx, avx512bf16, avx512 where present, avx2, portable)
#   Tests/KernelCheck/run.sh --arm64   # cross-compiled for arm64 Linux with the toolchain's clang and run
#                                      # under qemu user mode (the neon family); installs qemu-user-static
#                                      # and the arm64 C runtime from Debian's packages when missing
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src=("$root/Tests/KernelCheck/kernel_check.c" "$root"/Sources/CSDPAKernels/*.c)
inc="-I$root/Sources/CSDPAKernels/include"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ "${1:-}" = "--arm64" ]; then
    gcclib=$(ls -d /usr/lib/gcc-cross/aarch64-linux-gnu/* 2>/dev/null | sort -V | tail -n 1 || true)
    if ! command -v qemu-aarch64-static >/dev/null || [ -z "$gcclib" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-dev-arm64-cross libgcc-12-dev-arm64-cross >/dev/null
        gcclib=$(ls -d /usr/lib/gcc-cross/aarch64-linux-gnu/* | sort -V | tail -n 1)
    fi
    clang --target=aarch64-linux-gnu --sysroot=/ -isystem /usr/aarch64-linux-gnu/include -O2 $inc \
        "${src[@]}" -o "$out/kernel_check" -fuse-ld=lld -B"$gcclib" -L"$gcclib" -L/usr/aarch64-linux-gnu/lib -lm
    timeout 600 qemu-aarch64-static -cpu max -L /usr/aarch64-linux-gnu "$out/kernel_check"
else
    clang -O2 $inc "${src[@]}" -o "$out/kernel_check" -lm
    "$out/kernel_check"
fi
