#!/usr/bin/env python3
"""Export an Inception-V3 feature network as ONNX for `vae-cpu score --inception FILE`.

    pip install torch pytorch-fid onnx
    python3 scripts/export-inception.py inception.onnx            # the FID's network
    python3 scripts/export-inception.py --random check.onnx       # random weights, a check

The default is pytorch-fid's FID Inception (the TensorFlow FID weights ported to PyTorch;
pytorch-fid downloads them once, on first use). Its pool3 output (2048 values per image) is
the graph's one output, flattened. The network is exported with `resize_input=False` and
`normalize_input=False` because vae-cpu does both itself, as pytorch-fid would: a bilinear
resize to 299x299 (align_corners=False) and pixels scaled from [0, 1] to [-1, 1].

`--random` exports torchvision's Inception-V3 architecture with random weights instead: it
needs no download and checks that tract runs the graph, but its distances are no FID.
"""

import argparse

import torch


def calibrate_batch_norms(net):
    """Running statistics from a few random batches, so that random weights give features
    of a sane size (otherwise they grow to ~1e10 through the 90-odd layers)."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(8, 3, 299, 299) * 2 - 1)


class Pool3(torch.nn.Module):
    """Images [N, 3, 299, 299] in [-1, 1] -> pool3 features [N, 2048]."""

    def __init__(self, random):
        super().__init__()
        if random:
            import torchvision

            net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
            net.fc = torch.nn.Identity()
            calibrate_batch_norms(net)
            self.net, self.fid = net.eval(), False
        else:
            from pytorch_fid.inception import InceptionV3

            block = InceptionV3.BLOCK_INDEX_BY_DIM[2048]
            self.net = InceptionV3([block], resize_input=False, normalize_input=False).eval()
            self.fid = True

    def forward(self, x):
        out = self.net(x)
        return (out[0] if self.fid else out).flatten(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the ONNX file to write")
    p.add_argument("--random", action="store_true", help="torchvision's architecture, random weights")
    a = p.parse_args()
    torch.manual_seed(0)
    model = Pool3(a.random)
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.zeros(1, 3, 299, 299),
            a.out,
            input_names=["x"],
            output_names=["pool3"],
            dynamic_axes={"x": {0: "N"}, "pool3": {0: "N"}},
            opset_version=17,
            dynamo=False,
        )
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
