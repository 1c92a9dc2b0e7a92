#!/usr/bin/env bash
# vae-cpu against PyTorch (CPU, eager) on the same training step: same architecture (built
# from the same models/*.toml by scripts/pytorch_step.py), batch, threads and synthetic
# data. Prints one table with images/s, GFLOP/s, peak memory and the ratio vae-cpu/PyTorch.
#
# usage: scripts/bench-vs-pytorch.sh [STEPS]      (default 5 timed steps per row)
#
# PyTorch goes into target/pytorch-venv (pip install torch; PyPI's Linux wheel, several GB
# with its CUDA libraries, which stay unused). Set PYTHON to use a Python that has torch.
# Each row runs in a fresh process, so its peak memory is its own.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-5}

if [ -z "${PYTHON:-}" ]; then
    venv=target/pytorch-venv
    if ! "$venv/bin/python" -c "import torch" 2> /dev/null; then
        echo "installing PyTorch into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q torch numpy
    fi
    PYTHON=$venv/bin/python
fi
cargo build --release --locked -q
vae=target/release/vae-cpu

field() { # field NAME < output: the number after NAME
    awk -v name="$1" '$0 ~ "^"name { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }'
}

printf '%-9s %5s %7s | %9s %9s %8s | %9s %9s %8s | %6s\n' model batch threads \
    "vae img/s" "GFLOP/s" "peak MiB" "pt img/s" "GFLOP/s" "peak MiB" ratio
for row in "celeba32 128" "celeba32 500" "celeba64 64"; do
    set -- $row
    for threads in 1 2; do
        ours=$($vae bench --config "models/$1.toml" --batch-size "$2" --threads "$threads" --steps "$steps")
        theirs=$("$PYTHON" scripts/pytorch_step.py "models/$1.toml" --batch-size "$2" --threads "$threads" --steps "$steps")
        a=$(field "images/s" <<< "$ours"); b=$(field "images/s" <<< "$theirs")
        printf '%-9s %5s %7s | %9s %9s %8s | %9s %9s %8s | %5.2fx\n' "$1" "$2" "$threads" \
            "$a" "$(field GFLOP/s <<< "$ours")" "$(field "peak memory" <<< "$ours")" \
            "$b" "$(field GFLOP/s <<< "$theirs")" "$(field "peak memory" <<< "$theirs")" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
    done
done
echo "($("$PYTHON" -c 'import torch; print("PyTorch", torch.__version__)'), vae-cpu $($vae --version | cut -d" " -f2), $steps timed steps per row)"
