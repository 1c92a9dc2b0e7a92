#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, starting from the committed seeds
# (fuzz/corpus/<target>/) and the saved crashes (fuzz/regressions/<target>/). New inputs go to
# target/fuzz-corpus/<target>/, not into the source tree. Needs the nightly toolchain; installs
# cargo-fuzz if it is missing. A crash stops the script with the input in fuzz/artifacts/.
#
#   [FUZZ_JOBS=N] scripts/fuzz.sh [SECONDS] [TARGET...]
# FUZZ_JOBS (default 1): how many targets fuzz side by side, one core each.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(checkpoint attributes partition config image_cache prepare_image mnist_idx feature_net)
fi
if ! cargo fuzz --version > /dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
cargo +nightly fuzz build -O
# One target's run; a crash or hang prints the log's tail and fails.
fuzz_one() {
  local t=$1 scratch="target/fuzz-corpus/$1" log="target/fuzz-$1.log"
  mkdir -p "$scratch" "fuzz/regressions/$t"
  echo "== $t: ${seconds}s"
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: 2 GiB is a leak or a bomb.
  if ! cargo +nightly fuzz run -O "$t" "$scratch" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed; the input is in fuzz/artifacts/$t/ (log: $log)" >&2
    return 1
  fi
  echo "== $t done: $(grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" | tr '\n' ' ')"
}

# FUZZ_JOBS targets at a time (each fuzzer uses one core), the same seconds each.
jobs="${FUZZ_JOBS:-1}"
trap 'kill $(jobs -p) 2> /dev/null || true' EXIT
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || exit 1
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || exit 1
  running=$((running - 1))
done
echo "fuzzing passed: ${targets[*]}"
