//! The result of a one-shot verify: every check with its outcome (the `-o json` document).

use crate::kind::Kind;
use crate::plan::PathKey;
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// `https://host:port (context NAME)`.
    pub cluster: String,
    pub namespace: String,
    pub domain: String,
    pub nodes: Vec<String>,
    pub checks: Vec<Outcome>,
    pub summary: Summary,
    /// Wall time from start to report, seconds.
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub path: PathKey,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
}

impl Report {
    pub fn new(
        cluster: String,
        namespace: String,
        domain: String,
        nodes: Vec<String>,
        mut checks: Vec<Outcome>,
        duration_s: f64,
    ) -> Report {
        checks.sort_by(|a, b| a.path.cmp(&b.path));
        let failed = checks.iter().filter(|c| !c.ok).count();
        Report {
            schema_version: SCHEMA_VERSION,
            cluster,
            namespace,
            domain,
            nodes,
            summary: Summary {
                total: checks.len(),
                passed: checks.len() - failed,
                failed,
            },
            checks,
            duration_s,
        }
    }

    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// The kinds present, in their canonical order.
    pub fn kinds(&self) -> Vec<Kind> {
        let mut kinds: Vec<Kind> = self.checks.iter().map(|c| c.path.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Outcomes of `kind` from `from` to `to` (pair kinds) or on `from` (node kinds).
    pub fn cell(&self, kind: Kind, from: &str, to: Option<&str>) -> Vec<&Outcome> {
        self.checks
            .iter()
            .filter(|c| {
                c.path.kind == kind && c.path.from_node == from && c.path.to_node.as_deref() == to
            })
            .collect()
    }
}
