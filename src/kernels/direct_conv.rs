//! Direct stride-1 convolution kernels for layers with few channels on one side (a
//! decoder's last layer to 3 colour channels). As a GEMM such a layer is a product with 3
//! rows or an inner dimension of 3, which runs at a few percent of the machine's speed
//! (celeba64's last layer took half of all GEMM time); here the image is read once per
//! tap into 32 lanes and multiplied into up to [`GROUP`] output planes at once.
//!
//! Each has register kernels for AVX-512 (here) and AVX2 (`direct_conv_avx2`)
//! up to 4 taps wide (3 for the AVX2 weight gradient), else a plain loop. Both read a
//! zero-bordered copy of their input ([`pad_image`]), so no tap needs a bounds test:
//! `xp[c, r, s] = x[c, r - pad_top, s - pad_left]`, zero outside the image, with rows wide
//! enough that a block of [`LANES`] outputs at any tap stays inside the row.

#[cfg(target_arch = "x86_64")]
use super::direct_conv_avx2;
use super::simd::{mul_add, simd_versions};

/// Outputs per block of the kernels' accumulators: two vectors of 16, so that the four
/// output planes give eight independent chains of multiply-adds.
pub const LANES: usize = 32;
/// Output planes computed together (weights come in groups of this many, zero-filled).
pub const GROUP: usize = 4;
const _: () = assert!(GROUP == 4, "the kernels name four accumulators");

/// A stride-1 convolution of one image of `cin` planes of `h x w` into `oh x ow` planes,
/// with `pad_top` / `pad_left` zeros before the image (the bottom and right padding are
/// implied by `oh` and `ow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Direct {
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Direct {
    /// `ow` rounded up to whole blocks of [`LANES`].
    pub fn ow_blocks(&self) -> usize {
        self.ow.div_ceil(LANES) * LANES
    }

    /// Rows of a padded plane: every row that some output reads.
    pub fn padded_h(&self) -> usize {
        self.oh + self.kh - 1
    }

    /// Columns of a padded plane: whole blocks of outputs at every tap.
    pub fn padded_w(&self) -> usize {
        self.ow_blocks() + self.kw - 1
    }

    /// Values of one padded image.
    pub fn padded_len(&self) -> usize {
        self.cin * self.padded_h() * self.padded_w()
    }

    /// Values of one group of [`GROUP`] weight sets, `[cin][kh][kw][GROUP]`.
    pub fn group_weights_len(&self) -> usize {
        self.cin * self.kh * self.kw * GROUP
    }
}

/// Writes the zero-bordered copy of `x` (`cin x h x w`) into `xp` ([`Direct::padded_len`]
/// values); input pixels no output reads are left out.
pub fn pad_image(d: &Direct, x: &[f32], xp: &mut [f32]) {
    assert_eq!(
        x.len(),
        d.cin * d.h * d.w,
        "pad_image: image has the wrong size"
    );
    let (hp, wp) = (d.padded_h(), d.padded_w());
    assert_eq!(
        xp.len(),
        d.padded_len(),
        "pad_image: buffer has the wrong size"
    );
    let rows = d.h.min(hp.saturating_sub(d.pad_top));
    let cols = d.w.min(wp.saturating_sub(d.pad_left));
    // Each value written once: the image's rows between their borders, zeros elsewhere.
    for (c, plane) in xp.chunks_exact_mut(hp * wp).enumerate() {
        for (r, row) in plane.chunks_exact_mut(wp).enumerate() {
            if !(d.pad_top..d.pad_top + rows).contains(&r) {
                row.fill(0.0);
                continue;
            }
            let src = &x[(c * d.h + r - d.pad_top) * d.w..][..cols];
            let (left, rest) = row.split_at_mut(d.pad_left);
            let (inside, right) = rest.split_at_mut(cols);
            left.fill(0.0);
            inside.copy_from_slice(src);
            right.fill(0.0);
        }
    }
}

/// In a `simd_versions!` body: returns `$kernel::<KW>(args)`, the register kernel for
/// kernels `$kw` wide (1 to `$max`), when the body runs in its fused-multiply-add versions
/// on a CPU whose widest instructions are `$level`; otherwise goes on.
#[cfg(target_arch = "x86_64")]
macro_rules! return_on {
    ($fma:expr, $level:ident, $kw:expr, $max:expr, $($kernel:ident)::+($($arg:expr),*)) => {
        if $fma && super::simd::level() == super::simd::Level::$level && $kw <= $max {
            // SAFETY: `level` found these instructions on this CPU.
            match $kw {
                1 => return unsafe { $($kernel)::+::<1>($($arg),*) },
                2 => return unsafe { $($kernel)::+::<2>($($arg),*) },
                3 => return unsafe { $($kernel)::+::<3>($($arg),*) },
                4 => return unsafe { $($kernel)::+::<4>($($arg),*) },
                _ => {}
            }
        }
    };
}

simd_versions! {
    /// `y[g, oy, ox] = sum_{c, ki, kj} w[c, ki, kj, g] * xp[c, oy + ki, ox + kj]` for the
    /// first `outs <= GROUP` planes `g` of one weight group (`[cin][kh][kw][GROUP]`), over a
    /// padded image `xp`; `y` holds `outs` planes of `oh x ow`.
    pub fn conv_group(d: &Direct, xp: &[f32], w: &[f32], y: &mut [f32], outs: usize) =
        conv_group_body;
}

#[inline(always)]
fn conv_group_body<const FMA: bool>(d: &Direct, xp: &[f32], w: &[f32], y: &mut [f32], outs: usize) {
    #[cfg(target_arch = "x86_64")]
    return_on!(FMA, Avx512, d.kw, 4, conv_rows_avx512(d, xp, w, y, outs));
    #[cfg(target_arch = "x86_64")]
    return_on!(
        FMA,
        Avx2,
        d.kw,
        4,
        direct_conv_avx2::conv_rows(d, xp, w, y, outs)
    );
    conv_taps::<FMA>(d, xp, w, y, outs)
}

/// [`conv_group`] for kernels `KW` wide on AVX-512: the [`GROUP`] x 32 sums of a block of
/// outputs stay in registers over all its taps (`KW` known, so a kernel row is unrolled;
/// from plain loops the compiler kept them on the stack between kernel rows).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn conv_rows_avx512<const KW: usize>(
    d: &Direct,
    xp: &[f32],
    w: &[f32],
    y: &mut [f32],
    outs: usize,
) {
    use std::arch::x86_64::*;
    let (hp, wp, plane) = (d.padded_h(), d.padded_w(), d.oh * d.ow);
    assert!(d.kw == KW && xp.len() >= d.padded_len() && w.len() >= d.group_weights_len());
    assert!(outs <= GROUP && y.len() == outs * plane);
    for oy in 0..d.oh {
        for ox0 in (0..d.ow).step_by(LANES) {
            let mut acc = [[_mm512_setzero_ps(); 2]; GROUP];
            for c in 0..d.cin {
                for ki in 0..d.kh {
                    let row = &xp[(c * hp + oy + ki) * wp + ox0..][..LANES + KW - 1];
                    let taps = &w[((c * d.kh + ki) * KW) * GROUP..][..KW * GROUP];
                    for kj in 0..KW {
                        // SAFETY: 32 values from `kj` of a row of `LANES + KW - 1`, and
                        // GROUP weights from `kj * GROUP` of `KW * GROUP`.
                        unsafe {
                            let xs = [
                                _mm512_loadu_ps(row.as_ptr().add(kj)),
                                _mm512_loadu_ps(row.as_ptr().add(kj + 16)),
                            ];
                            for (g, acc_g) in acc.iter_mut().enumerate() {
                                let wt = _mm512_set1_ps(*taps.get_unchecked(kj * GROUP + g));
                                acc_g[0] = _mm512_fmadd_ps(wt, xs[0], acc_g[0]);
                                acc_g[1] = _mm512_fmadd_ps(wt, xs[1], acc_g[1]);
                            }
                        }
                    }
                }
            }
            let n = LANES.min(d.ow - ox0);
            for (g, acc_g) in acc.iter().enumerate().take(outs) {
                let out = &mut y[g * plane + oy * d.ow + ox0..][..n];
                for (half, v) in acc_g.iter().enumerate() {
                    let lanes = n.saturating_sub(half * 16).min(16);
                    if lanes == 0 {
                        break;
                    }
                    let mask = ((1u32 << lanes) - 1) as u16;
                    // SAFETY: `lanes` values from `half * 16` of `out`'s `n`.
                    unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(half * 16), mask, *v) };
                }
            }
        }
    }
}

/// [`conv_group`] a tap at a time, in plain loops (the other instruction sets, and
/// kernels wider than four).
#[inline(always)]
fn conv_taps<const FMA: bool>(d: &Direct, xp: &[f32], w: &[f32], y: &mut [f32], outs: usize) {
    let (hp, wp, plane) = (d.padded_h(), d.padded_w(), d.oh * d.ow);
    assert!(xp.len() >= d.padded_len() && w.len() >= d.group_weights_len());
    assert!(outs <= GROUP && y.len() == outs * plane);
    for oy in 0..d.oh {
        for ox0 in (0..d.ow).step_by(LANES) {
            let mut acc = [[0.0f32; LANES]; GROUP];
            for c in 0..d.cin {
                for ki in 0..d.kh {
                    let row = &xp[(c * hp + oy + ki) * wp + ox0..];
                    let taps = &w[((c * d.kh + ki) * d.kw) * GROUP..][..d.kw * GROUP];
                    for (kj, wt) in taps.chunks_exact(GROUP).enumerate() {
                        let xs: &[f32; LANES] = row[kj..kj + LANES].try_into().unwrap();
                        let [a0, a1, a2, a3] = &mut acc;
                        axpy::<FMA>(a0, wt[0], xs);
                        axpy::<FMA>(a1, wt[1], xs);
                        axpy::<FMA>(a2, wt[2], xs);
                        axpy::<FMA>(a3, wt[3], xs);
                    }
                }
            }
            let n = LANES.min(d.ow - ox0);
            for (g, acc_g) in acc.iter().enumerate().take(outs) {
                y[g * plane + oy * d.ow + ox0..][..n].copy_from_slice(&acc_g[..n]);
            }
        }
    }
}

simd_versions! {
    /// `dw[g, b, ki, kj] += sum_{oy, ox} a[g, oy, ox] * xp[b, oy + ki, ox + kj]` for the
    /// first `outs <= GROUP` planes of `a` (`[GROUP][oh][ow_blocks]`, zero past `ow` and
    /// in absent planes) against the padded image `xp` of `cin` planes; `dw` holds `outs`
    /// sets of `[cin][kh][kw]`.
    pub fn weight_grad_group(d: &Direct, a: &[f32], xp: &[f32], dw: &mut [f32], outs: usize) =
        weight_grad_group_body;
}

#[inline(always)]
fn weight_grad_group_body<const FMA: bool>(
    d: &Direct,
    a: &[f32],
    xp: &[f32],
    dw: &mut [f32],
    outs: usize,
) {
    #[cfg(target_arch = "x86_64")]
    return_on!(FMA, Avx512, d.kw, 4, kernel_rows_avx512(d, a, xp, dw, outs));
    #[cfg(target_arch = "x86_64")]
    return_on!(
        FMA,
        Avx2,
        d.kw,
        3,
        direct_conv_avx2::kernel_rows(d, a, xp, dw, outs)
    );
    weight_grad_taps::<FMA>(d, a, xp, dw, outs)
}

/// [`weight_grad_group`] for kernels `KW` wide on AVX-512, a kernel row at a time: each
/// step loads the [`GROUP`] planes' 16 values of `a` once and multiplies them into the
/// `KW` taps of the row (`GROUP * KW` vector sums in registers), where
/// [`weight_grad_taps`] loads them again for every tap. `a` is the operand that does not
/// fit in L1 (celeba64x48-in's last layer: 4 planes of 48 x 64), so this reads it `KW`
/// times less often. (Written with intrinsics: from plain loops the compiler vectorized
/// across the taps, with shuffles, instead of along the row.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_rows_avx512<const KW: usize>(
    d: &Direct,
    a: &[f32],
    xp: &[f32],
    dw: &mut [f32],
    outs: usize,
) {
    use std::arch::x86_64::*;
    let (hp, wp, owb) = (d.padded_h(), d.padded_w(), d.ow_blocks());
    let taps = d.cin * d.kh * KW;
    assert!(d.kw == KW && owb % 16 == 0);
    assert!(xp.len() >= d.padded_len() && a.len() >= GROUP * d.oh * owb);
    assert!(outs <= GROUP && dw.len() == outs * taps);
    for b in 0..d.cin {
        for ki in 0..d.kh {
            let mut acc = [[_mm512_setzero_ps(); KW]; GROUP];
            for oy in 0..d.oh {
                let row = &xp[(b * hp + oy + ki) * wp..][..wp];
                for at in (0..owb).step_by(16) {
                    // SAFETY: 16 values at `at` of each plane's row of `owb`, and at
                    // `at + kj` of a padded row of `owb + KW - 1` (asserted above).
                    unsafe {
                        let lanes: [__m512; GROUP] = std::array::from_fn(|g| {
                            _mm512_loadu_ps(a.as_ptr().add((g * d.oh + oy) * owb + at))
                        });
                        let xs: [__m512; KW] =
                            std::array::from_fn(|kj| _mm512_loadu_ps(row.as_ptr().add(at + kj)));
                        for (acc_g, lane) in acc.iter_mut().zip(lanes) {
                            for (sum, x) in acc_g.iter_mut().zip(xs) {
                                *sum = _mm512_fmadd_ps(lane, x, *sum);
                            }
                        }
                    }
                }
            }
            let row_taps = (b * d.kh + ki) * KW;
            for (g, acc_g) in acc.iter().enumerate().take(outs) {
                for (kj, v) in acc_g.iter().enumerate() {
                    let mut lanes = [0.0f32; 16];
                    // SAFETY: 16 values.
                    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), *v) };
                    dw[g * taps + row_taps + kj] += sum_lanes(&lanes);
                }
            }
        }
    }
}

/// [`weight_grad_group`] a tap at a time, in plain loops (the other instruction sets, and
/// kernels wider than four).
#[inline(always)]
fn weight_grad_taps<const FMA: bool>(
    d: &Direct,
    a: &[f32],
    xp: &[f32],
    dw: &mut [f32],
    outs: usize,
) {
    let (hp, wp, owb) = (d.padded_h(), d.padded_w(), d.ow_blocks());
    let taps = d.cin * d.kh * d.kw;
    assert!(xp.len() >= d.padded_len() && a.len() >= GROUP * d.oh * owb);
    assert!(outs <= GROUP && dw.len() == outs * taps);
    for b in 0..d.cin {
        for ki in 0..d.kh {
            for kj in 0..d.kw {
                let mut acc = [[0.0f32; LANES]; GROUP];
                for oy in 0..d.oh {
                    let row = &xp[(b * hp + oy + ki) * wp + kj..][..owb];
                    for (blk, xs) in row.chunks_exact(LANES).enumerate() {
                        let xs: &[f32; LANES] = xs.try_into().unwrap();
                        let lane = |g: usize| -> &[f32; LANES] {
                            a[(g * d.oh + oy) * owb + blk * LANES..][..LANES]
                                .try_into()
                                .unwrap()
                        };
                        let [s0, s1, s2, s3] = &mut acc;
                        mul_acc::<FMA>(s0, lane(0), xs);
                        mul_acc::<FMA>(s1, lane(1), xs);
                        mul_acc::<FMA>(s2, lane(2), xs);
                        mul_acc::<FMA>(s3, lane(3), xs);
                    }
                }
                let tap = (b * d.kh + ki) * d.kw + kj;
                for (g, acc_g) in acc.iter().enumerate().take(outs) {
                    dw[g * taps + tap] += sum_lanes(acc_g);
                }
            }
        }
    }
}

/// `acc += w * x`, lane by lane (fused when `FMA`).
#[inline(always)]
fn axpy<const FMA: bool>(acc: &mut [f32; LANES], w: f32, x: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] = mul_add::<FMA>(w, x[l], acc[l]);
    }
}

/// `acc += a * x`, lane by lane (fused when `FMA`).
#[inline(always)]
fn mul_acc<const FMA: bool>(acc: &mut [f32; LANES], a: &[f32; LANES], x: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] = mul_add::<FMA>(a[l], x[l], acc[l]);
    }
}

/// The sum of the lanes, added pairwise in a fixed order.
#[inline(always)]
pub(super) fn sum_lanes<const N: usize>(v: &[f32; N]) -> f32 {
    let mut s = *v;
    let mut width = N / 2;
    while width > 0 {
        for i in 0..width {
            s[i] += s[i + width];
        }
        width /= 2;
    }
    s[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched kernels (AVX-512 or AVX2 with fused multiply-adds where the CPU has
    /// them) compute what the baseline build of the same body computes, up to rounding.
    #[test]
    fn wide_versions_match_the_baseline() {
        let d = Direct {
            cin: 3,
            h: 9,
            w: 21,
            kh: 3,
            kw: 2,
            pad_top: 1,
            pad_left: 1,
            oh: 9,
            ow: 21,
        };
        let x: Vec<f32> = (0..d.cin * d.h * d.w)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let mut xp = vec![0.0; d.padded_len()];
        pad_image(&d, &x, &mut xp);
        let w: Vec<f32> = (0..d.group_weights_len())
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0)
            .collect();
        let (mut wide, mut base) = (vec![0.0; 3 * d.oh * d.ow], vec![0.0; 3 * d.oh * d.ow]);
        conv_group(&d, &xp, &w, &mut wide, 3);
        conv_group_body::<false>(&d, &xp, &w, &mut base, 3);
        assert_close(&wide, &base);
        let a: Vec<f32> = (0..GROUP * d.oh * d.ow_blocks())
            .map(|i| ((i * 7 % 17) as f32 - 8.0) / 5.0)
            .collect();
        let taps = d.cin * d.kh * d.kw;
        let (mut wide, mut base) = (vec![0.5; 2 * taps], vec![0.5; 2 * taps]);
        weight_grad_group(&d, &a, &xp, &mut wide, 2);
        weight_grad_group_body::<false>(&d, &a, &xp, &mut base, 2);
        assert_close(&wide, &base);
        assert!(wide.iter().any(|&v| v != 0.5), "the gradient was written");
    }

    /// `dw[g, b, ki, kj] += sum a[g, oy, ox] * xp[b, oy + ki, ox + kj]`, one product at a
    /// time: the reference for [`weight_grad_group`].
    fn naive_weight_grad(d: &Direct, a: &[f32], xp: &[f32], dw: &mut [f32], outs: usize) {
        let (hp, wp, owb) = (d.padded_h(), d.padded_w(), d.ow_blocks());
        let taps = d.cin * d.kh * d.kw;
        for g in 0..outs {
            for b in 0..d.cin {
                for ki in 0..d.kh {
                    for kj in 0..d.kw {
                        let mut s = 0.0f64;
                        for oy in 0..d.oh {
                            for ox in 0..d.ow {
                                let av = a[(g * d.oh + oy) * owb + ox] as f64;
                                s += av * xp[(b * hp + oy + ki) * wp + ox + kj] as f64;
                            }
                        }
                        dw[g * taps + (b * d.kh + ki) * d.kw + kj] += s as f32;
                    }
                }
            }
        }
    }

    /// `y[g, oy, ox] = sum w[c, ki, kj, g] * xp[c, oy + ki, ox + kj]`, one product at a
    /// time: the reference for [`conv_group`].
    fn naive_conv(d: &Direct, xp: &[f32], w: &[f32], outs: usize) -> Vec<f32> {
        let (hp, wp) = (d.padded_h(), d.padded_w());
        let mut y = vec![0.0f32; outs * d.oh * d.ow];
        for (i, out) in y.iter_mut().enumerate() {
            let (g, oy, ox) = (i / (d.oh * d.ow), i / d.ow % d.oh, i % d.ow);
            let mut s = 0.0f64;
            for c in 0..d.cin {
                for ki in 0..d.kh {
                    for kj in 0..d.kw {
                        let wt = w[((c * d.kh + ki) * d.kw + kj) * GROUP + g] as f64;
                        s += wt * xp[(c * hp + oy + ki) * wp + ox + kj] as f64;
                    }
                }
            }
            *out = s as f32;
        }
        y
    }

    /// A same-size geometry with the kernel centred, and an image in it.
    fn geometry(
        cin: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        seed: usize,
    ) -> (Direct, Vec<f32>) {
        let d = Direct {
            cin,
            h,
            w,
            kh,
            kw,
            pad_top: kh / 2,
            pad_left: kw / 2,
            oh: h + 2 * (kh / 2) + 1 - kh,
            ow: w + 2 * (kw / 2) + 1 - kw,
        };
        let x: Vec<f32> = (0..cin * h * w)
            .map(|i| (((i + seed) * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let mut xp = vec![0.0; d.padded_len()];
        pad_image(&d, &x, &mut xp);
        (d, xp)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// The convolution, with a kernel row unrolled (kernels up to four wide, each
        /// width its own code) or tap by tap (wider), equals the product-by-product sum,
        /// over rows that end inside a block of outputs (every output written: NaN before).
        #[test]
        fn conv_matches_the_naive_sum(
            cin in 1usize..5, h in 1usize..9, w in 1usize..70,
            kh in 1usize..4, kw in 1usize..7, outs in 1usize..=GROUP, seed in 0usize..1000,
        ) {
            let (d, xp) = geometry(cin, h, w, kh, kw, seed);
            let wt: Vec<f32> = (0..d.group_weights_len())
                .map(|i| (((i + 5 * seed) * 13 % 29) as f32 - 14.0) / 9.0)
                .collect();
            let mut got = vec![f32::NAN; outs * d.oh * d.ow];
            conv_group(&d, &xp, &wt, &mut got, outs);
            let want = naive_conv(&d, &xp, &wt, outs);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                proptest::prop_assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "[{}] {} vs {}", i, g, w);
            }
        }

        /// The weight gradient, by kernel rows (kernels up to four wide, each width its
        /// own code) or tap by tap (wider), equals the product-by-product sum.
        #[test]
        fn weight_grad_matches_the_naive_sum(
            cin in 1usize..5, h in 1usize..12, w in 1usize..70,
            kh in 1usize..4, kw in 1usize..7, outs in 1usize..=GROUP, seed in 0usize..1000,
        ) {
            let (d, xp) = geometry(cin, h, w, kh, kw, seed);
            // Zero past `ow` and in absent planes, as the callers pass it.
            let owb = d.ow_blocks();
            let a: Vec<f32> = (0..GROUP * d.oh * owb)
                .map(|i| {
                    let (g, ox) = (i / (d.oh * owb), i % owb);
                    if g < outs && ox < d.ow {
                        (((i + 3 * seed) * 7 % 17) as f32 - 8.0) / 5.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let taps = cin * kh * kw;
            let (mut got, mut want) = (vec![0.25; outs * taps], vec![0.25; outs * taps]);
            weight_grad_group(&d, &a, &xp, &mut got, outs);
            naive_weight_grad(&d, &a, &xp, &mut want, outs);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                proptest::prop_assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "[{}] {} vs {}", i, g, w);
            }
        }
    }

    /// Every value of the padded copy is written (a buffer of NaN before), as its
    /// definition says: the image's pixel where one lies, else zero.
    #[test]
    fn pad_image_writes_every_value() {
        for (pad_top, pad_left, h, w) in [(1, 1, 5, 7), (0, 2, 3, 40), (2, 0, 1, 1)] {
            let d = Direct {
                cin: 2,
                h,
                w,
                kh: 3,
                kw: 3,
                pad_top,
                pad_left,
                oh: h,
                ow: w,
            };
            let x: Vec<f32> = (0..d.cin * h * w).map(|i| i as f32 + 1.0).collect();
            let mut xp = vec![f32::NAN; d.padded_len()];
            pad_image(&d, &x, &mut xp);
            let (hp, wp) = (d.padded_h(), d.padded_w());
            for (i, &v) in xp.iter().enumerate() {
                let (c, r, s) = (i / (hp * wp), i / wp % hp, i % wp);
                let (y, x_) = (
                    r as isize - pad_top as isize,
                    s as isize - pad_left as isize,
                );
                let inside = (0..h as isize).contains(&y) && (0..w as isize).contains(&x_);
                let want = if inside {
                    x[(c * h + y as usize) * w + x_ as usize]
                } else {
                    0.0
                };
                assert_eq!(v, want, "value {i} of {d:?}");
            }
        }
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}
