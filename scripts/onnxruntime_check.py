"""Checks exported decoders with ONNX's own tools and with onnxruntime (Microsoft's runtime),
the way a user outside vae-cpu would run them.

usage: onnxruntime_check.py CASE_DIR DECODER.onnx [DECODER.onnx ...]
       onnxruntime_check.py --latency-only DECODER.onnx [DECODER.onnx ...]

For each file: onnx.checker.check_model(full_check=True) (which also runs ONNX's shape
inference), then onnxruntime (CPU, one thread) decodes CASE_DIR/z.npy (and cond.npy for a
conditional decoder) and must match CASE_DIR/engine.npy (the engine's images, written by
`vae-cpu verify-onnx --save-case CASE_DIR`) within 1e-4. Then the batch-1 latency: median
and 90th percentile over 200 runs after a warm-up. With --latency-only (decoders of any
weights, e.g. the files `cargo bench --bench decoder_latency` leaves in
target/decoder-latency/) only the checker and the latency, on random latents.
"""
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

TOLERANCE = 1e-4


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def feeds(sess, z, cond):
    names = [i.name for i in sess.get_inputs()]
    out = {names[0]: z}
    if len(names) > 1:
        if cond is None:
            sys.exit(f"the decoder takes {names[1]} but the case has no cond.npy")
        out[names[1]] = cond[: len(z)]
    return out


def latency_ms(sess, z, cond, runs=200):
    inputs = feeds(sess, z[:1], None if cond is None else cond[:1])
    for _ in range(10):
        sess.run(None, inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, inputs)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return times[len(times) // 2], times[len(times) * 9 // 10]


def latency_only(paths):
    for path in paths:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        sess = session(path)
        inputs = sess.get_inputs()
        z = np.random.default_rng(0).standard_normal((1, inputs[0].shape[1])).astype(np.float32)
        cond = None
        if len(inputs) > 1:
            cond = np.zeros((1, inputs[1].shape[1]), np.float32)
        median, p90 = latency_ms(sess, z, cond)
        print(f"{path}: onnx.checker (full) ok; onnxruntime {ort.__version__} batch 1: "
              f"median {median:.3f} ms, p90 {p90:.3f} ms")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    if sys.argv[1] == "--latency-only":
        latency_only(sys.argv[2:])
        return
    case = sys.argv[1]
    z = np.load(os.path.join(case, "z.npy"))
    cond_path = os.path.join(case, "cond.npy")
    cond = np.load(cond_path) if os.path.exists(cond_path) else None
    want = np.load(os.path.join(case, "engine.npy"))
    failed = False
    for path in sys.argv[2:]:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        sess = session(path)
        got = sess.run(None, feeds(sess, z, cond))[0]
        diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        median, p90 = latency_ms(sess, z, cond)
        verdict = "ok" if diff <= TOLERANCE else "FAIL"
        print(
            f"{verdict}: {path}: onnx.checker (full) ok; onnxruntime {ort.__version__} "
            f"max |onnxruntime - engine| = {diff:.3e}; batch 1: median {median:.3f} ms, "
            f"p90 {p90:.3f} ms"
        )
        failed |= diff > TOLERANCE
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
