//! Preflight findings the plan itself resolves. A finding about the target's current settings
//! (a values file, an Installation, cilium-config) is resolved when the settings the plan
//! installs do not trigger the same rule; a finding a step fixes is resolved by that step.

use crate::artifacts::Artifacts;
use crate::model::Handled;
use cniswap_model::{CniKind, Finding, Severity};

/// The generated settings the target runs with while the snapshot's state still holds.
fn installed_settings(target: CniKind, rolling: bool) -> Option<&'static str> {
    match target {
        CniKind::Cilium if rolling => Some("artifacts/cilium/values-migration.yaml"),
        CniKind::Cilium => Some("artifacts/cilium/values-final.yaml"),
        CniKind::Calico => Some("artifacts/calico/values.yaml"),
        _ => None,
    }
}

fn rule_prefix(target: CniKind) -> Option<&'static str> {
    match target {
        CniKind::Cilium => Some("CIL"),
        CniKind::Calico => Some("CAL"),
        _ => None,
    }
}

/// `steps`: (rule, how a step of the plan resolves it).
pub fn resolved(
    snapshot: &cniswap_snapshot::Snapshot,
    preflight: &[Finding],
    artifacts: &Artifacts,
    steps: &[(&'static str, String)],
    lint_target: cniswap_lint::Target,
) -> Vec<Handled> {
    let relevant: Vec<&Finding> = preflight
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect();
    let mut handled: Vec<Handled> = Vec::new();
    for f in &relevant {
        if let Some((_, by)) = steps.iter().find(|(rule, _)| *rule == f.rule) {
            handled.push(Handled {
                rule: f.rule.clone(),
                at: Handled::place(f),
                by: by.clone(),
            });
        }
    }
    let Some(target) = lint_target.cni else {
        return handled;
    };
    let rolling = lint_target.strategy == Some(cniswap_lint::Strategy::Rolling);
    let (Some(prefix), Some(path)) = (rule_prefix(target), installed_settings(target, rolling))
    else {
        return handled;
    };
    let Some((_, text, _)) = artifacts.files.iter().find(|(p, _, _)| p == path) else {
        return handled;
    };
    let candidates: Vec<&&Finding> = relevant
        .iter()
        .filter(|f| f.rule.starts_with(prefix) && !handled.iter().any(|h| h.covers(f)))
        .collect();
    if candidates.is_empty() {
        return handled;
    }
    // Lint the generated settings next to the cluster they will run in.
    let Some(still_firing) = rules_on_generated(snapshot, path, text, lint_target) else {
        return handled;
    };
    for f in candidates {
        if !still_firing.contains(&f.rule) {
            let file = f.location.as_ref().map(|l| l.file.as_str());
            let by = match file {
                Some(file) => format!(
                    "{path} sets this; if GitOps applies {file}, replace its values with the generated ones first"
                ),
                None => {
                    format!("{path} sets this and the install step replaces the running settings")
                }
            };
            handled.push(Handled {
                rule: f.rule.clone(),
                at: Handled::place(f),
                by,
            });
        }
    }
    handled
}

/// The rules that fire on the generated file, or None when it could not be checked (then
/// nothing counts as resolved).
fn rules_on_generated(
    snapshot: &cniswap_snapshot::Snapshot,
    path: &str,
    text: &str,
    lint_target: cniswap_lint::Target,
) -> Option<Vec<String>> {
    let dir = tempfile::tempdir().ok()?;
    let file = dir.path().join(path);
    std::fs::create_dir_all(file.parent()?).ok()?;
    std::fs::write(&file, text).ok()?;
    let mut with_generated = snapshot.clone();
    cniswap_snapshot::load_paths(&mut with_generated, std::slice::from_ref(&file)).ok()?;
    let facts = cniswap_facts::detect(&with_generated);
    let findings = cniswap_lint::lint(
        &with_generated,
        &facts,
        lint_target,
        &cniswap_lint::SuppressionConfig::default(),
    )
    .findings;
    Some(
        findings
            .into_iter()
            .filter(|f| f.location.as_ref().is_some_and(|l| l.file.ends_with(path)))
            .map(|f| f.rule)
            .collect(),
    )
}
