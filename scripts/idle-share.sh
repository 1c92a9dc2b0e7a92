#!/usr/bin/env bash
# How long each worker thread of a training step sleeps while the step runs: the share of
# the steady part of a `vae-cpu bench` run that each pool thread spent off the CPU waiting
# for work (switched out asleep, state S), and preempted by another task (state R). A
# thread that sleeps waits at the end of a parallel pass for the other threads, or through
# a pass that runs on one thread; either way two threads are then less than twice one.
# Needs `perf` with access to scheduler events (root, or perf_event_paranoid <= -1).
#
# usage: scripts/idle-share.sh [BINARY] [MODEL] [BATCH] [THREADS] [STEPS]
#        (defaults: target/release/vae-cpu, celeba64x48-in, batch 64, 2 threads, 12 steps)
set -euo pipefail
bin=${1:-target/release/vae-cpu}
model=${2:-celeba64x48-in}
batch=${3:-64}
threads=${4:-2}
steps=${5:-12}
[ -x "$bin" ] || { echo "idle-share: $bin is not an executable" >&2; exit 2; }
command -v perf > /dev/null || { echo "idle-share: needs perf (apt install linux-perf)" >&2; exit 2; }
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
perf record -q -a -o "$data/sched.data" -e sched:sched_switch \
    "$bin" bench --config "$model" --batch-size "$batch" --threads "$threads" --steps "$steps" \
    | grep '^images/s'
perf script -i "$data/sched.data" -F time,trace 2> /dev/null > "$data/switches.txt"
python3 - "$data/switches.txt" <<'EOF'
import re, sys, collections
pattern = re.compile(r"([\d.]+):.*prev_comm=(\S+) prev_pid=(\d+) prev_prio=\d+ "
                     r"prev_state=(\S+) .* next_comm=(\S+) next_pid=(\d+)")
rows = [m.groups() for m in map(pattern.search, open(sys.argv[1])) if m]
names = {}
for _, pc, pp, _, nc, np_ in rows:
    names[pp], names[np_] = pc, nc
# The pool's threads are named vae-cpu-0, vae-cpu-1, ...
workers = {p for p, n in names.items() if n.startswith("vae-cpu-")}
times = [float(r[0]) for r in rows if r[2] in workers or r[5] in workers]
if not times:
    sys.exit("idle-share: no switches of the pool's threads were recorded")
# The steady part: after the first 30% (model, data, warm-up), before the last 50 ms.
t0, t1 = times[0] + 0.3 * (times[-1] - times[0]), times[-1] - 0.05
out, off = {}, collections.defaultdict(collections.Counter)
for t, _, pp, state, _, np_ in rows:
    t = float(t)
    if pp in workers:
        out[pp] = (t, state[0])
    if np_ in out:
        since, state0 = out.pop(np_)
        if since >= t0 and t <= t1:
            off[np_][state0] += t - since
window = t1 - t0
for pid in sorted(workers, key=lambda p: names[p]):
    shares = ", ".join(f"{s} {100 * v / window:.1f}%" for s, v in sorted(off[pid].items()))
    print(f"{names[pid]}: off the CPU {shares or 'never'} of {window * 1e3:.0f} ms "
          "(S: asleep waiting for work, R: preempted)")
EOF
