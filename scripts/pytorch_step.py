#!/usr/bin/env python3
"""One vae-cpu model config, built in PyTorch layer for layer, timed on full training steps
(forward, backward, Adam) on a synthetic batch: the peer of `vae-cpu bench`.

usage: pytorch_step.py CONFIG.toml --batch-size B --threads T [--steps N] [--warmup W]

Prints `images/s`, `step` (median seconds), `GFLOP/s` and `peak memory` lines, with the
same analytic FLOP count as vae-cpu (3x the forward GEMM FLOPs).
"""
import argparse
import resource
import statistics
import time
import tomllib

import torch
from torch import nn


def same_pads(size, kernel, stride):
    """TensorFlow's "same": output ceil(size / stride), the extra padding at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def expand(blocks):
    for block in blocks:
        for _ in range(block.get("repeat", 1)):
            yield from block["layers"]


def build(layers, shape):
    """nn.Sequential for the layer specs from the per-sample input `shape`; returns the
    module, the output shape and the forward GEMM FLOPs per sample."""
    mods, flops = [], 0
    for spec in layers:
        kind = spec["type"]
        if kind == "conv2d":
            c, h, w = shape
            k, s, f = spec["kernel"], spec.get("stride", 1), spec["filters"]
            pad = spec.get("padding", 0)
            if pad == "same":
                top, bottom = same_pads(h, k, s)
                left, right = same_pads(w, k, s)
            elif isinstance(pad, list):
                top, bottom, left, right = pad
            else:
                top = bottom = left = right = pad
            if top == bottom and left == right:
                mods.append(nn.Conv2d(c, f, k, s, (top, left), bias=spec.get("bias", True)))
            else:
                mods.append(nn.ZeroPad2d((left, right, top, bottom)))
                mods.append(nn.Conv2d(c, f, k, s, 0, bias=spec.get("bias", True)))
            ho = (h + top + bottom - k) // s + 1
            wo = (w + left + right - k) // s + 1
            shape = (f, ho, wo)
            flops += 2 * c * k * k * f * ho * wo
        elif kind == "conv_transpose2d":
            c, h, w = shape
            k, s, f = spec["kernel"], spec.get("stride", 1), spec["filters"]
            p, op = spec.get("padding", 0), spec.get("output_padding", 0)
            mods.append(nn.ConvTranspose2d(c, f, k, s, p, op, bias=spec.get("bias", True)))
            flops += 2 * c * h * w * f * k * k
            shape = (f, (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op)
        elif kind == "linear":
            (n,) = shape
            mods.append(nn.Linear(n, spec["units"], bias=spec.get("bias", True)))
            flops += 2 * n * spec["units"]
            shape = (spec["units"],)
        elif kind == "batch_norm":
            mods.append(nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0]))
        elif kind == "instance_norm":
            mods.append(nn.InstanceNorm2d(shape[0], affine=True))
        elif kind == "relu":
            mods.append(nn.ReLU())
        elif kind == "leaky_relu":
            mods.append(nn.LeakyReLU(spec.get("alpha", 0.01)))
        elif kind == "prelu":
            mods.append(nn.PReLU(1 if spec.get("shared", False) else shape[0]))
        elif kind == "sigmoid":
            mods.append(nn.Sigmoid())
        elif kind == "tanh":
            mods.append(nn.Tanh())
        elif kind == "flatten":
            mods.append(nn.Flatten())
            shape = (shape[0] * shape[1] * shape[2],) if len(shape) == 3 else shape
        elif kind == "reshape":
            mods.append(nn.Unflatten(1, tuple(spec["shape"])))
            shape = tuple(spec["shape"])
        else:
            raise SystemExit(f"unknown layer type {kind!r}")
    return nn.Sequential(*mods), shape, flops


class Vae(nn.Module):
    def __init__(self, config):
        super().__init__()
        m = config["model"]
        self.encoder, feat, enc_flops = build(expand(m["encoder"]), (m["channels"], m["height"], m["width"]))
        (features,) = feat
        self.mu = nn.Linear(features, m["latent"])
        self.logvar = nn.Linear(features, m["latent"])
        self.decoder, _, dec_flops = build(expand(m["decoder"]), (m["latent"],))
        self.forward_flops = enc_flops + dec_flops + 2 * 2 * features * m["latent"]

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z), mu, logvar


def loss_fn(config, recon, x, mu, logvar):
    exp = config.get("exp", {})
    reduction = exp.get("recon_reduction", "mean")
    kind = exp.get("recon_loss", "mse")
    if kind == "mse":
        r = nn.functional.mse_loss(recon, x, reduction=reduction)
    elif kind == "l1":
        r = nn.functional.l1_loss(recon, x, reduction=reduction)
    else:
        r = nn.functional.binary_cross_entropy(recon, x, reduction=reduction)
    # KL(q || N(0, I)) summed over latent dimensions, averaged over the batch.
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
    return exp.get("recon_weight", 1.0) * r + exp.get("kld_weight", 1.0) * kl


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mode", choices=["train", "decode", "encode"], default="train",
                    help="train: forward, backward, Adam; decode / encode: eval mode under "
                         "torch.no_grad(), latent points to images / images to mu and logvar")
    ap.add_argument("--layout", choices=["nchw", "channels_last"], default="nchw",
                    help="memory format of the input and the modules' weights (channels_last "
                         "is PyTorch's faster layout for these convolutions on a CPU)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with open(a.config, "rb") as f:
        config = tomllib.load(f)
    m = config["model"]
    model = Vae(config)
    model.train()
    x = torch.rand(a.batch_size, m["channels"], m["height"], m["width"])
    if a.layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if a.mode != "train":
        return infer(model, m, a)
    opt = torch.optim.Adam(model.parameters(), lr=config.get("exp", {}).get("lr", 1e-3))
    times = []
    for step in range(a.warmup + a.steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        recon, mu, logvar = model(x)
        loss = loss_fn(config, recon, x, mu, logvar)
        loss.backward()
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - start)
    total = sum(times)
    flops = 3 * a.batch_size * model.forward_flops
    print(f"pytorch {torch.__version__}, {m['name']}, batch {a.batch_size}, {a.threads} threads, {a.layout}")
    print(f"images/s    {a.batch_size * len(times) / total:.1f}")
    print(f"step        {statistics.median(times):.4f} s (median)")
    print(f"GFLOP/s     {flops * len(times) / total / 1e9:.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak memory {peak / 2**20:.0f} MiB")


def infer(model, m, a):
    """Times decode or encode calls in eval mode without gradients; prints the median."""
    model.eval()
    if a.mode == "decode":
        x, run = torch.randn(a.batch_size, m["latent"]), model.decoder
    else:
        x = torch.rand(a.batch_size, m["channels"], m["height"], m["width"])
        if a.layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)

        def run(v):
            h = model.encoder(v)
            return model.mu(h), model.logvar(h)
    times = []
    with torch.no_grad():
        for call in range(a.warmup + a.steps):
            start = time.perf_counter()
            run(x)
            if call >= a.warmup:
                times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"pytorch {torch.__version__}, {m['name']}, {a.mode} batch {a.batch_size}, {a.threads} threads, {a.layout}")
    print(f"images/s    {a.batch_size / median:.1f}")
    print(f"call        {1e3 * median:.3f} ms (median)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak memory {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
