#!/usr/bin/env bash
# Cross-builds the edge binary (`generate` only, no training engine) for 64-bit ARM Linux
# (aarch64-unknown-linux-gnu: Raspberry Pi 4/5 with the 64-bit OS), runs it under
# qemu-aarch64 on a decoder exported on this (x86) machine, and checks that its output
# matches the x86 output within 1e-4.
#
# usage: scripts/edge-aarch64.sh DECODER.onnx [OUT_DIR]
#
# Needs Debian's gcc-aarch64-linux-gnu (the linker, and the C compiler for tract's ARM
# kernels) and qemu-user:  apt-get install gcc-aarch64-linux-gnu qemu-user
# The binary lands in target/aarch64-unknown-linux-gnu/edge/vae-cpu: copy it and the
# decoder to the Pi and run `./vae-cpu generate --onnx decoder.onnx --out faces.png`.
set -euo pipefail

decoder=${1:?usage: scripts/edge-aarch64.sh DECODER.onnx [OUT_DIR]}
out=${2:-runs/edge-aarch64}
cd "$(dirname "$0")/.."
mkdir -p "$out"

for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
    if ! command -v "$tool" > /dev/null; then
        echo "error: $tool not found; install: apt-get install gcc-aarch64-linux-gnu qemu-user" >&2
        exit 1
    fi
done
target=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

echo "== cross-building the edge binary for $target"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
cargo build --locked --profile edge --no-default-features --features edge \
    --target "$target"
arm=target/$target/edge/vae-cpu
file "$arm" 2> /dev/null || true
echo "size: $(stat -c %s "$arm") bytes"

echo "== x86: generate with the full build"
x86=${VAE_CPU:-target/release/vae-cpu}
if [ ! -x "$x86" ]; then
    cargo build --locked --release
fi
"$x86" generate --onnx "$decoder" --n 16 --seed 7 --out "$out/x86.png" \
    --save-values "$out/x86.npy"

# A Raspberry Pi 4's core by default (QEMU_CPU=cortex-a76 for a Pi 5). qemu's default CPU
# has SVE, which tract would pick and qemu emulates very slowly.
cpu=${QEMU_CPU:-cortex-a72}
echo "== aarch64 ($cpu) under qemu: generate and compare with x86"
qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$arm" generate --onnx "$decoder" --n 16 --seed 7 \
    --out "$out/aarch64.png" --save-values "$out/aarch64.npy" \
    --compare-values "$out/x86.npy" --tolerance 1e-4
echo "ok: the aarch64 edge binary matches x86 within 1e-4 ($out/aarch64.png)"
