"""The reference value of src/train/ssim.rs's `matches_scikit_image` test: the same two
images (the test's linear congruential pixels) through scikit-image's
structural_similarity with the Gaussian-window settings that vae-cpu follows.
Usage: python3 scripts/ssim_reference.py   (needs numpy and scikit-image)"""

import numpy as np
from skimage.metrics import structural_similarity


def pixels(n, seed):
    s, out = seed, []
    for _ in range(n):
        s = (s * 1664525 + 1013904223) % 2**32
        out.append(np.float32(s >> 8) / np.float32(1 << 24))
    return np.array(out, dtype=np.float32)


shape = (3, 16, 20)
n = 3 * 16 * 20
a = pixels(n, 3)
b = np.float32(0.7) * a + np.float32(0.3) * pixels(n, 11)
value = structural_similarity(
    a.reshape(shape).astype(np.float64), b.reshape(shape).astype(np.float64),
    channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)
print(repr(value))
