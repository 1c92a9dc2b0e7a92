//! Structural similarity (Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from
//! error visibility to structural similarity", IEEE TIP 2004): per channel, local means,
//! variances and covariance under an 11x11 Gaussian window (σ = 1.5), then
//! `SSIM = (2 μa μb + C1)(2 σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2))` with
//! `C1 = (0.01 L)²`, `C2 = (0.03 L)²`, L = 1 (pixels on [0, 1]), averaged over every
//! window position that lies inside the image and over the channels. These are the
//! defaults of torchmetrics and pytorch-msssim, and scikit-image's `structural_similarity`
//! with `gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1`.
//! An image smaller than the window uses a window of its size (odd, same σ).

const SIGMA: f64 = 1.5;
const WINDOW: usize = 11;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// The mean SSIM of two `[c, h, w]` images with values on [0, 1].
pub fn ssim(a: &[f32], b: &[f32], c: usize, h: usize, w: usize) -> f64 {
    assert!(
        a.len() == c * h * w && b.len() == a.len(),
        "ssim: image sizes differ"
    );
    let size = WINDOW.min(h).min(w);
    let size = if size.is_multiple_of(2) {
        size - 1
    } else {
        size
    };
    let kernel = gaussian(size);
    let plane = h * w;
    let mut total = 0.0;
    for ch in 0..c {
        let (pa, pb) = (
            &a[ch * plane..(ch + 1) * plane],
            &b[ch * plane..(ch + 1) * plane],
        );
        let field = |f: &dyn Fn(f64, f64) -> f64| {
            let v: Vec<f64> = pa
                .iter()
                .zip(pb)
                .map(|(x, y)| f(*x as f64, *y as f64))
                .collect();
            filter_valid(&v, h, w, &kernel)
        };
        let (ma, mb) = (field(&|x, _| x), field(&|_, y| y));
        let (aa, bb, ab) = (
            field(&|x, _| x * x),
            field(&|_, y| y * y),
            field(&|x, y| x * y),
        );
        let positions = ma.len();
        let mut sum = 0.0;
        for i in 0..positions {
            let (va, vb) = (aa[i] - ma[i] * ma[i], bb[i] - mb[i] * mb[i]);
            let cov = ab[i] - ma[i] * mb[i];
            let num = (2.0 * ma[i] * mb[i] + C1) * (2.0 * cov + C2);
            let den = (ma[i] * ma[i] + mb[i] * mb[i] + C1) * (va + vb + C2);
            sum += num / den;
        }
        total += sum / positions as f64;
    }
    total / c as f64
}

/// A normalized 1-D Gaussian of `size` taps, σ = 1.5.
fn gaussian(size: usize) -> Vec<f64> {
    let mid = (size / 2) as f64;
    let g: Vec<f64> = (0..size)
        .map(|i| (-((i as f64 - mid).powi(2)) / (2.0 * SIGMA * SIGMA)).exp())
        .collect();
    let sum: f64 = g.iter().sum();
    g.iter().map(|v| v / sum).collect()
}

/// `v` (`h x w`) filtered by `k ⊗ k` at every position where the window fits:
/// `(h - k + 1) x (w - k + 1)` values.
fn filter_valid(v: &[f64], h: usize, w: usize, k: &[f64]) -> Vec<f64> {
    let n = k.len();
    let (oh, ow) = (h + 1 - n, w + 1 - n);
    let mut rows = vec![0.0; h * ow];
    for y in 0..h {
        for x in 0..ow {
            rows[y * ow + x] = (0..n).map(|t| k[t] * v[y * w + x + t]).sum();
        }
    }
    let mut out = vec![0.0; oh * ow];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..n).map(|t| k[t] * rows[(y + t) * ow + x]).sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random pixels on [0, 1].
    fn pixels(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                (s >> 8) as f32 / (1u32 << 24) as f32
            })
            .collect()
    }

    #[test]
    fn an_image_is_identical_to_itself_and_noise_lowers_it() {
        let a = pixels(3 * 20 * 24, 1);
        assert!((ssim(&a, &a, 3, 20, 24) - 1.0).abs() < 1e-12);
        let mut last = 1.0;
        for amount in [0.05f32, 0.2, 0.5] {
            let noise = pixels(a.len(), 7);
            let b: Vec<f32> = a
                .iter()
                .zip(&noise)
                .map(|(x, n)| (x + amount * (n - 0.5)).clamp(0.0, 1.0))
                .collect();
            let s = ssim(&a, &b, 3, 20, 24);
            assert!(s < last && s > -1.0, "{amount}: {s}");
            assert!((s - ssim(&b, &a, 3, 20, 24)).abs() < 1e-12, "symmetric");
            last = s;
        }
    }

    #[test]
    fn matches_scikit_image() {
        // scikit-image structural_similarity(a, b, channel_axis=0, data_range=1,
        // gaussian_weights=True, sigma=1.5, use_sample_covariance=False) on these two
        // [3, 16, 20] images (scikit-image 0.26; scripts/ssim_reference.py prints it).
        let a = pixels(3 * 16 * 20, 3);
        let b: Vec<f32> = a
            .iter()
            .zip(pixels(a.len(), 11))
            .map(|(x, n)| 0.7 * x + 0.3 * n)
            .collect();
        let got = ssim(&a, &b, 3, 16, 20);
        assert!((got - SKIMAGE).abs() < 1e-6, "{got} vs {SKIMAGE}");
    }

    const SKIMAGE: f64 = 0.8853430477207699;
}
