//! Moves between the NCHW layout of a chunk of `b` images (`[b, c, p]`) and the
//! channel-major layout `[c, b*p]` that one wide GEMM over the chunk uses.

/// `[b, c, p]` -> `[c, b*p]`.
pub fn batch_to_channel_major(src: &[f32], b: usize, c: usize, p: usize, dst: &mut [f32]) {
    assert!(src.len() == b * c * p && dst.len() >= b * c * p);
    for i in 0..b {
        for ch in 0..c {
            let s = &src[(i * c + ch) * p..(i * c + ch + 1) * p];
            dst[ch * b * p + i * p..ch * b * p + (i + 1) * p].copy_from_slice(s);
        }
    }
}

/// `[c, b*p]` -> `[b, c, p]`.
pub fn channel_major_to_batch(src: &[f32], b: usize, c: usize, p: usize, dst: &mut [f32]) {
    assert!(src.len() >= b * c * p && dst.len() == b * c * p);
    for i in 0..b {
        for ch in 0..c {
            let s = &src[ch * b * p + i * p..ch * b * p + (i + 1) * p];
            dst[(i * c + ch) * p..(i * c + ch + 1) * p].copy_from_slice(s);
        }
    }
}

/// How many images one GEMM should cover: enough columns (`b*p`) for the micro-kernel
/// to run at speed, but at least one chunk per thread of the current pool.
///
/// With an accelerator, each product pays a launch and a synchronization, so chunks are
/// much wider (up to `OFFLOAD_COLUMNS`), but still two to four, so that one chunk's
/// im2col on the CPU overlaps the other's product on the device.
pub fn images_per_chunk(n: usize, p: usize) -> usize {
    const TARGET_COLUMNS: usize = 256;
    const OFFLOAD_COLUMNS: usize = 8192;
    let p = p.max(1);
    if super::offload::is_active() {
        let wide = OFFLOAD_COLUMNS.div_ceil(p);
        let threads = rayon::current_num_threads().clamp(2, 4);
        return wide.min(n.div_ceil(threads)).max(1);
    }
    let threads = rayon::current_num_threads().max(1);
    let wide = TARGET_COLUMNS.div_ceil(p);
    balanced(n, wide.min(n.div_ceil(threads)).max(1), threads)
}

/// `b`, or a little less (down to half) when that splits `n` images into a multiple of
/// `threads` chunks of nearly equal size: 64 images in chunks of 22 are 3 tasks, of which
/// two threads run the last alone; chunks of 16 are 4 tasks, two for each.
fn balanced(n: usize, b: usize, threads: usize) -> usize {
    if threads == 1 {
        return b;
    }
    let first = n.div_ceil(b).next_multiple_of(threads);
    (first..=n)
        .step_by(threads)
        .map(|tasks| n.div_ceil(tasks))
        .take_while(|&c| 2 * c >= b)
        .find(|&c| n.div_ceil(c) % threads == 0 && n % c <= c / 2)
        .unwrap_or(b)
}

/// A layer's bias (a value per output channel), if it has one.
pub type Bias<'a> = Option<&'a [f32]>;

/// Adds `bias[c]` to every position of channel `c` in whole images `[b, c, p]` (`c` =
/// `bias.len()`; nothing without a bias): a convolution's bias, added by the task that
/// has just written the images, while they are in its cache (a pass of its own over a
/// layer's output read it back from memory).
pub fn add_plane_bias(images: &mut [f32], p: usize, bias: Bias) {
    let Some(bias) = bias else {
        return;
    };
    assert!(p > 0 && images.len().is_multiple_of(p * bias.len()));
    for (plane, &b) in images.chunks_exact_mut(p).zip(bias.iter().cycle()) {
        plane.iter_mut().for_each(|v| *v += b);
    }
}

/// Per-channel sums of `[n, c, p]` data (the gradient of a channel bias): each plane summed
/// on the current rayon pool, the planes added in order (the same sums for any pool).
pub fn channel_sums(data: &[f32], channels: usize, p: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let planes: Vec<f64> = data.par_chunks(p.max(1)).map(super::lanes::sum).collect();
    let mut sums = vec![0.0f64; channels];
    for (i, s) in planes.into_iter().enumerate() {
        sums[i % channels] += s;
    }
    sums.into_iter().map(|s| s as f32).collect()
}

/// Runs `f` on a chunk `[b, c, p]` viewed as `[c, b*p]`: the chunk itself when `b == 1`
/// (already that layout), else a copy in a scratch buffer.
pub fn with_channel_major<R>(
    src: &[f32],
    b: usize,
    c: usize,
    p: usize,
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    if b == 1 {
        f(src)
    } else {
        super::scratch::with_scratch(b * c * p, |t| {
            batch_to_channel_major(src, b, c, p, t);
            f(t)
        })
    }
}

/// Runs `f` to write a chunk's `[c, b*p]` product and stores it into `dst` as
/// `[b, c, p]`: `f` writes `dst` itself when `b == 1` (already that layout), else a
/// scratch buffer that is then copied.
pub fn into_batch_major(dst: &mut [f32], b: usize, c: usize, p: usize, f: impl FnOnce(&mut [f32])) {
    if b == 1 {
        f(dst)
    } else {
        super::scratch::with_scratch(b * c * p, |t| {
            f(t);
            channel_major_to_batch(t, b, c, p, dst);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_in_whole_rounds_of_threads_when_they_can() {
        // 64 images of 3x4 outputs on 2 threads: 22 would be 3 chunks; 16 are 4.
        assert_eq!(balanced(64, 22, 2), 16);
        // 6x8 outputs: 6 would be 11 chunks, 5 would be 13; 4 are 16.
        assert_eq!(balanced(64, 6, 2), 4);
        assert_eq!(balanced(64, 8, 2), 8);
        // One thread, or no balanced size down to half: unchanged.
        assert_eq!(balanced(64, 22, 1), 22);
        assert_eq!(balanced(7, 1, 2), 1);
    }

    #[test]
    fn plane_bias_goes_to_every_value_of_its_channel_in_each_image() {
        let (b, c, p) = (2, 3, 4);
        let bias = [10.0, 20.0, 30.0];
        let mut data: Vec<f32> = (0..b * c * p).map(|i| i as f32).collect();
        add_plane_bias(&mut data, p, None);
        assert!(data.iter().enumerate().all(|(i, v)| *v == i as f32));
        add_plane_bias(&mut data, p, Some(&bias));
        for (i, v) in data.iter().enumerate() {
            assert_eq!(*v, i as f32 + bias[(i / p) % c], "value {i}");
        }
    }

    #[test]
    fn layouts_round_trip_and_place_values() {
        let (b, c, p) = (3, 4, 5);
        let src: Vec<f32> = (0..b * c * p).map(|i| i as f32).collect();
        let mut cm = vec![0.0; b * c * p];
        batch_to_channel_major(&src, b, c, p, &mut cm);
        // element (image 2, channel 1, position 3) lands at row 1, column 2*p+3
        assert_eq!(cm[b * p + 2 * p + 3], src[(2 * c + 1) * p + 3]);
        let mut back = vec![0.0; b * c * p];
        channel_major_to_batch(&cm, b, c, p, &mut back);
        assert_eq!(back, src);
    }
}
