#!/usr/bin/env python3
"""PyTorch's side of `cargo bench --bench layers`: the same 20 convolutions (celeba64x48-in's
and celeba32's 128-channel 4x4 stride-2 ones), batch 64, no bias, forward and forward +
backward (input and weight gradients), best of 5 with the caches evicted before each, in
both layouts (NCHW and channels_last), printed in the bench's format with PyTorch's faster
layout per row.

usage: pytorch_layers.py [--threads T] [--only I]
(run it with the venv of scripts/bench-vs-pytorch.sh: target/pytorch-venv/bin/python)
"""
import argparse
import time

import torch
from torch import nn

# (transposed, channels in, channels out, kernel, stride, input height, input width):
# benches/layers.rs's rows, in its order.
LAYERS = [
    (False, 3, 32, 4, 2, 48, 64),
    (False, 32, 32, 3, 1, 24, 32),
    (False, 32, 64, 4, 2, 24, 32),
    (False, 64, 64, 3, 1, 12, 16),
    (False, 64, 128, 4, 2, 12, 16),
    (False, 128, 128, 3, 1, 6, 8),
    (False, 128, 256, 4, 2, 6, 8),
    (False, 256, 256, 3, 1, 3, 4),
    (True, 256, 128, 4, 2, 3, 4),
    (True, 128, 64, 4, 2, 6, 8),
    (True, 64, 32, 4, 2, 12, 16),
    (True, 32, 32, 4, 2, 24, 32),
    (False, 32, 3, 3, 1, 48, 64),
    (True, 128, 128, 4, 2, 16, 16),
    (True, 128, 128, 4, 2, 8, 8),
    (True, 128, 128, 4, 2, 4, 4),
    (True, 128, 128, 4, 2, 2, 2),
    (False, 128, 128, 4, 2, 16, 16),
    (False, 128, 128, 4, 2, 8, 8),
    (False, 128, 128, 4, 2, 4, 4),
]

JUNK = torch.zeros(16 << 20)  # 64 MiB: written before each timed call to evict the caches


def best_seconds(reps, f):
    best = float("inf")
    for r in range(reps + 1):  # the first call warms up and is not counted
        JUNK.add_(r)
        start = time.perf_counter()
        f()
        took = time.perf_counter() - start
        if r > 0:
            best = min(best, took)
    return best


def measure(n, layer, channels_last):
    transposed, cin, cout, k, s, h, w = layer
    kind = nn.ConvTranspose2d if transposed else nn.Conv2d
    module = kind(cin, cout, k, s, 1, bias=False)
    x = torch.rand(n, cin, h, w) - 0.5
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fwd = best_seconds(5, lambda: module(x))

    def step():
        xg = x.detach().requires_grad_(True)
        module.zero_grad(set_to_none=True)
        module(xg).sum().backward()

    all_ = best_seconds(5, step)
    if transposed:
        flops = 2 * n * cin * cout * k * k * h * w
    else:
        flops = 2 * n * cin * cout * k * k * (h // s) * (w // s)
    return fwd, all_, flops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", type=int, help="time row I alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    total = 0.0
    for i, layer in enumerate(LAYERS):
        if args.only is not None and args.only != i:
            continue
        runs = {cl: measure(64, layer, cl) for cl in (False, True)}
        best = min(runs, key=lambda cl: runs[cl][1])
        fwd, all_, flops = runs[best]
        total += all_
        t, cin, cout, k, s, h, w = layer
        kind = "convT" if t else "conv "
        layout = "channels_last" if best else "NCHW"
        other = runs[not best][1]
        print(
            f"{kind} {cin:>3}->{cout:>3} k{k} s{s} {h:>2}x{w:<2}: fwd {fwd * 1e3:6.2f} ms "
            f"{flops / fwd / 1e9:5.0f} GF/s | fwd+bwd {all_ * 1e3:6.2f} ms "
            f"{3 * flops / all_ / 1e9:5.0f} GF/s ({layout}; other {other * 1e3:.2f} ms)"
        )
    print(f"total fwd+bwd {total * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
