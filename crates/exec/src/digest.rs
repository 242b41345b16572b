//! Which plan a journal belongs to: SHA-256 of plan.yaml and of every generated file it lists.
//! A journal is resumed only with the very same files; a changed plan starts a new journal.

use crate::plandir::{FileError, PlanDir};
use cniswap_config::limits;
use cniswap_plan::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

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

/// The plan's digest: plan.yaml's bytes and each artifact, read from the plan directory by
/// its rules (never through a link, a regular file within the file budget). An artifact that
/// cannot be read that way is an error naming it.
pub fn compute(dir: &PlanDir, plan_bytes: &[u8], plan: &Plan) -> Result<PlanDigest, FileError> {
    let mut files = BTreeMap::new();
    for a in &plan.artifacts {
        let sum = match dir.read(&a.path, limits::MAX_FILE_BYTES)? {
            Some(bytes) => sha256(&bytes),
            None => "missing".into(),
        };
        files.insert(a.path.clone(), sum);
    }
    Ok(PlanDigest {
        plan: sha256(plan_bytes),
        files,
    })
}

/// Reads an artifact right before it is used and checks it against the digest the run began
/// with, so what runs is what was planned (and approved). Files the plan does not list (made
/// by the run itself) are read by the same rules.
pub fn verified(dir: &PlanDir, digest: &PlanDigest, path: &str) -> Result<Vec<u8>, FileError> {
    let bytes = dir.read(path, limits::MAX_FILE_BYTES)?.ok_or_else(|| {
        FileError::new(
            dir.join(path),
            "does not exist",
            "the step that makes it has not run, or it was removed; make the plan again if it was",
        )
    })?;
    if let Some(expected) = digest.files.get(path).filter(|s| *s != "missing") {
        let now = sha256(&bytes);
        if &now != expected {
            return Err(FileError::new(
                dir.join(path),
                format!(
                    "changed since the run began (sha256 {} where the plan has {})",
                    &now[..12],
                    &expected[..12.min(expected.len())]
                ),
                "put the plan's file back as it was (or make a new plan in a new directory); cniswap runs only the files it was given",
            ));
        }
    }
    Ok(bytes)
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
