//! Name rules and backup paths on arbitrary strings: an accepted name holds no shell or YAML
//! syntax, an accepted backup path never climbs out of its base.
#![no_main]
use cniswap_model::names;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for rule in [
        names::dns1123_subdomain,
        names::dns1123_label,
        names::dns1035_label,
        names::qualified_name,
        names::label_value,
        names::host,
    ] {
        if rule(text).is_ok() {
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | ':')),
                "{text:?}"
            );
        }
    }
    let _ = names::cidr(text);
    if let Ok(path) = cniswap_node::paths::safe_relative(text) {
        assert!(path.components().all(|c| matches!(c, std::path::Component::Normal(_))));
    }
    let lexical = cniswap_node::paths::lexical(text);
    assert!(!lexical.split('/').any(|p| p == ".."), "{lexical:?}");
});
