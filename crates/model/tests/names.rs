//! Property tests for the name rules (issue 10 §1): whatever a snapshot holds, a name that
//! passes is made only of characters a shell and a YAML scalar take literally, and any name
//! carrying shell or YAML syntax is refused.

#![allow(clippy::unwrap_used)] // a panic here is a failed test

use cniswap_model::names;
use proptest::prelude::*;

/// Characters that could change the meaning of a command or a YAML document.
const SYNTAX: &[char] = &[
    ';', '&', '|', '$', '`', '(', ')', '<', '>', '\'', '"', '\\', ' ', '\t', '\n', '\r', '#', '*',
    '?', '[', ']', '{', '}', '~', '!', ':', ',', '%', '@', '=', '\0',
];

fn shell_and_yaml_safe(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn anything_accepted_is_inert(name in "\\PC{0,80}") {
        for rule in [names::dns1123_subdomain, names::dns1123_label, names::dns1035_label, names::qualified_name, names::label_value] {
            if rule(&name).is_ok() {
                prop_assert!(shell_and_yaml_safe(&name), "{name:?}");
            }
        }
        if names::host(&name).is_ok() {
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':')), "{name:?}");
        }
    }

    #[test]
    fn injected_syntax_is_refused(
        prefix in "[a-z0-9]{1,20}",
        syntax in prop::sample::select(SYNTAX.to_vec()),
        suffix in "[a-z0-9 ;#&|]{0,20}",
    ) {
        let name = format!("{prefix}{syntax}{suffix}");
        for rule in [names::dns1123_subdomain, names::dns1123_label, names::dns1035_label, names::qualified_name, names::label_value, names::host, names::ip_address, names::cidr] {
            prop_assert!(rule(&name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn kubernetes_shaped_names_are_accepted(labels in prop::collection::vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 1..5)) {
        let name = labels.join(".");
        prop_assume!(name.len() <= 253);
        prop_assert!(names::dns1123_subdomain(&name).is_ok(), "{name}");
        prop_assert!(names::host(&name).is_ok(), "{name}");
        if labels.len() == 1 {
            prop_assert!(names::dns1123_label(&name).is_ok());
        }
    }

    #[test]
    fn cidrs_parse_exactly_when_the_prefix_fits(a in any::<u8>(), b in any::<u8>(), prefix in 0u32..300, v6 in any::<bool>()) {
        let (text, max) = if v6 { (format!("fd{a:02x}:{b:x}::/{prefix}"), 128) } else { (format!("10.{a}.{b}.0/{prefix}"), 32) };
        prop_assert_eq!(names::cidr(&text).is_ok(), prefix <= max, "{}", text);
    }
}
