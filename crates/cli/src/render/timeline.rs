//! plan's per-node outage estimate as a timeline: one line per node in migration order, a bar
//! as long as the node's estimated window, then the totals.

use super::cni_table::thousands;
use super::{BOLD, DIM, GREEN, RED, YELLOW, count};
use cniswap_model::text::escape_control as esc;
use cniswap_plan::{Estimates, NodeEstimate};

/// Columns of the longest bar.
const BAR: usize = 32;
/// Node names are cut to this many characters (the full names are in runbook.md and `-o json`).
const NAME: usize = 40;
/// Up to this many nodes get a line each; beyond it, the first and the last few do.
const MAX_LINES: usize = 25;
const TAIL: usize = 5;

/// The timeline section of plan's summary (only the totals when the plan switches no node).
/// `cutover`: the plan takes every node's pod network down at once.
pub fn timeline(e: &Estimates, cutover: bool) -> String {
    let nodes = &e.per_node;
    if nodes.is_empty() {
        return format!(
            "Estimate: about {} min in total, longest pod-network outage about {} min\n",
            e.total_minutes, e.longest_outage_minutes
        );
    }
    let longest = nodes
        .iter()
        .map(|n| n.interruption_seconds)
        .max()
        .unwrap_or(0);
    let shown: Vec<(usize, &NodeEstimate)> = nodes.iter().enumerate().collect();
    let (head, tail) = if nodes.len() > MAX_LINES {
        let cut = MAX_LINES - TAIL;
        (&shown[..cut], &shown[nodes.len() - TAIL..])
    } else {
        (&shown[..], &shown[..0])
    };
    let names: Vec<String> = head
        .iter()
        .chain(tail)
        .map(|(_, n)| name(&n.node))
        .collect();
    let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let number_width = nodes.len().to_string().len();

    // Cutover's outage is the whole window on every node: the bars are not the outage then.
    let title = if cutover {
        "Each node's switch"
    } else {
        "Pod-network outage per node"
    };
    let mut out = format!("{BOLD}{title}{BOLD:#} {DIM}(estimate, in migration order){DIM:#}:\n");
    let widths = (number_width, name_width, longest);
    for (row, name) in head.iter().zip(&names) {
        out.push_str(&line(*row, name, widths));
    }
    if !tail.is_empty() {
        let hidden = &nodes[head.len()..nodes.len() - TAIL];
        let least = hidden
            .iter()
            .map(|n| n.interruption_seconds)
            .min()
            .unwrap_or(0);
        let most = hidden
            .iter()
            .map(|n| n.interruption_seconds)
            .max()
            .unwrap_or(0);
        let range = if least == most {
            seconds(least)
        } else {
            format!("{} to {}", seconds(least), seconds(most))
        };
        out.push_str(&format!(
            "  {DIM}{:>number_width$}  ... {} more nodes, {range} each (runbook.md and -o json list every node){DIM:#}\n",
            "",
            thousands(hidden.len()),
        ));
        for (row, name) in tail.iter().zip(&names[head.len()..]) {
            out.push_str(&line(*row, name, widths));
        }
    }
    out.push_str(&format!(
        "  {BOLD}Total{BOLD:#}: about {} min (install, {}, finish); longest pod-network outage about {} min\n",
        thousands(e.total_minutes as usize),
        if nodes.len() == 1 {
            "1 node".to_string()
        } else {
            format!("{} nodes", thousands(nodes.len()))
        },
        thousands(e.longest_outage_minutes as usize),
    ));
    if cutover {
        out.push_str(&format!(
            "  {YELLOW}cutover{YELLOW:#}: every node's pod network is down from stopping the old CNI until the last node is switched (the whole window); the bars are each node's own switch\n"
        ));
    }
    out
}

/// One node: its place in the order, name, role, bar, seconds and pods recreated.
fn line(
    (i, n): (usize, &NodeEstimate),
    name: &str,
    (number_width, name_width, longest): (usize, usize, u32),
) -> String {
    let width = bar_width(n.interruption_seconds, longest);
    let style = if n.interruption_seconds <= 60 {
        GREEN
    } else if n.interruption_seconds <= 300 {
        YELLOW
    } else {
        RED
    };
    format!(
        "  {:>number_width$}  {name:<name_width$}  {:<13}  {style}{}{style:#}{} {:>6}  {}\n",
        i + 1,
        n.role,
        "█".repeat(width),
        " ".repeat(BAR - width),
        seconds(n.interruption_seconds),
        count(n.pods_recreated, "pod", "pods"),
    )
}

/// Columns of a bar for `value` when `longest` fills [`BAR`]: at least one for any outage.
fn bar_width(value: u32, longest: u32) -> usize {
    if value == 0 || longest == 0 {
        return 0;
    }
    let width = (u64::from(value) * BAR as u64).div_ceil(u64::from(longest));
    usize::try_from(width).unwrap_or(BAR).clamp(1, BAR)
}

/// `45 s` (the runbook's per-node table counts in seconds too).
fn seconds(value: u32) -> String {
    format!("{value} s")
}

/// The node's name escaped for the terminal and cut to [`NAME`] characters.
fn name(node: &str) -> String {
    let escaped = esc(node);
    if escaped.chars().count() <= NAME {
        return escaped.into_owned();
    }
    let mut cut: String = escaped.chars().take(NAME - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_and_never_vanish() {
        assert_eq!(bar_width(90, 90), BAR);
        assert_eq!(bar_width(45, 90), BAR / 2);
        assert_eq!(bar_width(1, 10_000), 1);
        assert_eq!(bar_width(0, 90), 0);
        assert_eq!(bar_width(u32::MAX, u32::MAX), BAR);
    }

    fn estimates(nodes: usize) -> Estimates {
        Estimates {
            per_node: (0..nodes)
                .map(|i| NodeEstimate {
                    node: format!("node-{i:04}"),
                    role: if i + 3 >= nodes {
                        "control-plane"
                    } else {
                        "worker"
                    }
                    .into(),
                    pods_recreated: i % 61,
                    interruption_seconds: 30 + u32::try_from(i % 61).unwrap(),
                })
                .collect(),
            total_minutes: 42,
            longest_outage_minutes: 2,
            exceeds_token_lifetime: false,
            risks: Vec::new(),
            assumptions: Vec::new(),
        }
    }

    #[test]
    fn thousands_of_nodes_show_the_first_and_the_last() {
        let out = timeline(&estimates(5000), false);
        let plain = anstream::adapter::strip_str(&out).to_string();
        let lines: Vec<&str> = plain.lines().collect();
        // Title, 20 first nodes, the gap, 5 last nodes (the control planes go last), totals.
        assert_eq!(lines.len(), 1 + 20 + 1 + 5 + 1, "{plain}");
        assert!(lines[1].starts_with("     1  node-0000  worker"), "{plain}");
        assert!(
            lines[21].contains("... 4,975 more nodes, 30 s to 90 s each"),
            "{plain}"
        );
        assert!(
            lines[26].starts_with("  5000  node-4999  control-plane"),
            "{plain}"
        );
        assert!(lines[27].contains("about 42 min (install, 5,000 nodes, finish)"));
        // Bars against the longest window (90 s, hidden in the gap): 30 s is 11 of 32 columns.
        let bar = |line: &str| line.chars().filter(|c| *c == '█').count();
        assert_eq!(bar(lines[1]), 11, "{plain}");
        assert_eq!(bar(lines[26]), 32, "{plain}");
        // Colour only on terminals (anstream strips it).
        assert!(out.contains("\u{1b}["));
    }

    #[test]
    fn equal_windows_in_the_gap_are_said_once() {
        let mut e = estimates(100);
        for n in &mut e.per_node {
            n.interruption_seconds = 60;
        }
        e.total_minutes = 3010;
        let plain = anstream::adapter::strip_str(&timeline(&e, false)).to_string();
        assert!(plain.contains("... 75 more nodes, 60 s each ("), "{plain}");
        assert!(
            plain.contains("about 3,010 min (install, 100 nodes"),
            "{plain}"
        );
    }

    #[test]
    fn a_plan_without_nodes_states_its_totals() {
        assert_eq!(
            timeline(&estimates(0), true),
            "Estimate: about 42 min in total, longest pod-network outage about 2 min\n"
        );
    }

    #[test]
    fn long_and_hostile_names_are_cut_and_escaped() {
        assert_eq!(name("w\u{1b}[2Jx"), "w\\u{1b}[2Jx");
        let long = "n".repeat(100);
        let cut = name(&long);
        assert_eq!(cut.chars().count(), NAME);
        assert!(cut.ends_with('…'));
    }
}
