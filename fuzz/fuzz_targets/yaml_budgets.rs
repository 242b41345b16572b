//! The YAML loader under tight budgets (nesting, nodes, alias expansion): arbitrary text ends
//! in a tree within the budgets or in an error; never an overflow, an abort or a hang.
#![no_main]
use cniswap_config::limits::Limits;
use cniswap_config::yaml::{Node, Value, parse_documents_with};
use libfuzzer_sys::fuzz_target;

fn count(node: &Node) -> usize {
    let mut n = 0;
    let mut stack = vec![node];
    while let Some(node) = stack.pop() {
        n += 1;
        match &node.value {
            Value::Seq(items) => stack.extend(items),
            Value::Map(entries) => entries.iter().for_each(|(k, v)| {
                stack.push(k);
                stack.push(v);
            }),
            _ => {}
        }
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let limits = Limits {
        max_depth: 1 + usize::from(knobs & 0x0f) * 4,
        max_nodes: 16 << (knobs >> 4),
        max_alias_expansion: 4096,
        ..Limits::default()
    };
    if let Ok(docs) = parse_documents_with(text, &limits) {
        // Aliases copy nodes; everything else is bounded by the node budget.
        let nodes: usize = docs.iter().map(count).sum();
        assert!(nodes <= limits.max_nodes + (limits.max_alias_expansion as usize / 64) * 2);
    }
});
