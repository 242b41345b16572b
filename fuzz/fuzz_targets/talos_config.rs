//! Positioned YAML, redaction, value and name checks, Talos summaries, merges and the
//! Omni/talhelper readers on arbitrary text: any input ends in Ok or an error, and whatever
//! redaction returns parses again.
#![no_main]
use cniswap_config::{omni, redact, talhelper, talos, values, yaml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(redacted) = redact::redact_yaml(text) {
        assert!(yaml::parse_documents(&redacted.text).is_ok(), "redaction broke the YAML");
    }
    if let Ok(docs) = yaml::parse_documents(text) {
        let _ = talos::summarize("fuzz", "full", &docs, true);
        let _ = values::check_talos(&docs);
        let mut config = docs.clone();
        talos::apply_patch(&mut config, &docs);
        for doc in &docs {
            let _ = values::check_names(doc);
            let _ = values::check_cilium_values(doc);
            let _ = omni::read_config_patch(doc, Some(text));
            let _ = talhelper::read(doc, Some(text));
        }
        let _ = omni::read_template(&docs, Some(text));
    }
});
