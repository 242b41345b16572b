//! When each node was being switched, from what verify saw while probing: apply's node marker
//! (`cniswap.io/apply-in-progress`) and cordons, each with the time it was seen set and
//! cleared, or `--switching NODE` for the whole run. A lost probe counts against the switch
//! only when a node its path touches was being switched when the probe was sent; every other
//! lost probe was lost "elsewhere", which a migration must keep at 0.

use crate::continuous::NodeEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// apply's marker on the node it is working on (cniswap-exec's NODE_IN_PROGRESS).
pub const APPLY_MARKER: &str = "cniswap.io/apply-in-progress";

/// Node events that open and close a window, as the live runner records them.
pub const MARKED: &str = "apply-in-progress";
pub const UNMARKED: &str = "apply-finished";
pub const CORDONED: &str = "cordoned";
pub const UNCORDONED: &str = "uncordoned";

/// A time a node was being switched. `start_us`/`end_us` include the margin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchWindow {
    pub node: String,
    pub start_us: i64,
    pub end_us: i64,
    /// What said so: `apply marker`, `cordon`, `apply marker and cordon` or `--switching`.
    pub by: String,
}

impl SwitchWindow {
    pub fn contains(&self, t_us: i64) -> bool {
        self.start_us <= t_us && t_us <= self.end_us
    }

    pub fn overlaps(&self, start_us: i64, end_us: i64) -> bool {
        self.start_us <= end_us && start_us <= self.end_us
    }
}

/// The windows of every node, from the node events (in any order) of a run from `start_us`
/// to `end_us`. A node is being switched while it carries apply's marker or is cordoned;
/// `margin_us` widens each window on both sides, by how late verify can see a change (its
/// node poll) plus the probe timeout (a probe sent just before a switch fails during it).
/// `explicit` nodes (`--switching`) are being switched for the whole run.
pub fn windows(
    events: &[NodeEvent],
    start_us: i64,
    end_us: i64,
    margin_us: i64,
    explicit: &[String],
) -> Vec<SwitchWindow> {
    let mut sorted: Vec<&NodeEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.t_us);
    // Per node: marked, cordoned, since when the window is open, and what opened it.
    let mut state: BTreeMap<&str, (bool, bool, Option<i64>, bool, bool)> = BTreeMap::new();
    let mut out = Vec::new();
    let by = |marker: bool, cordon: bool| match (marker, cordon) {
        (true, true) => "apply marker and cordon",
        (true, false) => "apply marker",
        _ => "cordon",
    };
    for e in sorted {
        let entry = state
            .entry(e.node.as_str())
            .or_insert((false, false, None, false, false));
        let was_open = entry.0 || entry.1;
        match e.what.as_str() {
            MARKED => entry.0 = true,
            UNMARKED => entry.0 = false,
            CORDONED => entry.1 = true,
            UNCORDONED => entry.1 = false,
            _ => continue,
        }
        let open = entry.0 || entry.1;
        entry.3 |= entry.0;
        entry.4 |= entry.1;
        if open && !was_open {
            entry.2 = Some(e.t_us);
        } else if !open && was_open {
            let since = entry.2.take().unwrap_or(start_us);
            out.push(SwitchWindow {
                node: e.node.clone(),
                start_us: (since - margin_us).max(start_us),
                end_us: (e.t_us + margin_us).min(end_us),
                by: by(entry.3, entry.4).into(),
            });
            entry.3 = false;
            entry.4 = false;
        }
    }
    for (node, (_, _, since, marker, cordon)) in state {
        if let Some(since) = since {
            out.push(SwitchWindow {
                node: node.to_string(),
                start_us: (since - margin_us).max(start_us),
                end_us,
                by: by(marker, cordon).into(),
            });
        }
    }
    for node in explicit {
        out.retain(|w| w.node != *node);
        out.push(SwitchWindow {
            node: node.clone(),
            start_us,
            end_us,
            by: "--switching".into(),
        });
    }
    // A switch recreates the node's pods, verify's own agents among them: until verify has
    // followed them to their new addresses, probes to the old ones fail. The switch lasts
    // until then, within a bound (an agent back much later is not this switch's doing).
    for w in &mut out {
        let back = events
            .iter()
            .filter(|e| e.node == w.node && is_agent_back(&e.what))
            .filter(|e| w.start_us <= e.t_us && e.t_us <= w.end_us + AGENT_BACK_GRACE_US)
            .map(|e| e.t_us)
            .max();
        if let Some(t) = back {
            w.end_us = w.end_us.max((t + margin_us).min(end_us));
        }
    }
    out.sort_by(|a, b| (a.start_us, &a.node).cmp(&(b.start_us, &b.node)));
    out
}

/// How long after a node's marker or cordon ends its agents may come back as part of the switch.
const AGENT_BACK_GRACE_US: i64 = 30_000_000;

/// The node event verify records when it follows a recreated agent to its new address.
pub fn agent_back(role: &str, address: &str) -> String {
    format!("new {role} pod {address}")
}

fn is_agent_back(what: &str) -> bool {
    what.starts_with("new ") && what.contains(" pod")
}

/// The path kinds a switched node's gaps are reported by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathGroup {
    PodToPod,
    Service,
    Dns,
    Host,
    Api,
    Outside,
}

impl PathGroup {
    pub const ALL: [PathGroup; 6] = [
        PathGroup::PodToPod,
        PathGroup::Service,
        PathGroup::Dns,
        PathGroup::Host,
        PathGroup::Api,
        PathGroup::Outside,
    ];

    pub fn of(kind: crate::Kind) -> PathGroup {
        use crate::Kind as K;
        match kind {
            K::PodToPod | K::PodToPodUdp | K::PathMtu | K::TcpStreamPod => PathGroup::PodToPod,
            K::PodToService | K::TcpStreamService => PathGroup::Service,
            K::DnsKubernetes | K::DnsService | K::DnsHeadless => PathGroup::Dns,
            K::HostToPod | K::PodToHost => PathGroup::Host,
            K::ApiService | K::ApiDirect => PathGroup::Api,
            K::Outside => PathGroup::Outside,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PathGroup::PodToPod => "pod-to-pod",
            PathGroup::Service => "service",
            PathGroup::Dns => "dns",
            PathGroup::Host => "host",
            PathGroup::Api => "api",
            PathGroup::Outside => "outside",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_s: i64, node: &str, what: &str) -> NodeEvent {
        NodeEvent {
            t_us: t_s * 1_000_000,
            node: node.into(),
            what: what.into(),
        }
    }

    #[test]
    fn a_marker_and_a_cordon_make_one_window_from_the_first_to_the_last() {
        let events = [
            ev(12, "a", UNCORDONED),
            ev(10, "a", MARKED),
            ev(11, "a", CORDONED),
            ev(13, "a", UNMARKED),
            ev(20, "b", CORDONED),
            ev(25, "b", UNCORDONED),
            ev(30, "c", MARKED),
            ev(31, "c", "not-ready"),
        ];
        let w = windows(&events, 0, 40_000_000, 1_000_000, &[]);
        assert_eq!(
            w,
            vec![
                SwitchWindow {
                    node: "a".into(),
                    start_us: 9_000_000,
                    end_us: 14_000_000,
                    by: "apply marker and cordon".into()
                },
                SwitchWindow {
                    node: "b".into(),
                    start_us: 19_000_000,
                    end_us: 26_000_000,
                    by: "cordon".into()
                },
                // Still marked when the run ended: open to the end.
                SwitchWindow {
                    node: "c".into(),
                    start_us: 29_000_000,
                    end_us: 40_000_000,
                    by: "apply marker".into()
                },
            ]
        );
        assert!(w[0].contains(9_000_000) && !w[0].contains(15_000_000));
    }

    /// Calico's controller uncordons a node before verify has followed its recreated agents
    /// to their new addresses: the switch lasts until they are back, within 30 s.
    #[test]
    fn a_switch_lasts_until_the_nodes_agents_are_back() {
        let events = [
            ev(10, "a", CORDONED),
            ev(20, "a", UNCORDONED),
            ev(24, "a", &agent_back("probe", "10.244.1.9")),
            ev(10, "b", CORDONED),
            ev(20, "b", UNCORDONED),
            // Long after b's switch: not its doing.
            ev(60, "b", &agent_back("probe", "10.244.2.9")),
            ev(15, "c", &agent_back("probe", "10.244.3.9")),
        ];
        let w = windows(&events, 0, 100_000_000, 1_000_000, &[]);
        let end = |node: &str| w.iter().find(|w| w.node == node).map(|w| w.end_us);
        assert_eq!(end("a"), Some(25_000_000));
        assert_eq!(end("b"), Some(21_000_000));
        assert_eq!(end("c"), None, "an agent back is no switch by itself");
    }

    #[test]
    fn a_node_switched_twice_has_two_windows_and_switching_covers_the_run() {
        let events = [
            ev(1, "a", MARKED),
            ev(2, "a", UNMARKED),
            ev(5, "a", MARKED),
            ev(6, "a", UNMARKED),
        ];
        let w = windows(&events, 0, 10_000_000, 0, &["b".to_string()]);
        let a: Vec<(i64, i64)> = w
            .iter()
            .filter(|w| w.node == "a")
            .map(|w| (w.start_us, w.end_us))
            .collect();
        assert_eq!(a, vec![(1_000_000, 2_000_000), (5_000_000, 6_000_000)]);
        let b = w.iter().find(|w| w.node == "b").unwrap();
        assert_eq!(
            (b.start_us, b.end_us, b.by.as_str()),
            (0, 10_000_000, "--switching")
        );
    }
}
