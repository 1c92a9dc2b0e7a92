//! A stride-s transposed convolution as a stride-1 convolution with s²·O output channels on
//! the low-resolution input, followed by depth-to-space (pixel shuffle; Shi et al. 2016,
//! "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
//! Convolutional Neural Network") and a crop. No zeros are multiplied and nothing is
//! scattered, which is why runtimes run it faster than a literal ConvTranspose.
//!
//! Per axis, with kernel k, stride s, padding p: the uncropped output position `Y' = Y + p`
//! receives `x[i] · w[ky]` for every `i·s + ky = Y'`. Writing `Y' = q·s + r` (phase r),
//! the taps are `ky = r + t·s` and `i = q - t`, so phase r is a correlation of x with
//! `K_r[m] = w[r + (T-1-m)·s]` (`T = ceil(k/s)` taps, zero past k) padded by T-1 on the
//! left. Depth-to-space (ONNX DCR order: channel `(r_y·s + r_x)·O + o`) interleaves the
//! phases; the crop removes the padding and adds output_padding's extra rows.

use crate::Tensor;

/// The stride-1 convolution, depth-to-space and crop equal to one transposed convolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubPixel {
    /// The block size of depth-to-space (the transposed convolution's stride).
    pub stride: usize,
    /// Taps of the stride-1 kernel, `[T_h, T_w]`.
    pub taps: [usize; 2],
    /// The convolution's zero padding, `[top, left, bottom, right]` (ONNX order).
    pub pads: [usize; 4],
    /// The rows and columns kept after depth-to-space, `[start_h, start_w]` to
    /// `[end_h, end_w]` (exclusive); `None` when everything is kept.
    pub crop: Option<([usize; 2], [usize; 2])>,
}

/// One axis: (taps, pad before, pad after, crop start, crop end, full length after
/// depth-to-space) for an input of `size`, kernel `k`, stride `s`, padding `p` and an
/// output of `out` (which includes output_padding).
fn axis(size: usize, k: usize, s: usize, p: usize, out: usize) -> [usize; 6] {
    let taps = k.div_ceil(s);
    // Whole low-resolution rows that the padding crops are not computed at all.
    let skipped = (p / s).min(taps - 1);
    let pad_before = taps - 1 - skipped;
    let crop_start = p - skipped * s;
    let rows_needed = (crop_start + out).div_ceil(s);
    // The convolution yields size + pad_before + pad_after - taps + 1 rows.
    let pad_after = (rows_needed + taps - 1).saturating_sub(size + pad_before);
    let full = (size + pad_before + pad_after + 1 - taps) * s;
    [
        taps,
        pad_before,
        pad_after,
        crop_start,
        crop_start + out,
        full,
    ]
}

impl SubPixel {
    /// The decomposition of a transposed convolution with `kernel` `[k_h, k_w]`, one
    /// `stride` for both axes, `padding` `[p_h, p_w]`, on an `input` of `[H, W]` giving an
    /// `output` of `[H_out, W_out]`.
    pub fn plan(
        kernel: [usize; 2],
        stride: usize,
        padding: [usize; 2],
        input: [usize; 2],
        output: [usize; 2],
    ) -> SubPixel {
        assert!(
            stride > 0 && kernel.iter().all(|&k| k > 0),
            "a valid window"
        );
        let h = axis(input[0], kernel[0], stride, padding[0], output[0]);
        let w = axis(input[1], kernel[1], stride, padding[1], output[1]);
        let whole = h[3] == 0 && w[3] == 0 && h[4] == h[5] && w[4] == w[5];
        SubPixel {
            stride,
            taps: [h[0], w[0]],
            pads: [h[1], w[1], h[2], w[2]],
            crop: (!whole).then_some(([h[3], w[3]], [h[4], w[4]])),
        }
    }

    /// The stride-1 kernel `[s²·O, C, T_h, T_w]` from the transposed convolution's
    /// `weight` `[C, O, k_h, k_w]`: `K[(r_y·s + r_x)·O + o, c, m_y, m_x] =
    /// w[c, o, r_y + (T_h-1-m_y)·s, r_x + (T_w-1-m_x)·s]`, zero past the kernel.
    pub fn weight(&self, weight: &Tensor) -> Tensor {
        let &[c, o, kh, kw] = weight.shape() else {
            panic!("a [C, O, kh, kw] weight, got {:?}", weight.shape());
        };
        let s = self.stride;
        let [th, tw] = self.taps;
        Tensor::from_shape_fn(vec![s * s * o, c, th, tw], |d| {
            let (phase, out) = (d[0] / o, d[0] % o);
            let ky = phase / s + (th - 1 - d[2]) * s;
            let kx = phase % s + (tw - 1 - d[3]) * s;
            if ky < kh && kx < kw {
                weight[[d[1], out, ky, kx]]
            } else {
                0.0
            }
        })
    }

    /// The stride-1 bias `[s²·O]`: every phase adds the same bias.
    pub fn bias(&self, bias: &Tensor) -> Tensor {
        let o = bias.len();
        Tensor::from_shape_fn(vec![self.stride * self.stride * o], |d| bias[[d[0] % o]])
    }
}

/// Depth-to-space in ONNX's DCR order: `[N, s²·O, H, W]` -> `[N, O, H·s, W·s]`, output
/// `(o, q_y·s + r_y, q_x·s + r_x)` from channel `(r_y·s + r_x)·O + o` at `(q_y, q_x)`.
pub fn depth_to_space(x: &Tensor, s: usize) -> Tensor {
    let &[n, c, h, w] = x.shape() else {
        panic!("an [N, C, H, W] tensor, got {:?}", x.shape());
    };
    let o = c / (s * s);
    assert_eq!(o * s * s, c, "channels divisible by the block size squared");
    Tensor::from_shape_fn(vec![n, o, h * s, w * s], |d| {
        let phase = (d[2] % s) * s + d[3] % s;
        x[[d[0], phase * o + d[1], d[2] / s, d[3] / s]]
    })
}

/// Rows `start[0]..end[0]` and columns `start[1]..end[1]` of every `[N, C]` plane.
pub fn crop(x: &Tensor, start: [usize; 2], end: [usize; 2]) -> Tensor {
    let s = x.shape();
    Tensor::from_shape_fn(
        vec![s[0], s[1], end[0] - start[0], end[1] - start[1]],
        |d| x[[d[0], d[1], d[2] + start[0], d[3] + start[1]]],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k4_s2_p1_needs_one_row_of_padding_each_side_and_a_crop() {
        let plan = SubPixel::plan([4, 4], 2, [1, 1], [2, 2], [4, 4]);
        assert_eq!(plan.taps, [2, 2]);
        assert_eq!(plan.pads, [1, 1, 1, 1]);
        assert_eq!(plan.crop, Some(([1, 1], [5, 5])));
    }

    #[test]
    fn stride_one_is_a_plain_convolution_with_the_kernel_flipped() {
        let plan = SubPixel::plan([3, 3], 1, [1, 1], [8, 8], [8, 8]);
        assert_eq!(plan.pads, [1, 1, 1, 1]);
        assert_eq!(plan.crop, None);
        let w = Tensor::from_shape_fn(vec![1, 1, 3, 3], |d| (d[2] * 3 + d[3]) as f32);
        let k = plan.weight(&w);
        assert_eq!(k[[0, 0, 0, 0]], 8.0);
        assert_eq!(k[[0, 0, 2, 1]], 1.0);
    }
}
