//! inspect's node x CNI table: one row per node (or per group of nodes in the same state), one
//! column per CNI found, each cell the state of that CNI's agent on the node.

use super::{DIM, GREEN, YELLOW};
use cniswap_model::{CniKind, Facts, NodeFacts};
use std::collections::BTreeMap;

/// Up to this many nodes get a row each; more are grouped by identical CNI states.
const MAX_NODE_ROWS: usize = 25;

/// Rows shown when grouped before pointing at `-o json`.
const MAX_GROUPS: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Agent {
    Running,
    NotReady,
    Absent,
}

impl Agent {
    fn of(node: &NodeFacts, cni: CniKind) -> Agent {
        if node.cni_agents.contains(&cni) {
            Agent::Running
        } else if node.cni_agents_not_ready.contains(&cni) {
            Agent::NotReady
        } else {
            Agent::Absent
        }
    }

    /// The cell, coloured (anstream strips the colour in pipes); width is the plain text's.
    fn cell(self) -> (String, usize) {
        let (style, text) = match self {
            Agent::Running => (GREEN, "running"),
            Agent::NotReady => (YELLOW, "not ready"),
            Agent::Absent => (DIM, "absent"),
        };
        (format!("{style}{text}{style:#}"), text.len())
    }
}

/// The CNIs that get a column: those found in the cluster, then any whose agent runs on a
/// node without the CNI being reported (kept, so no agent is hidden).
fn columns(facts: &Facts) -> Vec<CniKind> {
    let mut out: Vec<CniKind> = facts.cnis.iter().map(|c| c.kind).collect();
    for node in &facts.nodes {
        for kind in node.cni_agents.iter().chain(&node.cni_agents_not_ready) {
            if !out.contains(kind) {
                out.push(*kind);
            }
        }
    }
    out
}

/// The table, indented two spaces, or nothing when there are no nodes or no CNIs. Node names
/// and CIDRs are expected escaped by the caller.
pub fn table(facts: &Facts) -> String {
    let cnis = columns(facts);
    if cnis.is_empty() || facts.nodes.is_empty() {
        return String::new();
    }
    let mut header = vec![("NODE".to_string(), 4), ("POD-CIDR".to_string(), 8)];
    header.extend(cnis.iter().map(|c| {
        let name = c.as_str().to_uppercase();
        let width = name.len();
        (name, width)
    }));
    let mut rows = vec![header];
    if facts.nodes.len() <= MAX_NODE_ROWS {
        for node in &facts.nodes {
            let cidr = if node.pod_cidrs.is_empty() {
                "-".to_string()
            } else {
                node.pod_cidrs.join(",")
            };
            let mut row = vec![plain(node.name.clone()), plain(cidr)];
            row.extend(cnis.iter().map(|c| Agent::of(node, *c).cell()));
            rows.push(row);
        }
        return render(&rows);
    }
    // Many nodes: one row per distinct combination of states, the largest group first.
    let mut groups: BTreeMap<Vec<Agent>, Vec<&NodeFacts>> = BTreeMap::new();
    for node in &facts.nodes {
        let states = cnis.iter().map(|c| Agent::of(node, *c)).collect();
        groups.entry(states).or_default().push(node);
    }
    let mut groups: Vec<(Vec<Agent>, Vec<&NodeFacts>)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let total = groups.len();
    for (states, nodes) in groups.iter().take(MAX_GROUPS) {
        let name = match nodes.as_slice() {
            [one] => one.name.clone(),
            many => format!("{} nodes", thousands(many.len())),
        };
        let mut row = vec![plain(name), plain(cidrs(nodes))];
        row.extend(states.iter().map(|s| s.cell()));
        rows.push(row);
    }
    let mut out = render(&rows);
    if total > MAX_GROUPS {
        out.push_str(&format!(
            "  {DIM}... and {} more combinations (use -o json for every node){DIM:#}\n",
            total - MAX_GROUPS
        ));
    }
    out.push_str(&format!(
        "  {DIM}{} nodes grouped by the state of their CNI agents{DIM:#}\n",
        thousands(facts.nodes.len())
    ));
    out
}

/// The pod CIDR cell of a group: the one range they share, `-`, or how many ranges.
fn cidrs(nodes: &[&NodeFacts]) -> String {
    let mut all: Vec<&str> = nodes
        .iter()
        .flat_map(|n| n.pod_cidrs.iter().map(String::as_str))
        .collect();
    all.sort_unstable();
    all.dedup();
    let without = nodes.iter().filter(|n| n.pod_cidrs.is_empty()).count();
    match (all.as_slice(), without) {
        ([], _) => "-".to_string(),
        ([one], 0) => (*one).to_string(),
        (many, 0) => format!("{} ranges", thousands(many.len())),
        (many, none) => format!(
            "{} ranges, {} without",
            thousands(many.len()),
            thousands(none)
        ),
    }
}

fn plain(text: String) -> (String, usize) {
    let width = text.chars().count();
    (text, width)
}

/// Aligned columns; each cell carries the width of its visible text (styles are invisible).
fn render(rows: &[Vec<(String, usize)>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.1)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        // Two spaces between columns: a cell may hold one ("not ready").
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().enumerate() {
            line.push_str("  ");
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i].saturating_sub(*width)));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `4997` as `4,997`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: &str, running: &[CniKind], not_ready: &[CniKind]) -> NodeFacts {
        NodeFacts {
            name: name.to_string(),
            pod_cidrs: if cidr.is_empty() {
                Vec::new()
            } else {
                vec![cidr.to_string()]
            },
            cni_agents: running.to_vec(),
            cni_agents_not_ready: not_ready.to_vec(),
            ..NodeFacts::default()
        }
    }

    /// Calico found (CRDs left behind) but running nowhere: it still gets its column.
    fn leftover_calico() -> cniswap_model::CniFacts {
        serde_json::from_value(serde_json::json!({
            "kind": "calico", "desired": 0, "ready": 0, "active_nodes": [],
            "running": false, "pod_cidrs": [], "evidence": ["CRDs"]
        }))
        .unwrap()
    }

    fn plain_text(text: &str) -> String {
        anstream::adapter::strip_str(text).to_string()
    }

    #[test]
    fn each_node_gets_a_row_and_each_cni_a_column() {
        use CniKind::*;
        let facts = Facts {
            cnis: vec![leftover_calico()],
            nodes: vec![
                node("cp-1", "10.244.0.0/24", &[Flannel], &[Cilium]),
                node("w-1", "10.244.1.0/24", &[Flannel, Cilium], &[]),
                node("w-2", "", &[], &[]),
            ],
            ..Facts::default()
        };
        let out = table(&facts);
        // Coloured for terminals; anstream strips it in pipes.
        assert!(out.contains("\u{1b}["), "{out:?}");
        assert_eq!(
            plain_text(&out),
            "  NODE  POD-CIDR       CALICO  FLANNEL  CILIUM\n  \
             cp-1  10.244.0.0/24  absent  running  not ready\n  \
             w-1   10.244.1.0/24  absent  running  running\n  \
             w-2   -              absent  absent   absent\n"
        );
    }

    #[test]
    fn thousands_of_nodes_are_grouped_by_their_states() {
        use CniKind::*;
        let mut nodes: Vec<NodeFacts> = (0..4997)
            .map(|i| {
                node(
                    &format!("n{i}"),
                    &format!("10.{}.{}.0/24", i / 256, i % 256),
                    &[Flannel],
                    &[],
                )
            })
            .collect();
        nodes.push(node("n4997", "10.200.0.0/24", &[Flannel], &[Cilium]));
        nodes.push(node("n4998", "10.200.1.0/24", &[Flannel], &[Cilium]));
        nodes.push(node("n4999", "", &[], &[]));
        let facts = Facts {
            nodes,
            ..Facts::default()
        };
        let out = plain_text(&table(&facts));
        assert_eq!(
            out,
            "  NODE         POD-CIDR      FLANNEL  CILIUM\n  \
             4,997 nodes  4,997 ranges  running  absent\n  \
             2 nodes      2 ranges      running  not ready\n  \
             n4999        -             absent   absent\n  \
             5,000 nodes grouped by the state of their CNI agents\n"
        );
    }

    #[test]
    fn groups_beyond_the_limit_point_at_json() {
        // 30 nodes, each in its own combination of 5 CNIs' states.
        let nodes: Vec<NodeFacts> = (0..30)
            .map(|i| {
                let running: Vec<CniKind> = CniKind::ALL
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| i & (1 << bit) != 0)
                    .map(|(_, k)| *k)
                    .collect();
                node(&format!("n{i}"), "", &running, &[])
            })
            .collect();
        let facts = Facts {
            nodes,
            ..Facts::default()
        };
        let out = plain_text(&table(&facts));
        assert_eq!(out.lines().count(), 1 + MAX_GROUPS + 2, "{out}");
        assert!(
            out.contains("... and 5 more combinations (use -o json for every node)"),
            "{out}"
        );
    }

    #[test]
    fn no_nodes_or_no_cni_is_no_table() {
        assert_eq!(table(&Facts::default()), "");
        let facts = Facts {
            nodes: vec![node("w", "10.0.0.0/24", &[], &[])],
            ..Facts::default()
        };
        assert_eq!(table(&facts), "");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4997), "4,997");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
