//! Positioned YAML, redaction, Talos summaries and Omni/talhelper readers on arbitrary text.
#![no_main]
use cniswap_config::{omni, redact, talhelper, talos, yaml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = redact::redact_yaml(text);
    if let Ok(docs) = yaml::parse_documents(text) {
        let _ = talos::summarize("fuzz", "full", &docs, true);
        let mut config = docs.clone();
        talos::apply_patch(&mut config, &docs);
        for doc in &docs {
            let _ = omni::read_config_patch(doc);
            let _ = talhelper::read(doc);
        }
        let _ = omni::read_template(&docs);
    }
});
