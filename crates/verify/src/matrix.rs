//! The terminal report: a node-pair matrix, a per-node table, then every failing check named
//! with its error. Colour is ANSI; the caller strips it for pipes (anstream).

use crate::kind::Kind;
use crate::report::Report;
use anstyle::{AnsiColor, Style};
use std::fmt::Write;

fn green() -> Style {
    Style::new().fg_color(Some(AnsiColor::Green.into()))
}
fn red() -> Style {
    Style::new().bold().fg_color(Some(AnsiColor::Red.into()))
}
fn dim() -> Style {
    Style::new().dimmed()
}
fn bold() -> Style {
    Style::new().bold()
}

/// A cell: its plain text (for width) and its style.
struct Cell {
    text: String,
    style: Style,
}

fn pad(out: &mut String, cell: &Cell, width: usize) {
    let style = cell.style;
    let _ = write!(out, "{style}{}{style:#}", cell.text);
    for _ in cell.text.chars().count()..width {
        out.push(' ');
    }
}

fn table(out: &mut String, header: &[String], rows: &[(String, Vec<Cell>)]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for (name, cells) in rows {
        widths[0] = widths[0].max(name.chars().count());
        for (i, cell) in cells.iter().enumerate() {
            widths[i + 1] = widths[i + 1].max(cell.text.chars().count());
        }
    }
    for (i, h) in header.iter().enumerate() {
        pad(
            out,
            &Cell {
                text: h.clone(),
                style: bold(),
            },
            widths[i] + 2,
        );
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    for (name, cells) in rows {
        pad(
            out,
            &Cell {
                text: name.clone(),
                style: bold(),
            },
            widths[0] + 2,
        );
        for (i, cell) in cells.iter().enumerate() {
            pad(out, cell, widths[i + 1] + 2);
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
}

/// Summarises the outcomes of `kinds` in one cell: `ok`, `FAIL mtu udp`, or `-` when none ran.
fn summarise(report: &Report, kinds: &[Kind], from: &str, to: Option<&str>) -> Cell {
    let mut any = false;
    let mut failed = vec![];
    for kind in kinds {
        let outcomes = report.cell(*kind, from, to);
        any |= !outcomes.is_empty();
        if outcomes.iter().any(|o| !o.ok) {
            failed.push(kind.short());
        }
    }
    if !any {
        Cell {
            text: "-".into(),
            style: dim(),
        }
    } else if failed.is_empty() {
        Cell {
            text: "ok".into(),
            style: green(),
        }
    } else {
        Cell {
            text: format!("FAIL {}", failed.join(" ")),
            style: red(),
        }
    }
}

/// The whole text report. `color: false` leaves out every escape sequence.
pub fn render(report: &Report, color: bool) -> String {
    let mut out = String::new();
    let s = report.summary;
    let (status, style) = if s.failed == 0 {
        ("all checks passed", green().bold())
    } else {
        ("checks failed", red())
    };
    let _ = writeln!(
        out,
        "{style}{status}{style:#}: {} nodes, {} checks, {} passed, {} failed ({:.1} s; {})\n",
        report.nodes.len(),
        s.total,
        s.passed,
        s.failed,
        report.duration_s,
        report.cluster
    );
    let kinds = report.kinds();
    let pair: Vec<Kind> = kinds.iter().copied().filter(|k| k.is_pair()).collect();
    let node: Vec<Kind> = kinds.iter().copied().filter(|k| !k.is_pair()).collect();
    if !pair.is_empty() {
        let _ = writeln!(
            out,
            "Node pairs (rows: from, columns: to; {}):",
            pair.iter().map(|k| k.short()).collect::<Vec<_>>().join(" ")
        );
        let mut header = vec![String::new()];
        header.extend(report.nodes.iter().cloned());
        let rows: Vec<(String, Vec<Cell>)> = report
            .nodes
            .iter()
            .map(|from| {
                let cells = report
                    .nodes
                    .iter()
                    .map(|to| summarise(report, &pair, from, Some(to)))
                    .collect();
                (from.clone(), cells)
            })
            .collect();
        table(&mut out, &header, &rows);
        out.push('\n');
    }
    if !node.is_empty() {
        let _ = writeln!(out, "Per node:");
        let mut header = vec![String::new()];
        header.extend(node.iter().map(|k| k.short().to_string()));
        let rows: Vec<(String, Vec<Cell>)> = report
            .nodes
            .iter()
            .map(|from| {
                let cells = node
                    .iter()
                    .map(|k| {
                        let outcomes: Vec<_> = report
                            .checks
                            .iter()
                            .filter(|c| c.path.kind == *k && c.path.from_node == *from)
                            .collect();
                        if outcomes.is_empty() {
                            Cell {
                                text: "-".into(),
                                style: dim(),
                            }
                        } else if outcomes.iter().all(|o| o.ok) {
                            Cell {
                                text: "ok".into(),
                                style: green(),
                            }
                        } else {
                            Cell {
                                text: "FAIL".into(),
                                style: red(),
                            }
                        }
                    })
                    .collect();
                (from.clone(), cells)
            })
            .collect();
        table(&mut out, &header, &rows);
    }
    let failures: Vec<_> = report.failures().collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n{}Failed checks:{:#}", bold(), bold());
        for f in failures {
            let style = red();
            let _ = writeln!(
                out,
                "  {style}{}{style:#} ({}): {}",
                f.path.label_short(),
                f.path.target,
                f.error.as_deref().unwrap_or("failed")
            );
        }
    }
    if color { out } else { strip(&out) }
}

/// Removes ANSI escape sequences.
pub fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

impl crate::plan::PathKey {
    /// `pod-to-pod node-a -> node-b` or `dns-kubernetes on node-a`.
    pub fn label_short(&self) -> String {
        match &self.to_node {
            Some(to) => format!("{} {} -> {}", self.kind, self.from_node, to),
            None => format!("{} on {}", self.kind, self.from_node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PathKey;
    use crate::report::Outcome;

    fn outcome(kind: Kind, from: &str, to: Option<&str>, error: Option<&str>) -> Outcome {
        Outcome {
            path: PathKey {
                kind,
                from_node: from.into(),
                to_node: to.map(Into::into),
                target: "t".into(),
            },
            ok: error.is_none(),
            error: error.map(Into::into),
            rtt_ms: None,
        }
    }

    #[test]
    fn failing_cells_are_named_with_the_error() {
        let nodes = ["a", "b"];
        let mut checks = vec![];
        for from in nodes {
            for to in nodes {
                checks.push(outcome(Kind::PodToPod, from, Some(to), None));
                let err = (from == "a" && to == "b").then_some("timed out after 1s");
                checks.push(outcome(Kind::PathMtu, from, Some(to), err));
            }
            checks.push(outcome(Kind::DnsKubernetes, from, None, None));
        }
        let report = Report::new(
            "https://10.0.0.1:6443".into(),
            "ns".into(),
            "cluster.local".into(),
            nodes.iter().map(|n| n.to_string()).collect(),
            checks,
            1.0,
        );
        let text = render(&report, false);
        insta::assert_snapshot!(text, @r"
        checks failed: 2 nodes, 10 checks, 9 passed, 1 failed (1.0 s; https://10.0.0.1:6443)

        Node pairs (rows: from, columns: to; tcp mtu):
           a   b
        a  ok  FAIL mtu
        b  ok  ok

        Per node:
           dns-k8s
        a  ok
        b  ok

        Failed checks:
          path-mtu a -> b (t): timed out after 1s
        ");
        assert!(render(&report, true).contains("\u{1b}["));
    }
}
