#!/usr/bin/env bash
# Two vae-cpu builds on the same training step at the same time, one thread each, each
# pinned to its own CPU (`taskset`), the CPUs swapped every round. On a shared virtual
# machine whose speed moves by a third from one minute to the next, runs made side by
# side see the same minute: the ratio of a pair varies far less than that of runs made
# one after the other (`scripts/ab-builds.sh`), and swapping the CPUs cancels a CPU that
# is slower than the other. It measures one thread's speed, not the pool's.
#
# usage: scripts/ab-paired.sh A_BINARY B_BINARY [MODEL] [BATCH] [ROUNDS]
#        (defaults: celeba32, batch 128, 8 rounds; STEPS=6; needs 2 CPUs and taskset)
#
# It prints each pair (images/s of A and B, and B / A), then the median and the range of
# B / A. Run A against A too: the spread of those ratios is the noise floor of the hour.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
a_bin=$1
b_bin=$2
model=${3:-celeba32}
batch=${4:-128}
rounds=${5:-8}
steps=${STEPS:-6}
for bin in "$a_bin" "$b_bin"; do
    [ -x "$bin" ] || { echo "ab-paired: $bin is not an executable" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "ab-paired: needs 2 CPUs, this machine has $(nproc)" >&2; exit 2; }
command -v taskset > /dev/null || { echo "ab-paired: needs taskset (util-linux)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# images/s of one pinned single-thread run of `$1` on CPU `$2`, written to file `$3`.
run() {
    taskset -c "$2" "$1" bench --config "$model" --batch-size "$batch" --threads 1 \
        --steps "$steps" 2>&1 | awk '/^images\/s/{print $2}' > "$3"
}

ratios=()
for r in $(seq "$rounds"); do
    cpu_a=$(( r % 2 ))
    run "$a_bin" "$cpu_a" "$out/a" &
    run "$b_bin" $(( 1 - cpu_a )) "$out/b" &
    wait
    a=$(cat "$out/a")
    b=$(cat "$out/b")
    [ -n "$a" ] && [ -n "$b" ] || { echo "ab-paired: a run printed no images/s" >&2; exit 1; }
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b / a}')
    ratios+=("$ratio")
    echo "round $r: A on CPU $cpu_a $a, B $b images/s, B / A $ratio"
done
echo "A = $a_bin, B = $b_bin: $model, batch $batch, 1 thread each, $rounds pairs"
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1}
    END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
         printf "B / A: median %.3f, range %.3f - %.3f\n", m, v[1], v[NR]}'
