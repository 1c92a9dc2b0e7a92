//! Constant small matrices applied on both sides of square blocks of vectors, `L` lanes
//! at a time (`L` of 16 fills an AVX-512 register), as minimal filtering's transforms need
//! ([`super::winograd`]): each block's values are loaded from runs of a plane layout,
//! mapped, and stored (or added) back into runs of another.

/// `out = m · v` for a constant matrix `m` (`R x C`) on vectors of `L` lanes. Zero
/// coefficients are skipped and units fold away once inlined, so a matrix of small
/// integers costs its additions. (Loops into `out` rather than arrays returned: those
/// were copied through memory.)
#[inline(always)]
fn times<const R: usize, const C: usize, const L: usize>(
    m: &[[f32; C]; R],
    v: &[[f32; L]; C],
    out: &mut [[f32; L]; R],
) {
    for i in 0..R {
        // -0.0 + x is x exactly, so the first term costs nothing.
        out[i] = [-0.0f32; L];
        for k in 0..C {
            if m[i][k] != 0.0 {
                for l in 0..L {
                    out[i][l] += m[i][k] * v[k][l];
                }
            }
        }
    }
}

/// `out = mᵀ · v` for a constant matrix `m` (`R x C`).
#[inline(always)]
fn times_transposed<const R: usize, const C: usize, const L: usize>(
    m: &[[f32; C]; R],
    v: &[[f32; L]; R],
    out: &mut [[f32; L]; C],
) {
    for k in 0..C {
        out[k] = [-0.0f32; L];
        for i in 0..R {
            if m[i][k] != 0.0 {
                for l in 0..L {
                    out[k][l] += m[i][k] * v[i][l];
                }
            }
        }
    }
}

/// `out = m · d · mᵀ` of a square block `d` (`C x C`) of `L`-lane vectors: `R x R`.
#[inline(always)]
pub(crate) fn both_sides<const R: usize, const C: usize, const L: usize>(
    m: &[[f32; C]; R],
    d: &[[[f32; L]; C]; C],
    out: &mut [[[f32; L]; R]; R],
) {
    // Along the columns first (md = m · d, column by column), then each row of md.
    let mut md = [[[0.0f32; L]; C]; R];
    let (mut column, mut image) = ([[0.0f32; L]; C], [[0.0f32; L]; R]);
    for f in 0..C {
        for e in 0..C {
            column[e] = d[e][f];
        }
        times(m, &column, &mut image);
        for xi in 0..R {
            md[xi][f] = image[xi];
        }
    }
    for xi in 0..R {
        times(m, &md[xi], &mut out[xi]);
    }
}

/// `out = mᵀ · d · m` of a square block `d` (`R x R`): `C x C`.
#[inline(always)]
pub(crate) fn both_sides_transposed<const R: usize, const C: usize, const L: usize>(
    m: &[[f32; C]; R],
    d: &[[[f32; L]; R]; R],
    out: &mut [[[f32; L]; C]; C],
) {
    let mut md = [[[0.0f32; L]; R]; C];
    let (mut column, mut image) = ([[0.0f32; L]; R], [[0.0f32; L]; C]);
    for f in 0..R {
        for e in 0..R {
            column[e] = d[e][f];
        }
        times_transposed(m, &column, &mut image);
        for xi in 0..C {
            md[xi][f] = image[xi];
        }
    }
    for xi in 0..C {
        times_transposed(m, &md[xi], &mut out[xi]);
    }
}

/// A two-sided map of a block of `L`-lane vectors, `I x I` to `O x O`.
/// (A trait rather than a closure: a closure is not compiled for its caller's
/// instruction set, so it would not inline into the wide versions.)
pub(crate) trait BlockMap<const I: usize, const O: usize> {
    fn apply<const L: usize>(d: &[[[f32; L]; I]; I], out: &mut [[[f32; L]; O]; O]);
}

/// One block of `L` lanes of map `M`: the `I x I` runs `src[from[..][..] + start..]`
/// mapped to `O x O` runs stored into (or, with `ADD`, added to)
/// `dst[to[..][..] + start..]`.
#[inline(always)]
fn block<M, const L: usize, const I: usize, const O: usize, const ADD: bool>(
    src: &[f32],
    from: &[[usize; I]; I],
    dst: &mut [f32],
    to: &[[usize; O]; O],
    start: usize,
) where
    M: BlockMap<I, O>,
{
    let mut input = [[[0.0f32; L]; I]; I];
    for e in 0..I {
        for g in 0..I {
            input[e][g].copy_from_slice(&src[from[e][g] + start..][..L]);
        }
    }
    let mut output = [[[0.0f32; L]; O]; O];
    M::apply(&input, &mut output);
    for e in 0..O {
        for g in 0..O {
            let out = &mut dst[to[e][g] + start..][..L];
            for l in 0..L {
                out[l] = if ADD {
                    out[l] + output[e][g][l]
                } else {
                    output[e][g][l]
                };
            }
        }
    }
}

/// [`block`] over lanes `0..len`: blocks of 16, then 8, 4 and 1.
#[inline(always)]
pub(crate) fn in_blocks<M, const I: usize, const O: usize, const ADD: bool>(
    len: usize,
    src: &[f32],
    from: &[[usize; I]; I],
    dst: &mut [f32],
    to: &[[usize; O]; O],
) where
    M: BlockMap<I, O>,
{
    let mut start = 0;
    while start + 16 <= len {
        block::<M, 16, I, O, ADD>(src, from, dst, to, start);
        start += 16;
    }
    if start + 8 <= len {
        block::<M, 8, I, O, ADD>(src, from, dst, to, start);
        start += 8;
    }
    if start + 4 <= len {
        block::<M, 4, I, O, ADD>(src, from, dst, to, start);
        start += 4;
    }
    for start in start..len {
        block::<M, 1, I, O, ADD>(src, from, dst, to, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `(m d mᵀ)[i][j]` (or `(mᵀ d m)` with `transposed`) of lane `l`, in f64.
    fn naive(m: &[[f32; 3]; 2], d: &[Vec<f32>], transposed: bool, i: usize, j: usize) -> f64 {
        let at = |r: usize, c: usize| if transposed { m[c][r] } else { m[r][c] } as f64;
        let n = d.len().isqrt();
        (0..n * n)
            .map(|k| at(i, k / n) * d[k][0] as f64 * at(j, k % n))
            .sum()
    }

    proptest! {
        /// Both sides of 3x3 blocks by a 2x3 matrix (with a zero and a unit), and of 2x2
        /// blocks by its transpose, lane by lane against the definition.
        #[test]
        fn both_sides_match_the_definition(
            values in prop::collection::vec(-4.0f32..4.0, 9 * 16),
            lane in 0usize..16,
        ) {
            let m = [[1.0, 0.0, -2.0], [0.5, 3.0, 1.0]];
            let d: [[[f32; 16]; 3]; 3] =
                std::array::from_fn(|e| std::array::from_fn(|f| values[(3 * e + f) * 16..][..16].try_into().unwrap()));
            let mut out = [[[0.0f32; 16]; 2]; 2];
            both_sides(&m, &d, &mut out);
            let lanes: Vec<Vec<f32>> = d.iter().flatten().map(|v| vec![v[lane]]).collect();
            for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let want = naive(&m, &lanes, false, i, j);
                prop_assert!((out[i][j][lane] as f64 - want).abs() < 1e-4, "{:?}", (i, j));
            }
            let small: [[[f32; 16]; 2]; 2] = [[d[0][0], d[0][1]], [d[1][0], d[1][1]]];
            let mut back = [[[0.0f32; 16]; 3]; 3];
            both_sides_transposed(&m, &small, &mut back);
            let lanes: Vec<Vec<f32>> = small.iter().flatten().map(|v| vec![v[lane]]).collect();
            for (i, j) in (0..9).map(|k| (k / 3, k % 3)) {
                let want = naive(&m, &lanes, true, i, j);
                prop_assert!((back[i][j][lane] as f64 - want).abs() < 1e-4, "{:?}", (i, j));
            }
        }
    }
}
