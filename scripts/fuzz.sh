#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, starting from the committed seeds
# (fuzz/corpus/<target>/) and the saved crashes (fuzz/regressions/<target>/). New inputs go to
# target/fuzz-corpus/<target>/, not into the source tree. Needs the nightly toolchain; installs
# cargo-fuzz if it is missing. A crash stops the script with the input in fuzz/artifacts/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
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
for t in "${targets[@]}"; do
  scratch="target/fuzz-corpus/$t"
  mkdir -p "$scratch" "fuzz/regressions/$t"
  echo "== $t: ${seconds}s"
  log="target/fuzz-$t.log"
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: 2 GiB is a leak or a bomb.
  if ! cargo +nightly fuzz run -O "$t" "$scratch" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed; the input is in fuzz/artifacts/$t/ (log: $log)" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" | tr '\n' ' '
  echo
done
echo "fuzzing passed: ${targets[*]}"
