//! Run-time choice of the vector instructions a loop is compiled for. The crate is built
//! for the baseline of its target (SSE2 on x86-64), so plain loops use 128-bit vectors;
//! `simd_versions!` compiles a loop's body again for AVX2 + FMA and for AVX-512 and
//! calls the widest one this CPU runs. The body takes a `const FMA: bool`: true in the
//! wide versions (fused multiply-adds, one rounding), false in the baseline one, so
//! results can differ between machines in the last bits (never between runs on one).

use std::sync::atomic::{AtomicU8, Ordering};

/// The widest instruction set found on this CPU, among those we compile for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Baseline = 1,
    Avx2 = 2,
    /// AVX-512 F, BW and VL with FMA and BMI2 (every AVX-512 CPU has the last two).
    Avx512 = 3,
}

static DETECTED: AtomicU8 = AtomicU8::new(0);

/// This CPU's [`Level`] (detected once).
#[inline]
pub fn level() -> Level {
    match DETECTED.load(Ordering::Relaxed) {
        1 => Level::Baseline,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => {
            let found = detect();
            DETECTED.store(found as u8, Ordering::Relaxed);
            found
        }
    }
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("bmi2")
        {
            return Level::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// Whether this CPU's AVX-512 gathers are slow against masked loads (AMD's: on Zen 4 a
/// 16-lane gather takes ~20 cycles against ~4 for two masked loads and a permute, and
/// packing panel halves by runs of masked loads was 4-6% faster a step, commit e2fee28).
/// On the Intel Xeon host the gathers won instead (session 29: celeba64x48-in 156.0 ->
/// 165.3 img/s, celeba32 227.0 -> 235.2, 5 alternating rounds each).
pub fn gathers_are_slow() -> bool {
    static SLOW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SLOW.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // CPUID leaf 0: the vendor string in EBX, EDX, ECX ("AuthenticAMD").
            #[allow(unused_unsafe)]
            // SAFETY: CPUID exists on every x86-64 CPU.
            let id = unsafe { std::arch::x86_64::__cpuid(0) };
            let vendor = [id.ebx, id.edx, id.ecx].map(u32::to_le_bytes).concat();
            vendor == b"AuthenticAMD"
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// `simd_versions!(pub fn name(a: A, b: B) -> R = body;)` defines `name`, which calls the
/// `#[inline(always)]` function `body::<FMA>` compiled for the widest [`Level`] of this CPU.
macro_rules! simd_versions {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body::<true>($($arg),*)
                }
                match $crate::kernels::simd::level() {
                    // SAFETY: `level` found these instructions on this CPU.
                    $crate::kernels::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::kernels::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::simd::Level::Baseline => {}
                }
            }
            $body::<false>($($arg),*)
        }
    };
}
pub(crate) use simd_versions;

/// `a * b + c`, in one rounding when `FMA` (only in code compiled for FMA instructions:
/// elsewhere `mul_add` is a slow library call).
#[inline(always)]
pub(crate) fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}
