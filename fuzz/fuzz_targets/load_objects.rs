//! Kubernetes object decoding from JSON and YAML: any input ends in Ok or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [cniswap_snapshot::Format::Json, cniswap_snapshot::Format::Yaml] {
        let _ = cniswap_snapshot::load_reader(data, format, |_| Ok(()));
    }
});
