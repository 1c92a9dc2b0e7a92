//! Helpers for element-wise kernels: parallel over the current rayon pool when the
//! tensor is large enough to pay for it.

use crate::Tensor;
use ndarray::Zip;
use rayon::prelude::*;

const PAR_THRESHOLD: usize = 1 << 15;

/// `out[i] = f(x[i])`.
pub(crate) fn map(x: &Tensor, f: impl Fn(f32) -> f32 + Sync + Send) -> Tensor {
    let mut out = Tensor::zeros(x.raw_dim());
    if x.len() >= PAR_THRESHOLD {
        Zip::from(&mut out).and(x).par_for_each(|o, &v| *o = f(v));
    } else {
        Zip::from(&mut out).and(x).for_each(|o, &v| *o = f(v));
    }
    out
}

/// `out = f(x)` by a slice kernel `f` (one that maps each value on its own), in chunks
/// over the pool when large; `scalar` is the same function for a tensor that is not
/// contiguous.
pub(crate) fn map_slices(
    x: &Tensor,
    f: fn(&[f32], &mut [f32]),
    scalar: impl Fn(f32) -> f32 + Sync + Send,
) -> Tensor {
    let Some(xs) = x.as_slice() else {
        return map(x, scalar);
    };
    let mut out = Tensor::zeros(x.raw_dim());
    let ys = out.as_slice_mut().expect("a new tensor is contiguous");
    if xs.len() >= PAR_THRESHOLD {
        ys.par_chunks_mut(PAR_THRESHOLD / 2)
            .zip(xs.par_chunks(PAR_THRESHOLD / 2))
            .for_each(|(y, x)| f(x, y));
    } else {
        f(xs, ys);
    }
    out
}

/// `out[i] = f(a[i], b[i])` for two tensors of the same shape.
pub(crate) fn zip_map(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Tensor {
    assert_eq!(
        a.shape(),
        b.shape(),
        "element-wise op on tensors of different shapes"
    );
    let mut out = Tensor::zeros(a.raw_dim());
    if a.len() >= PAR_THRESHOLD {
        Zip::from(&mut out)
            .and(a)
            .and(b)
            .par_for_each(|o, &x, &y| *o = f(x, y));
    } else {
        Zip::from(&mut out)
            .and(a)
            .and(b)
            .for_each(|o, &x, &y| *o = f(x, y));
    }
    out
}

/// Sum of all elements, accumulated in f64.
pub(crate) fn sum_f64(x: &Tensor) -> f64 {
    x.iter().map(|&v| v as f64).sum()
}

/// The tensor itself if it is in standard (row-major, contiguous) layout, else a copy that is.
pub(crate) fn standard(t: std::sync::Arc<Tensor>) -> std::sync::Arc<Tensor> {
    if t.is_standard_layout() {
        t
    } else {
        std::sync::Arc::new(t.as_standard_layout().into_owned())
    }
}

/// The elements in row-major order, borrowed when the layout allows it.
pub(crate) fn row_major(t: &Tensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice() {
        Some(s) => s.into(),
        None => t.iter().copied().collect::<Vec<_>>().into(),
    }
}
