#!/usr/bin/env bash
# Data-parallel speed on one machine: one epoch of one process with 2 threads, then of
# `mpirun -np 2` with 1 thread per rank, alternating, ROUNDS times (median of each); and
# the time the gradient all-reduce takes per step. docs/cluster.md turns these into the
# expected scaling over Ethernet (scripts/mpi_scaling.py).
# Usage: scripts/bench-mpi.sh MPI_BINARY CONFIG CACHE BATCH [ROUNDS]
set -euo pipefail
bin="$(realpath "$1")"; config="$2"; cache="$3"; batch="$4"; rounds="${5:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
epoch() { # LAUNCHER... -- THREADS: the epoch line of one training epoch
  local launch=()
  while [ "$1" != "--" ]; do launch+=("$1"); shift; done
  rm -rf "$work/run"
  "${launch[@]}" "$bin" train --config "$config" --data "$cache" --batch-size "$batch" \
    --epochs 1 --val-limit "$batch" --threads "$2" --out "$work/run" 2>&1 \
    | tr '\r' '\n' | grep '^epoch'
}
one=(); two=(); comm=()
for r in $(seq "$rounds"); do
  a="$(epoch -- 2)"; b="$(epoch mpirun -np 2 -- 1)"
  echo "1 process x 2 threads: $a"; echo "2 ranks x 1 thread:    $b"
  one+=("$(sed 's/.* \([0-9]*\) img\/s.*/\1/' <<< "$a")")
  two+=("$(sed 's/.* \([0-9]*\) img\/s.*/\1/' <<< "$b")")
  comm+=("$(sed 's/.*all-reduce \([0-9.]*\) ms\/step.*/\1/' <<< "$b")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
m1="$(median "${one[@]}")"; m2="$(median "${two[@]}")"
echo "median of $rounds: 1 process x 2 threads $m1 img/s, 2 ranks x 1 thread $m2 img/s" \
  "(ratio $(awk "BEGIN {printf \"%.2f\", $m2 / $m1}")), all-reduce $(median "${comm[@]}") ms/step"
