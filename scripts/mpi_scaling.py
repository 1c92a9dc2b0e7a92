#!/usr/bin/env python3
"""Expected data-parallel scaling efficiency over Ethernet, from figures measured on one
machine (scripts/bench-mpi.sh) and a ring all-reduce model (docs/cluster.md):

  compute per step   T_c = B / (N * S)            S: images/s of one machine, B: global batch
  gradient sum       T_g = 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * alpha    (ring)
  batch-norm sums    T_s = k * 2 log2(N) * alpha  (k small all-reduces, recursive doubling)
  efficiency         T_c / (T_c + T_g + T_s)      (vae-cpu: the sum follows the backward)
  overlapped bound   T_c / max(T_c, T_g) + ...    (if the sum overlapped the backward)

Usage: scripts/mpi_scaling.py NAME IMAGES_PER_S BATCH GRADIENT_BYTES SMALL_ALLREDUCES
"""
import math
import sys

ALPHA = 30e-6  # seconds per message on TCP over 10/25 Gbit/s Ethernet (typical, assumed)


def efficiency(n, speed, batch, grad_bytes, small, gbit, overlapped):
    t_c = batch / (n * speed)
    t_g = 2 * (n - 1) / n * grad_bytes / (gbit * 1e9 / 8) + 2 * (n - 1) * ALPHA
    t_s = small * 2 * math.log2(n) * ALPHA
    if overlapped:
        return t_c / (max(t_c, t_g) + t_s)
    return t_c / (t_c + t_g + t_s)


def main():
    name, speed, batch, grad_bytes, small = sys.argv[1:6]
    speed, batch, grad_bytes, small = float(speed), int(batch), float(grad_bytes), int(small)
    print(f"| {name}, batch {batch} | " + " | ".join(f"{n} machines" for n in (2, 4, 8, 16)) + " |")
    print("|---|---|---|---|---|")
    for gbit in (10, 25):
        for overlapped in (False, True):
            label = f"{gbit} Gbit/s, " + ("overlapped (bound)" if overlapped else "as built")
            cells = []
            for n in (2, 4, 8, 16):
                e = efficiency(n, speed, batch, grad_bytes, small, gbit, overlapped)
                cells.append(f"{100 * e:.0f}% ({e * n * speed:.0f} img/s)")
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
