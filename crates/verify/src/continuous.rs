//! The result of `verify --continuous`: every path with its outages, a summary per path and
//! per node, and a timeline of events (the `-o json` document and `timeline.json`).

use crate::gaps::PathStats;
use crate::kind::Kind;
use crate::plan::PathKey;
use crate::windows::{PathGroup, SwitchWindow, windows};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// A node event seen while probing (cordoned, uncordoned, not ready, an agent restarted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvent {
    pub t_us: i64,
    pub node: String,
    pub what: String,
}

/// What the live runner collected.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub cluster: String,
    pub namespace: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_us: i64,
    pub end_us: i64,
    pub nodes: Vec<String>,
    /// Nodes named with `--switching`: being switched for the whole run. Every other node
    /// is being switched while `events` show it marked by apply or cordoned (see [`windows`]).
    ///
    /// [`windows`]: crate::windows
    pub switching: BTreeSet<String>,
    /// How much each switch window is widened on both sides: the node poll interval plus the
    /// probe timeout.
    pub window_margin_us: i64,
    pub paths: Vec<(PathKey, PathStats, u64)>,
    /// Paths that could not be probed, with the reason.
    pub not_probed: Vec<(PathKey, String)>,
    pub events: Vec<NodeEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinuousReport {
    pub schema_version: u32,
    pub cluster: String,
    pub namespace: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    pub nodes: Vec<String>,
    /// Every node that was being switched at some time of the run.
    pub switching: Vec<String>,
    /// When each was being switched (with the margin), and what said so.
    #[serde(default)]
    pub windows: Vec<WindowReport>,
    /// Each switched node's gaps while it was being switched, per path kind.
    #[serde(default)]
    pub switched: Vec<SwitchedNode>,
    pub paths: Vec<PathReport>,
    pub not_probed: Vec<NotProbed>,
    pub summary: ContinuousSummary,
    pub timeline: Vec<TimelineEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathReport {
    pub kind: Kind,
    pub from_node: String,
    #[serde(default)]
    pub to_node: Option<String>,
    pub target: String,
    pub probes: u64,
    pub lost: u64,
    /// Long-lived TCP connections reset or closed by the other side.
    pub resets: u64,
    pub longest_gap_s: f64,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    pub gaps: Vec<GapReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapReport {
    /// RFC 3339 wall-clock times (millisecond precision).
    pub start: String,
    pub end: String,
    /// Seconds since the run started.
    pub start_s: f64,
    pub end_s: f64,
    pub duration_s: f64,
    pub lost: u64,
    pub error: String,
    /// Still down when the run ended.
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    pub node: String,
    pub start: String,
    pub end: String,
    pub start_s: f64,
    pub end_s: f64,
    pub by: String,
}

/// One switched node: its longest gap and lost probes per path kind (pod-to-pod, service,
/// dns, host, api) on paths from or to it, counting only gaps while it was being switched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchedNode {
    pub node: String,
    /// Seconds it was being switched (windows added up, margins included).
    pub switching_s: f64,
    pub kinds: Vec<KindGaps>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindGaps {
    pub kind: PathGroup,
    pub paths: usize,
    pub paths_with_gaps: usize,
    pub longest_gap_s: f64,
    pub lost: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotProbed {
    #[serde(flatten)]
    pub path: PathKey,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinuousSummary {
    pub paths: usize,
    pub paths_with_gaps: usize,
    pub probes: u64,
    pub lost: u64,
    pub resets: u64,
    pub longest_gap_s: f64,
    pub per_node: Vec<NodeSummary>,
    /// Lost probes on paths that touched none of the nodes being switched when each probe
    /// was sent (the goal of a migration: 0).
    pub lost_elsewhere: u64,
    /// Those paths with their count, when any lost probes.
    pub gaps_elsewhere: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub node: String,
    /// Longest gap of any path from or to this node.
    pub longest_gap_s: f64,
    pub paths_with_gaps: usize,
    pub lost: u64,
    pub switching: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub t: String,
    pub t_s: f64,
    /// `down`, `up`, or a node event (`cordoned`, `uncordoned`, `not-ready`, `ready`, ...).
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(unix_us: i64) -> String {
    match jiff::Timestamp::from_microsecond(unix_us) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => unix_us.to_string(),
    }
}

fn secs(us: i64) -> f64 {
    (us as f64 / 1e3).round() / 1e3
}

pub fn build(c: &Collected) -> ContinuousReport {
    let rel = |us: i64| secs(us - c.start_us);
    let mut paths: Vec<PathReport> = c
        .paths
        .iter()
        .map(|(key, stats, resets)| {
            let gaps: Vec<GapReport> = stats
                .all_gaps(c.end_us)
                .into_iter()
                .map(|g| GapReport {
                    start: rfc3339(g.start_us),
                    end: rfc3339(g.end_us),
                    start_s: rel(g.start_us),
                    end_s: rel(g.end_us),
                    duration_s: secs(g.end_us - g.start_us),
                    lost: g.lost,
                    error: g.error.clone(),
                    open: g.open,
                })
                .collect();
            let passed = stats.probes - stats.lost;
            PathReport {
                kind: key.kind,
                from_node: key.from_node.clone(),
                to_node: key.to_node.clone(),
                target: key.target.clone(),
                probes: stats.probes,
                lost: stats.lost,
                resets: *resets,
                longest_gap_s: gaps.iter().map(|g| g.duration_s).fold(0.0, f64::max),
                rtt_avg_ms: (passed > 0)
                    .then(|| (stats.rtt_sum_us as f64 / passed as f64 / 10.0).round() / 100.0),
                rtt_max_ms: (passed > 0).then(|| f64::from(stats.rtt_max_us) / 1000.0),
                gaps,
            }
        })
        .collect();
    paths.sort_by(|a, b| {
        (a.kind, &a.from_node, &a.to_node, &a.target).cmp(&(
            b.kind,
            &b.from_node,
            &b.to_node,
            &b.target,
        ))
    });
    let key_of = |p: &PathReport| PathKey {
        kind: p.kind,
        from_node: p.from_node.clone(),
        to_node: p.to_node.clone(),
        target: p.target.clone(),
    };
    let mut per_node: BTreeMap<&str, NodeSummary> = c
        .nodes
        .iter()
        .map(|n| {
            (
                n.as_str(),
                NodeSummary {
                    node: n.clone(),
                    longest_gap_s: 0.0,
                    paths_with_gaps: 0,
                    lost: 0,
                    switching: false,
                },
            )
        })
        .collect();
    let explicit: Vec<String> = c.switching.iter().cloned().collect();
    let switch_windows = windows(
        &c.events,
        c.start_us,
        c.end_us,
        c.window_margin_us,
        &explicit,
    );
    // A connection a switch broke is given up only after its stall time: probes sent on it
    // that long after the switch ended still count to the switch.
    let stall_us = crate::kind::stream_stall(crate::kind::STREAM_ECHO_TIMEOUT).as_micros() as i64;
    let switched_then = |key: &PathKey, t: i64| {
        let tail = if key.kind.is_stream() { stall_us } else { 0 };
        switch_windows
            .iter()
            .any(|w| w.start_us <= t && t <= w.end_us + tail && key.touches(&w.node))
    };
    let mut lost_elsewhere = 0;
    let mut gaps_elsewhere = vec![];
    for (key, stats, _) in &c.paths {
        let elsewhere = stats
            .lost_at
            .iter()
            .filter(|t| !switched_then(key, **t))
            .count() as u64;
        if elsewhere > 0 {
            lost_elsewhere += elsewhere;
            gaps_elsewhere.push(format!("{} ({elsewhere} lost)", key.label()));
        }
    }
    gaps_elsewhere.sort();
    let switched = switched_nodes(c, &switch_windows);
    for p in &paths {
        for node in [Some(&p.from_node), p.to_node.as_ref()]
            .into_iter()
            .flatten()
            .collect::<BTreeSet<_>>()
        {
            if let Some(s) = per_node.get_mut(node.as_str()) {
                s.longest_gap_s = s.longest_gap_s.max(p.longest_gap_s);
                s.paths_with_gaps += usize::from(!p.gaps.is_empty());
                s.lost += p.lost;
            }
        }
    }
    let mut timeline: Vec<(i64, TimelineEvent)> = vec![];
    for p in &paths {
        let label = key_of(p).label();
        for (g, raw) in p.gaps.iter().zip(
            c.paths
                .iter()
                .find(|(k, _, _)| *k == key_of(p))
                .map(|(_, s, _)| s.all_gaps(c.end_us))
                .unwrap_or_default(),
        ) {
            timeline.push((
                raw.start_us,
                TimelineEvent {
                    t: g.start.clone(),
                    t_s: g.start_s,
                    event: "down".into(),
                    path: Some(label.clone()),
                    node: None,
                    detail: Some(g.error.clone()),
                },
            ));
            if !g.open {
                timeline.push((
                    raw.end_us,
                    TimelineEvent {
                        t: g.end.clone(),
                        t_s: g.end_s,
                        event: "up".into(),
                        path: Some(label.clone()),
                        node: None,
                        detail: Some(format!("{:.3} s, {} lost", g.duration_s, g.lost)),
                    },
                ));
            }
        }
    }
    for e in &c.events {
        timeline.push((
            e.t_us,
            TimelineEvent {
                t: rfc3339(e.t_us),
                t_s: rel(e.t_us),
                event: e.what.clone(),
                path: None,
                node: Some(e.node.clone()),
                detail: None,
            },
        ));
    }
    timeline.sort_by_key(|(t, _)| *t);
    for s in per_node.values_mut() {
        s.switching = switch_windows.iter().any(|w| w.node == s.node);
    }
    let summary = ContinuousSummary {
        paths: paths.len(),
        paths_with_gaps: paths.iter().filter(|p| !p.gaps.is_empty()).count(),
        probes: paths.iter().map(|p| p.probes).sum(),
        lost: paths.iter().map(|p| p.lost).sum(),
        resets: paths.iter().map(|p| p.resets).sum(),
        longest_gap_s: paths.iter().map(|p| p.longest_gap_s).fold(0.0, f64::max),
        per_node: per_node.into_values().collect(),
        lost_elsewhere,
        gaps_elsewhere,
    };
    ContinuousReport {
        schema_version: crate::report::SCHEMA_VERSION,
        cluster: c.cluster.clone(),
        namespace: c.namespace.clone(),
        interval_ms: c.interval_ms,
        timeout_ms: c.timeout_ms,
        start: rfc3339(c.start_us),
        end: rfc3339(c.end_us),
        duration_s: secs(c.end_us - c.start_us),
        nodes: c.nodes.clone(),
        switching: {
            let mut nodes: Vec<String> = switch_windows.iter().map(|w| w.node.clone()).collect();
            nodes.sort();
            nodes.dedup();
            nodes
        },
        windows: switch_windows
            .iter()
            .map(|w| WindowReport {
                node: w.node.clone(),
                start: rfc3339(w.start_us),
                end: rfc3339(w.end_us),
                start_s: rel(w.start_us),
                end_s: rel(w.end_us),
                by: w.by.clone(),
            })
            .collect(),
        switched,
        not_probed: c
            .not_probed
            .iter()
            .map(|(path, reason)| NotProbed {
                path: path.clone(),
                reason: reason.clone(),
            })
            .collect(),
        paths,
        summary,
        timeline: timeline.into_iter().map(|(_, e)| e).collect(),
    }
}

/// Per switched node and path kind: the gaps of paths from or to the node that overlap a
/// window of the node (clipped to nothing: a gap is reported whole, as measured).
fn switched_nodes(c: &Collected, switch_windows: &[SwitchWindow]) -> Vec<SwitchedNode> {
    let mut nodes: Vec<&str> = switch_windows.iter().map(|w| w.node.as_str()).collect();
    nodes.sort();
    nodes.dedup();
    nodes
        .into_iter()
        .map(|node| {
            let mine: Vec<&SwitchWindow> =
                switch_windows.iter().filter(|w| w.node == node).collect();
            let kinds = PathGroup::ALL
                .iter()
                .filter_map(|group| {
                    let paths: Vec<_> = c
                        .paths
                        .iter()
                        .filter(|(k, _, _)| PathGroup::of(k.kind) == *group && k.touches(node))
                        .collect();
                    if paths.is_empty() {
                        return None;
                    }
                    let mut out = KindGaps {
                        kind: *group,
                        paths: paths.len(),
                        paths_with_gaps: 0,
                        longest_gap_s: 0.0,
                        lost: 0,
                    };
                    for (_, stats, _) in paths {
                        let gaps: Vec<_> = stats
                            .all_gaps(c.end_us)
                            .into_iter()
                            .filter(|g| mine.iter().any(|w| w.overlaps(g.start_us, g.end_us)))
                            .collect();
                        out.paths_with_gaps += usize::from(!gaps.is_empty());
                        for g in gaps {
                            out.longest_gap_s = out.longest_gap_s.max(secs(g.end_us - g.start_us));
                            out.lost += g.lost;
                        }
                    }
                    Some(out)
                })
                .collect();
            SwitchedNode {
                node: node.to_string(),
                switching_s: secs(mine.iter().map(|w| w.end_us - w.start_us).sum()),
                kinds,
            }
        })
        .collect()
}

impl ContinuousReport {
    /// Exit code: 0 no probe lost, 1 some were.
    pub fn failed(&self) -> bool {
        self.summary.lost > 0 || self.summary.resets > 0 || !self.not_probed.is_empty()
    }

    /// The terminal summary.
    pub fn render(&self) -> String {
        let s = &self.summary;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Probed {} paths every {} ms for {:.1} s ({} to {}): {} probes, {} lost, {} TCP resets.",
            s.paths,
            self.interval_ms,
            self.duration_s,
            self.start,
            self.end,
            s.probes,
            s.lost,
            s.resets
        );
        if !self.not_probed.is_empty() {
            let _ = writeln!(out, "\nNot probed ({}):", self.not_probed.len());
            for n in &self.not_probed {
                let _ = writeln!(out, "  {}: {}", n.path.label_short(), n.reason);
            }
        }
        let _ = writeln!(out, "\nPer node (longest gap on any path from or to it):");
        let width = s.per_node.iter().map(|n| n.node.len()).max().unwrap_or(4);
        for n in &s.per_node {
            let _ = writeln!(
                out,
                "  {:<width$}  longest gap {:>7.3} s  {:>3} paths with gaps  {:>6} lost{}",
                n.node,
                n.longest_gap_s,
                n.paths_with_gaps,
                n.lost,
                if n.switching {
                    "  (being switched)"
                } else {
                    ""
                }
            );
        }
        let with_gaps: Vec<&PathReport> = self
            .paths
            .iter()
            .filter(|p| !p.gaps.is_empty() || p.resets > 0)
            .collect();
        if with_gaps.is_empty() {
            let _ = writeln!(out, "\nNo path lost a probe.");
        } else {
            let _ = writeln!(out, "\nPaths with gaps (longest first):");
            let mut sorted = with_gaps.clone();
            sorted.sort_by(|a, b| b.longest_gap_s.total_cmp(&a.longest_gap_s));
            for p in sorted {
                let key = PathKey {
                    kind: p.kind,
                    from_node: p.from_node.clone(),
                    to_node: p.to_node.clone(),
                    target: p.target.clone(),
                };
                let _ = writeln!(
                    out,
                    "  {:<50} {} gap(s), longest {:.3} s, {} lost, {} resets; first: {}",
                    key.label_short(),
                    p.gaps.len(),
                    p.longest_gap_s,
                    p.lost,
                    p.resets,
                    p.gaps.first().map_or("-", |g| g.error.as_str())
                );
            }
        }
        if !self.switched.is_empty() {
            let _ = writeln!(
                out,
                "\nSwitched nodes: longest gap (s) per path kind while each was being switched:"
            );
            let width = self
                .switched
                .iter()
                .map(|n| n.node.len())
                .max()
                .unwrap_or(4)
                .max(4);
            let _ = write!(out, "  {:<width$}  {:>9}", "node", "switching");
            for group in PathGroup::ALL {
                let _ = write!(out, "  {:>10}", group.as_str());
            }
            let _ = writeln!(out);
            for n in &self.switched {
                let _ = write!(out, "  {:<width$}  {:>8.1}s", n.node, n.switching_s);
                for group in PathGroup::ALL {
                    match n.kinds.iter().find(|k| k.kind == group) {
                        Some(k) => {
                            let _ = write!(out, "  {:>10.3}", k.longest_gap_s);
                        }
                        None => {
                            let _ = write!(out, "  {:>10}", "-");
                        }
                    }
                }
                let _ = writeln!(out);
            }
        }
        if !self.windows.is_empty() {
            let _ = writeln!(
                out,
                "\nLost probes between nodes not being switched at that moment: {}",
                s.lost_elsewhere
            );
            for p in &s.gaps_elsewhere {
                let _ = writeln!(out, "  {p}");
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::gaps::Tracker;

    fn key(kind: Kind, from: &str, to: Option<&str>) -> PathKey {
        PathKey {
            kind,
            from_node: from.into(),
            to_node: to.map(Into::into),
            target: "x".into(),
        }
    }

    pub fn sample() -> Collected {
        let start = 1_700_000_000_000_000i64;
        let mut paths = vec![];
        for (from, to) in [("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("a", "c")] {
            let mut tr = Tracker::default();
            for i in 0..50i64 {
                let touches_a = from == "a" || to == "a";
                let down = touches_a && (10..25).contains(&i);
                tr.add(
                    start + i * 200_000,
                    (!down).then_some(300),
                    down.then(|| "timed out after 1s".into()),
                );
            }
            tr.flush();
            paths.push((key(Kind::PodToPodUdp, from, Some(to)), tr.stats, 0));
        }
        Collected {
            cluster: "https://10.0.0.1:6443".into(),
            namespace: "cniswap-verify".into(),
            interval_ms: 200,
            timeout_ms: 1000,
            start_us: start,
            end_us: start + 10_000_000,
            nodes: vec!["a".into(), "b".into(), "c".into()],
            switching: BTreeSet::new(),
            window_margin_us: 0,
            paths,
            not_probed: vec![],
            // apply marks "a" from 1.5 s to 6 s; the outage on its paths is 2 s to 5 s.
            events: vec![
                NodeEvent {
                    t_us: start + 1_500_000,
                    node: "a".into(),
                    what: "apply-in-progress".into(),
                },
                NodeEvent {
                    t_us: start + 6_000_000,
                    node: "a".into(),
                    what: "apply-finished".into(),
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::sample;
    use super::*;

    #[test]
    fn summary_per_path_and_node_and_elsewhere() {
        let report = build(&sample());
        let ab = report
            .paths
            .iter()
            .find(|p| p.from_node == "a" && p.to_node.as_deref() == Some("b"))
            .unwrap();
        assert_eq!(ab.gaps.len(), 1);
        assert_eq!(ab.gaps[0].start_s, 2.0);
        assert_eq!(ab.gaps[0].end_s, 5.0);
        assert_eq!(ab.gaps[0].duration_s, 3.0);
        assert_eq!(ab.gaps[0].lost, 15);
        assert_eq!(ab.gaps[0].start, "2023-11-14T22:13:22.000Z");
        let bc = report
            .paths
            .iter()
            .find(|p| p.from_node == "b" && p.to_node.as_deref() == Some("c"))
            .unwrap();
        assert!(bc.gaps.is_empty());
        assert_eq!(report.summary.lost_elsewhere, 0);
        assert_eq!(report.summary.paths_with_gaps, 3);
        let a = &report.summary.per_node[0];
        assert_eq!(
            (
                a.node.as_str(),
                a.longest_gap_s,
                a.paths_with_gaps,
                a.switching
            ),
            ("a", 3.0, 3, true)
        );
        let b = &report.summary.per_node[1];
        assert_eq!(b.paths_with_gaps, 2);
        // The timeline is in time order: the cordon, then downs, then ups.
        let events: Vec<&str> = report.timeline.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events[0], "apply-in-progress");
        assert_eq!(events.iter().filter(|e| **e == "down").count(), 3);
        assert_eq!(events.iter().filter(|e| **e == "up").count(), 3);
        let json = serde_json::to_value(&report).unwrap();
        let path = &json["paths"][0];
        for field in ["from_node", "to_node", "kind"] {
            assert!(path.get(field).is_some(), "{field}");
        }
        for field in ["start", "end", "duration_s"] {
            assert!(
                json["paths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["gaps"].get(0).is_some_and(|g| g.get(field).is_some())),
                "{field}"
            );
        }
        assert!(
            report
                .render()
                .contains("Lost probes between nodes not being switched at that moment: 0"),
            "{}",
            report.render()
        );
        assert_eq!(report.switching, vec!["a".to_string()]);
        let a = &report.switched[0];
        assert_eq!((a.node.as_str(), a.switching_s), ("a", 4.5));
        assert_eq!(
            a.kinds,
            vec![KindGaps {
                kind: PathGroup::PodToPod,
                paths: 3,
                paths_with_gaps: 3,
                longest_gap_s: 3.0,
                lost: 45
            }]
        );
    }

    /// The old rule counted a node as switching for the whole run once it was cordoned at any
    /// time: an outage on its paths after its switch ended was excused. Now it is "elsewhere".
    #[test]
    fn a_gap_after_the_nodes_switch_ended_is_lost_elsewhere() {
        let mut c = sample();
        // "a" was marked from 0.1 s to 1 s only: the outage at 2 s to 5 s is not its switch.
        c.events[0].t_us = c.start_us + 100_000;
        c.events[1].t_us = c.start_us + 1_000_000;
        let report = build(&c);
        assert_eq!(report.summary.lost_elsewhere, 45);
        assert_eq!(report.summary.gaps_elsewhere.len(), 3);
        assert!(
            report.summary.gaps_elsewhere[0].ends_with("(15 lost)"),
            "{:?}",
            report.summary.gaps_elsewhere
        );
        assert!(report.switched[0].kinds[0].lost == 0);
        // A margin as wide as the poll and the probe timeout covers the outage's start
        // only, and a probe lost outside the widened window still counts.
        c.window_margin_us = 1_500_000;
        let report = build(&c);
        assert_eq!(report.summary.lost_elsewhere, 45 - 3 * 3);
    }

    /// A long-lived connection a switch broke is found dead only at its stall time (5 s): its
    /// losses until then belong to the switch, while other paths' do not.
    #[test]
    fn a_stream_broken_by_a_switch_counts_to_it_until_its_stall_time() {
        let mut c = sample();
        c.events[0].t_us = c.start_us + 100_000;
        c.events[1].t_us = c.start_us + 1_000_000;
        // a -> b becomes a stream: its losses at 2 s to 5 s are within 1 s + 5 s.
        c.paths[0].0.kind = Kind::TcpStreamPod;
        let report = build(&c);
        assert_eq!(report.summary.lost_elsewhere, 30);
        assert!(
            report
                .summary
                .gaps_elsewhere
                .iter()
                .all(|g| !g.starts_with("tcp-stream")),
            "{:?}",
            report.summary.gaps_elsewhere
        );
    }

    #[test]
    fn a_node_named_with_switching_covers_the_whole_run() {
        let mut c = sample();
        c.events.clear();
        c.switching = ["a".to_string()].into();
        let report = build(&c);
        assert_eq!(report.summary.lost_elsewhere, 0);
        assert_eq!(report.windows[0].by, "--switching");
    }
}
