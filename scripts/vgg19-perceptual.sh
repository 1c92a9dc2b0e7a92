#!/usr/bin/env bash
# The perceptual loss with the VGG19 a user actually exports: torchvision's vgg19().features
# (fresh weights: no download) written by PyTorch's default exporter (torch.export-based,
# opset 20, weights in an external NAME.onnx.data file) and by the legacy exporter
# (dynamo=False: inline weights, equal biases shared through Identity nodes), then one
# epoch of `vae-cpu train --feature-net` with each.
#
#   scripts/vgg19-perceptual.sh [DATA] [WORKDIR]
#
# DATA: a cache or CelebA folder at 32x32 (default: 600 generated faces). Needs Python with
# torch, torchvision, onnx and onnxscript (pip install torch torchvision onnx onnxscript);
# PYTHON picks the interpreter, VAE_CPU the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
vae="${VAE_CPU:-target/release/vae-cpu}"
work="${2:-runs/vgg19-perceptual}"
mkdir -p "$work"
[ -x "$vae" ] || cargo build --release --locked

"$python" - "$work" <<'EOF'
import sys, torch, torchvision, onnx
work = sys.argv[1]
net = torchvision.models.vgg19(weights=None).features.eval()
x = torch.rand(1, 3, 32, 32)
torch.onnx.export(net, (x,), f"{work}/vgg19-dynamo.onnx", dynamo=True, external_data=True,
                  input_names=["x"], dynamic_shapes=({0: torch.export.Dim("N"), 2: torch.export.Dim("H", min=32), 3: torch.export.Dim("W", min=32)},))
torch.onnx.export(net, (x,), f"{work}/vgg19-legacy.onnx", dynamo=False, input_names=["x"],
                  dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}})
for name in ["dynamo", "legacy"]:
    path = f"{work}/vgg19-{name}.onnx"
    m = onnx.load(path, load_external_data=False)
    external = sum(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)
    identity = sum(n.op_type == "Identity" for n in m.graph.node)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    print(f"{path}: opset {opset}, {len(m.graph.initializer)} initializers "
          f"({external} external), {identity} Identity nodes")
EOF

data="${1:-}"
if [ -z "$data" ]; then
  "$vae" demo --out "$work/demo" --images 600 --epochs 1 --quiet > /dev/null
  data="$work/demo/faces-600.vaecache"
fi
for name in dynamo legacy; do
  rm -rf "$work/train-$name"
  "$vae" train --config demo32 --data "$data" --feature-net "$work/vgg19-$name.onnx" \
    --epochs 1 --val-limit 100 --quiet --out "$work/train-$name"
  echo "vgg19-$name: $(tail -1 "$work/train-$name/metrics.csv")"
done
