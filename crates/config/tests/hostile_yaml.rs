//! Property tests for the classes of hostile YAML (issue 10 §4, §5): nesting, aliases, sizes,
//! and secrets reached through aliases. Each generated input must end in a tree within the
//! budgets or in an error naming the budget; never a panic, an overflow or a leak.

#![allow(clippy::unwrap_used)] // a panic here is a failed test

use cniswap_config::limits::Limits;
use cniswap_config::redact::{REDACTED, redact_yaml};
use cniswap_config::yaml::{Node, Value, parse_documents_with};
use proptest::prelude::*;

fn limits(depth: usize, nodes: usize, alias: u64) -> Limits {
    Limits {
        max_depth: depth,
        max_nodes: nodes,
        max_alias_expansion: alias,
        ..Limits::default()
    }
}

/// Deepest nesting of collections in a tree, counted without recursion.
fn depth(node: &Node) -> usize {
    let mut max = 0;
    let mut stack = vec![(node, 1usize)];
    while let Some((n, d)) = stack.pop() {
        if matches!(n.value, Value::Seq(_) | Value::Map(_)) {
            max = max.max(d);
        }
        match &n.value {
            Value::Seq(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Map(entries) => stack.extend(entries.iter().map(|(_, v)| (v, d + 1))),
            _ => {}
        }
    }
    max
}

/// Nested collections, in block or flow style, `levels` deep.
fn nested(levels: usize, flow: bool) -> String {
    if flow {
        format!("a: {}x{}\n", "[".repeat(levels), "]".repeat(levels))
    } else {
        let mut text = String::new();
        for i in 0..levels {
            text.push_str(&"  ".repeat(i));
            text.push_str(&format!("k{i}:\n"));
        }
        text.push_str(&"  ".repeat(levels));
        text.push_str("leaf: 1\n");
        text
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn nesting_is_refused_exactly_beyond_the_depth_budget(levels in 1usize..120, budget in 2usize..100, flow in any::<bool>()) {
        let text = nested(levels, flow);
        match parse_documents_with(&text, &limits(budget, 1_000_000, 1 << 20)) {
            Ok(docs) => prop_assert!(depth(&docs[0]) <= budget),
            Err(e) if e.limit.is_some() => {
                prop_assert_eq!(e.limit.unwrap().budget.env, "CNISWAP_MAX_DEPTH");
                prop_assert!(levels + 1 > budget);
            }
            // The scanner's own flow-nesting limit may stop very deep flow collections first.
            Err(e) => prop_assert!(flow && levels > 64, "{}", e),
        }
    }

    #[test]
    fn alias_expansion_stays_within_its_budget(
        scalar in 1usize..4096,
        refs in 1usize..400,
        layers in 1usize..4,
        budget in 1u64..(1 << 20),
    ) {
        // Layered anchors: each layer lists the previous one `refs` times.
        let mut text = format!("l0: &l0 {}\n", "x".repeat(scalar));
        for layer in 1..=layers {
            let items = vec![format!("*l{}", layer - 1); refs].join(", ");
            text.push_str(&format!("l{layer}: &l{layer} [{items}]\n"));
        }
        match parse_documents_with(&text, &limits(256, 10_000_000, budget)) {
            Ok(docs) => {
                // Whatever was produced through aliases fits the budget (64 bytes a node).
                let produced: u64 = (0..=layers)
                    .map(|l| refs.pow(l as u32) as u64 * (scalar as u64 + 64))
                    .skip(1)
                    .sum();
                prop_assert!(produced <= budget.saturating_mul(2) + 64 * refs as u64, "{produced} > {budget}");
                prop_assert_eq!(docs.len(), 1);
            }
            Err(e) => prop_assert_eq!(e.limit.map(|l| l.budget.env), Some("CNISWAP_MAX_ALIAS_EXPANSION")),
        }
    }

    #[test]
    fn node_count_is_refused_exactly_beyond_its_budget(items in 1usize..2000, budget in 1usize..2000) {
        let text: String = (0..items).map(|i| format!("- {i}\n")).collect();
        match parse_documents_with(&text, &limits(256, budget, 1 << 20)) {
            Ok(_) => prop_assert!(items < budget),
            Err(e) => {
                prop_assert_eq!(e.limit.map(|l| l.budget.env), Some("CNISWAP_MAX_NODES"));
                prop_assert!(items + 1 > budget);
            }
        }
    }

    #[test]
    fn a_secret_reached_through_an_alias_never_survives(
        key in prop::sample::select(vec!["token", "password", "secret", "client-key-data", "identityToken", "passphrase", "oidc-client-secret"]),
        anchor_first in any::<bool>(),
        quoted in any::<bool>(),
        block in any::<bool>(),
        filler in "[a-z]{0,12}",
    ) {
        let value = if block {
            "|\n    MARKER-SECRET\n".to_string()
        } else if quoted {
            "\"MARKER-SECRET\"\n".to_string()
        } else {
            "MARKER-SECRET\n".to_string()
        };
        let anchor = format!("plain_{filler}: &s {value}");
        let alias = format!("outer:\n  {key}: *s\n");
        let text = if anchor_first { format!("{anchor}{alias}") } else { format!("{alias}{anchor}") };
        // An alias before its anchor is invalid YAML; it must stay an error, not a leak.
        match redact_yaml(&text) {
            Ok(r) => {
                prop_assert!(!r.text.contains("MARKER"), "{}", r.text);
                let again = cniswap_config::yaml::parse_documents(&r.text).unwrap();
                let redacted = again[0].path(&["outer", key]).unwrap().as_str().map(str::trim_end);
                prop_assert_eq!(redacted, Some(REDACTED));
                prop_assert_eq!(r.text.lines().count(), text.lines().count());
                prop_assert!(!format!("{:?}", r.docs).contains("MARKER"), "the tree too");
            }
            Err(_) => prop_assert!(!anchor_first),
        }
    }
}
