#!/usr/bin/env bash
# vae-cpu against PyTorch (CPU, eager) on the same training step: same architecture (built
# from the same models/*.toml by scripts/pytorch_step.py), batch, threads and synthetic
# data. PyTorch runs in both layouts, NCHW and channels_last (input and modules), and the
# ratio divides by the faster of the two: PyTorch at its best.
#
# usage: scripts/bench-vs-pytorch.sh [STEPS] [ROUNDS]   (default 5 timed steps, 3 rounds)
#
# The machine is shared and noisy: each round runs vae-cpu, PyTorch NCHW and PyTorch
# channels_last one after another (alternating), and the table gives the median images/s
# over the rounds. Each run is a fresh process, so its peak memory is its own.
#
# MODE=decode or MODE=encode times inference instead (eval mode, no gradients: PyTorch
# under torch.no_grad()), STEPS calls each; the default rows are then batch 1 and 16
# (decode: one face's latency, a small grid) or 256 (encode, as evaluate runs it).
#
# PyTorch goes into target/pytorch-venv (pip install torch; PyPI's Linux wheel, several GB
# with its CUDA libraries, which stay unused). Set PYTHON to use a Python that has torch;
# ROWS (e.g. "celeba32:128 celeba64:64") and THREADS ("1 2") choose the rows.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-5}
rounds=${2:-3}
mode=${MODE:-train}
case $mode in
    train) default_rows="celeba32:128 celeba32:500 celeba64:64 celeba64x48-in:64" ;;
    decode) default_rows="celeba32:1 celeba32:16 celeba64:1 celeba64:16 celeba64x48-in:1 celeba64x48-in:16" ;;
    encode) default_rows="celeba32:256 celeba64:256 celeba64x48-in:256" ;;
    *) echo "MODE must be train, decode or encode, not $mode" >&2; exit 2 ;;
esac
rows=${ROWS:-$default_rows}
threads_list=${THREADS:-"1 2"}

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
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-15s %5s %3s | %9s %8s | %9s %9s %8s | %6s\n' model batch thr \
    "vae img/s" "peak MiB" "pt NCHW" "pt CL" "peak MiB" "ratio"
for row in $rows; do
    model=${row%%:*} batch=${row##*:}
    for threads in $threads_list; do
        ours="" nchw="" cl="" our_mem=0 their_mem=0
        for _ in $(seq "$rounds"); do
            o=$($vae bench --config "models/$model.toml" --batch-size "$batch" --threads "$threads" --steps "$steps" --mode "$mode")
            n=$("$PYTHON" scripts/pytorch_step.py "models/$model.toml" --batch-size "$batch" --threads "$threads" --steps "$steps" --mode "$mode" --layout nchw)
            c=$("$PYTHON" scripts/pytorch_step.py "models/$model.toml" --batch-size "$batch" --threads "$threads" --steps "$steps" --mode "$mode" --layout channels_last)
            ours+=" $(field images/s <<< "$o")" nchw+=" $(field images/s <<< "$n")" cl+=" $(field images/s <<< "$c")"
            our_mem=$(field "peak memory" <<< "$o")
            their_mem=$(awk -v a="$(field "peak memory" <<< "$n")" -v b="$(field "peak memory" <<< "$c")" 'BEGIN { print (a < b) ? a : b }')
        done
        a=$(median <<< "$ours") b=$(median <<< "$nchw") c=$(median <<< "$cl")
        printf '%-15s %5s %3s | %9.1f %8s | %9.1f %9.1f %8s | %5.2fx\n' "$model" "$batch" "$threads" \
            "$a" "$our_mem" "$b" "$c" "$their_mem" \
            "$(awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { print a / ((b > c) ? b : c) }')"
    done
done
echo "(medians of $rounds alternating rounds of $steps timed steps; ratio = vae-cpu / the faster PyTorch layout;"
echo " $("$PYTHON" -c 'import torch; print("PyTorch", torch.__version__)'), vae-cpu $($vae --version | cut -d" " -f2))"
