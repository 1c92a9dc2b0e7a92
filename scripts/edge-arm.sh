#!/usr/bin/env bash
# Cross-builds the edge binary (`generate` only, no training engine) for the Raspberry Pi's
# two Linux targets, runs each under qemu on a decoder exported on this (x86) machine, and
# checks that its output matches the x86 output within 1e-4:
#   aarch64-unknown-linux-gnu       64-bit Raspberry Pi OS (Pi 3/4/5, Zero 2)
#   armv7-unknown-linux-gnueabihf   32-bit Raspberry Pi OS (Pi 2/3/4, Zero 2)
#
# usage: scripts/edge-arm.sh DECODER.onnx [OUT_DIR]
#   EDGE_TARGETS="aarch64 armv7" (the default) picks the targets.
#   EDGE_MAX_BYTES (default 8000000): a stripped binary above this size fails the check.
#
# Needs Debian's cross compilers (the linker, and the C compiler for tract's ARM kernels)
# and qemu-user:
#   apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user
# The binaries land in target/<target>/edge/vae-cpu: copy one and the decoder to the Pi and
# run `./vae-cpu generate --onnx decoder.onnx --out faces.png`.
set -euo pipefail

decoder=${1:?usage: scripts/edge-arm.sh DECODER.onnx [OUT_DIR]}
out=${2:-runs/edge-arm}
cd "$(dirname "$0")/.."
mkdir -p "$out"

echo "== x86: generate with the full build"
x86=${VAE_CPU:-target/release/vae-cpu}
if [ ! -x "$x86" ]; then
    cargo build --locked --release
fi
"$x86" generate --onnx "$decoder" --n 16 --seed 7 --out "$out/x86.png" \
    --save-values "$out/x86.npy"

# One target's rust target, gcc prefix, qemu, qemu CPU and sysroot, as "$@" of `prepare`
# and `check`. qemu's default CPUs are not a Pi's (the aarch64 one has SVE, which tract
# would pick and qemu emulates very slowly): a Pi 4's Cortex-A72 (QEMU_CPU=cortex-a76 for a
# Pi 5), and for 32-bit a Pi 2's Cortex-A7 (QEMU_ARM_CPU to change it).
spec() {
    case $1 in
    aarch64) echo aarch64-unknown-linux-gnu aarch64-linux-gnu-gcc qemu-aarch64 \
        "${QEMU_CPU:-cortex-a72}" /usr/aarch64-linux-gnu ;;
    armv7) echo armv7-unknown-linux-gnueabihf arm-linux-gnueabihf-gcc qemu-arm \
        "${QEMU_ARM_CPU:-cortex-a7}" /usr/arm-linux-gnueabihf ;;
    *) echo "error: unknown target $1 (aarch64 or armv7)" >&2; return 2 ;;
    esac
}

# Checks a target's tools and rust target, and adds its linker settings to `build_env` and
# the target to `build_targets`.
prepare() {
    local target=$1 gcc=$2 qemu=$3
    for tool in "$gcc" "$qemu"; do
        if ! command -v "$tool" > /dev/null; then
            echo "error: $tool not found; install: apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user" >&2
            exit 1
        fi
    done
    if ! rustup target list --installed | grep -qx "$target"; then
        rustup target add "$target"
    fi
    local upper
    upper=$(echo "$target" | tr 'a-z-' 'A-Z_')
    build_env+=("CARGO_TARGET_${upper}_LINKER=$gcc" "CC_${target//-/_}=$gcc")
    build_targets+=(--target "$target")
}

# The built binary's size bound, and its output under qemu against x86's.
check() {
    local target=$1 qemu=$3 cpu=$4 sysroot=$5
    local bin=target/$target/edge/vae-cpu
    local size max=${EDGE_MAX_BYTES:-8000000}
    size=$(stat -c %s "$bin")
    echo "== $target: size $size bytes (at most $max)"
    if [ "$size" -gt "$max" ]; then
        echo "error: the $target edge binary is $size bytes, over $max (EDGE_MAX_BYTES)" >&2
        exit 1
    fi
    echo "== $target ($cpu) under qemu: generate and compare with x86"
    "$qemu" -cpu "$cpu" -L "$sysroot" "$bin" generate --onnx "$decoder" --n 16 --seed 7 \
        --out "$out/$target.png" --save-values "$out/$target.npy" \
        --compare-values "$out/x86.npy" --tolerance 1e-4
    echo "ok: the $target edge binary matches x86 within 1e-4 ($out/$target.png)"
}

build_env=()
build_targets=()
specs=()
for t in ${EDGE_TARGETS:-aarch64 armv7}; do
    s=$(spec "$t") || exit 2
    specs+=("$s")
    # shellcheck disable=SC2086 # the spec's words are its fields
    prepare $s
done
# All targets in one cargo run: each fat-LTO link is single-threaded, so two targets build
# side by side on two cores in little more than the time of one.
echo "== cross-building the edge binary for ${build_targets[*]}"
env "${build_env[@]}" cargo build --locked --profile edge --no-default-features --features edge \
    "${build_targets[@]}"
for s in "${specs[@]}"; do
    # shellcheck disable=SC2086
    check $s
done
