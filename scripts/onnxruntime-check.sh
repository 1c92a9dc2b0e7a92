#!/usr/bin/env bash
# Checks exported decoders outside vae-cpu: ONNX's full checker and onnxruntime's output
# against the engine's, within 1e-4, and onnxruntime's batch-1 latency (one thread).
#
# usage: scripts/onnxruntime-check.sh CHECKPOINT DECODER.onnx [DECODER.onnx ...]
#
# The decoders must come from CHECKPOINT (`vae-cpu export-onnx`, with or without
# --plain-conv-transpose / --keep-batch-norm). Installs onnx, onnxruntime and numpy from
# PyPI into target/onnxruntime-venv on first use (needs python3 with venv).
set -euo pipefail

checkpoint=${1:?usage: scripts/onnxruntime-check.sh CHECKPOINT DECODER.onnx [DECODER.onnx ...]}
shift
[ $# -gt 0 ] || { echo "usage: scripts/onnxruntime-check.sh CHECKPOINT DECODER.onnx ..." >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${VAE_CPU:-$root/target/release/vae-cpu}
venv="$root/target/onnxruntime-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnx, onnxruntime, numpy" 2> /dev/null; then
    echo "== installing onnx, onnxruntime and numpy into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check onnx onnxruntime numpy
fi
case_dir="$(mktemp -d)"
trap 'rm -rf "$case_dir"' EXIT
# The engine's images for known latents: tract is checked by verify-onnx on the way.
"$bin" verify-onnx "$1" --checkpoint "$checkpoint" --save-case "$case_dir" > /dev/null
"$venv/bin/python" "$root/scripts/onnxruntime_check.py" "$case_dir" "$@"
