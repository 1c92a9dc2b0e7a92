#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vae_cpu::fuzz_checks::mnist_idx(data));
