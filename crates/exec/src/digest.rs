//! Which plan a journal belongs to: SHA-256 of plan.yaml and of every generated file it lists.
//! A journal is resumed only with the very same files; a changed plan starts a new journal.

use cniswap_plan::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

pub const PLAN_FILE: &str = "plan.yaml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDigest {
    /// SHA-256 of plan.yaml.
    pub plan: String,
    /// SHA-256 of each artifact (path relative to the plan directory); `missing` when absent.
    pub files: BTreeMap<String, String>,
}

impl PlanDigest {
    /// A short identity for labels and lease holders.
    pub fn short(&self) -> &str {
        &self.plan[..12.min(self.plan.len())]
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn compute(dir: &Path, plan_bytes: &[u8], plan: &Plan) -> PlanDigest {
    let files = plan
        .artifacts
        .iter()
        .map(|a| {
            let sum = std::fs::read(dir.join(&a.path))
                .map(|b| sha256(&b))
                .unwrap_or_else(|_| "missing".into());
            (a.path.clone(), sum)
        })
        .collect();
    PlanDigest {
        plan: sha256(plan_bytes),
        files,
    }
}

/// The files that differ between the journal's digest and now, with what changed.
pub fn changes(then: &PlanDigest, now: &PlanDigest) -> Vec<String> {
    let mut out = Vec::new();
    if then.plan != now.plan {
        out.push(format!("{PLAN_FILE} changed"));
    }
    for (path, sum) in &then.files {
        match now.files.get(path) {
            Some(s) if s == sum => {}
            Some(s) if s == "missing" => out.push(format!("{path} is gone")),
            Some(_) => out.push(format!("{path} changed")),
            None => out.push(format!("{path} is no longer part of the plan")),
        }
    }
    for path in now.files.keys() {
        if !then.files.contains_key(path) {
            out.push(format!("{path} is new"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_each_file() {
        let a = PlanDigest {
            plan: "1".into(),
            files: BTreeMap::from([("x".into(), "a".into()), ("y".into(), "b".into())]),
        };
        let b = PlanDigest {
            plan: "2".into(),
            files: BTreeMap::from([("x".into(), "c".into()), ("z".into(), "d".into())]),
        };
        assert_eq!(
            changes(&a, &b),
            vec![
                "plan.yaml changed",
                "x changed",
                "y is no longer part of the plan",
                "z is new"
            ]
        );
        assert!(changes(&a, &a).is_empty());
    }
}
