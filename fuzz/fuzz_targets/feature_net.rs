#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vae_cpu::test_support::fuzz_checks::feature_net(data));
