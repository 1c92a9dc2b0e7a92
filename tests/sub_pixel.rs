//! The sub-pixel decomposition (`ops::sub_pixel`) is the same function as the engine's
//! transposed convolution, for any kernel, stride, padding and output_padding the op takes.
#![cfg(feature = "engine")]

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vae_cpu::ops::sub_pixel::{crop, depth_to_space, SubPixel};
use vae_cpu::ops::{
    conv2d, conv_transpose2d, conv_transpose2d_output_size, Conv2dSpec, ConvTranspose2dSpec,
    Padding,
};
use vae_cpu::{Tensor, Var};

fn random(shape: &[usize], rng: &mut impl Rng) -> Tensor {
    Tensor::from_shape_simple_fn(shape.to_vec(), || rng.gen_range(-1.0..1.0))
}

/// Conv (stride 1) -> depth-to-space -> crop, as the fast ONNX export writes it.
fn sub_pixel(x: &Tensor, w: &Tensor, b: &Tensor, plan: &SubPixel) -> Tensor {
    let [top, left, bottom, right] = plan.pads;
    let spec = Conv2dSpec::new(
        1,
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        },
    );
    let k = Var::constant(plan.weight(w));
    let bias = Var::constant(plan.bias(b));
    let y = conv2d(&Var::constant(x.clone()), &k, Some(&bias), spec);
    let y = depth_to_space(y.value(), plan.stride);
    match plan.crop {
        Some((start, end)) => crop(&y, start, end),
        None => y,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn sub_pixel_equals_conv_transpose(
        n in 1usize..3, c in 1usize..4, o in 1usize..4,
        h in 1usize..6, w in 1usize..6,
        kh in 1usize..6, kw in 1usize..6, s in 1usize..4,
        p in 0usize..5, op in 0usize..3, seed in any::<u64>(),
    ) {
        let spec = ConvTranspose2dSpec::new(s, p, op);
        let size = conv_transpose2d_output_size(h, w, kh, kw, &spec);
        prop_assume!(size.is_some());
        let (oh, ow) = size.unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = random(&[n, c, h, w], &mut rng);
        let weight = random(&[c, o, kh, kw], &mut rng);
        let bias = random(&[o], &mut rng);
        let want = conv_transpose2d(
            &Var::constant(x.clone()),
            &Var::constant(weight.clone()),
            Some(&Var::constant(bias.clone())),
            spec,
        );
        let plan = SubPixel::plan([kh, kw], s, [p, p], [h, w], [oh, ow]);
        let got = sub_pixel(&x, &weight, &bias, &plan);
        prop_assert_eq!(got.shape(), want.shape());
        let diff = got
            .iter()
            .zip(want.value().iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        prop_assert!(diff < 1e-5, "max diff {} for {:?}", diff, plan);
    }
}
