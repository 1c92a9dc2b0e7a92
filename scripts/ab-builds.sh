#!/usr/bin/env bash
# Two vae-cpu builds on the same training step, alternating: A, B, A, B, ... Each run is
# `vae-cpu bench` (a fresh process, STEPS timed steps after the warm-up), and beside its
# images/s the script records the share of the run's CPU time that the hypervisor took
# away ("steal", from /proc/stat): on a shared virtual machine that share varies from 0
# to 20% between runs and moves the figures more than most changes do.
#
# usage: scripts/ab-builds.sh A_BINARY B_BINARY [MODEL] [BATCH] [ROUNDS] [THREADS]
#        (defaults: celeba32, batch 128, 6 rounds, 2 threads; STEPS=6)
#
# It prints each run, then per build the median and best images/s over all runs, and the
# fit of `images/s = build's level - slope * steal share` (least squares, one slope for
# both builds): the level is the build's figure with no steal, with its standard error.
# Quote the medians and the fitted levels together, with the command.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
a_bin=$1
b_bin=$2
model=${3:-celeba32}
batch=${4:-128}
rounds=${5:-6}
threads=${6:-2}
steps=${STEPS:-6}
for bin in "$a_bin" "$b_bin"; do
    [ -x "$bin" ] || { echo "ab-builds: $bin is not an executable" >&2; exit 2; }
done
cpus=$(nproc)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The steal and total jiffies of all CPUs so far.
jiffies() { awk '/^cpu /{t=0; for (i = 2; i <= NF; i++) t += $i; print $9, t}' /proc/stat; }

for _ in $(seq "$rounds"); do
    for build in A B; do
        bin=$a_bin
        [ $build = B ] && bin=$b_bin
        read -r steal0 total0 < <(jiffies)
        ips=$("$bin" bench --config "$model" --batch-size "$batch" --threads "$threads" \
            --steps "$steps" 2>&1 | awk '/^images\/s/{print $2}')
        read -r steal1 total1 < <(jiffies)
        share=$(awk -v s=$((steal1 - steal0)) -v t=$((total1 - total0)) \
            'BEGIN{printf "%.3f", (t > 0 ? s / t : 0)}')
        echo "$build $ips $share" | tee -a "$log"
    done
done

echo "A = $a_bin, B = $b_bin: $model, batch $batch, $threads threads, $rounds rounds," \
    "$cpus CPUs"
python3 - "$log" <<'PY'
import statistics, sys

runs = {}
for line in open(sys.argv[1]):
    build, ips, steal = line.split()
    runs.setdefault(build, []).append((float(ips), float(steal)))
for build, xs in sorted(runs.items()):
    ips = [i for i, _ in xs]
    print(f"{build}: median {statistics.median(ips):.1f}, best {max(ips):.1f} images/s")
# Least squares with an intercept per build and one common slope: centre each build's
# runs on its own means, fit the slope on the pooled deviations.
means = {b: (statistics.fmean(i for i, _ in xs), statistics.fmean(s for _, s in xs))
         for b, xs in runs.items()}
sxx = sum((s - means[b][1]) ** 2 for b, xs in runs.items() for _, s in xs)
sxy = sum((s - means[b][1]) * (i - means[b][0]) for b, xs in runs.items() for i, s in xs)
slope = sxy / sxx if sxx > 0 else 0.0
resid = [i - (means[b][0] + slope * (s - means[b][1])) for b, xs in runs.items() for i, s in xs]
dof = max(len(resid) - len(runs) - 1, 1)
sd = (sum(r * r for r in resid) / dof) ** 0.5
for build, xs in sorted(runs.items()):
    level = means[build][0] - slope * means[build][1]
    n = len(xs)
    se = sd * (1 / n + (means[build][1] ** 2 / sxx if sxx > 0 else 0)) ** 0.5
    print(f"{build}: {level:.1f} +- {se:.1f} images/s with no steal")
print(f"slope {slope:.0f} images/s per unit of steal share; residual sd {sd:.1f}")
a, b = (means[k][0] - slope * means[k][1] for k in ("A", "B"))
print(f"B / A with no steal: {b / a:.3f}")
PY
