//! Preflight findings the plan itself resolves:
//! - a finding a step handles (a relaxed budget, a pinned setting, a deleted broken patch);
//! - a finding on the target's current settings (a values file, an Installation,
//!   cilium-config) when the settings the plan installs do not trigger the same rule;
//! - a finding on the Talos patches of the snapshot (TAL001, TAL011) when the plan's own
//!   patches, applied instead of them, do not trigger it;
//! - a finding on the values file of a CNI the plan removes, which the plan never applies.

use crate::artifacts::Artifacts;
use crate::context::Cluster;
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

fn rule_prefix(cni: CniKind) -> Option<&'static str> {
    match cni {
        CniKind::Cilium => Some("CIL"),
        CniKind::Calico => Some("CAL"),
        _ => None,
    }
}

/// `steps`: (rule, place or None for every finding of the rule, how a step resolves it).
pub fn resolved(
    snapshot: &cniswap_snapshot::Snapshot,
    cluster: &Cluster,
    preflight: &[Finding],
    artifacts: &Artifacts,
    steps: &[(String, Option<String>, String)],
    lint_target: cniswap_lint::Target,
) -> Vec<Handled> {
    let relevant: Vec<&Finding> = preflight
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect();
    let mut handled: Vec<Handled> = Vec::new();
    for f in &relevant {
        let place = Handled::place(f);
        if let Some((_, _, by)) = steps
            .iter()
            .find(|(rule, at, _)| *rule == f.rule && at.as_ref().is_none_or(|a| *a == place))
        {
            handled.push(Handled {
                rule: f.rule.clone(),
                at: place,
                by: by.clone(),
            });
        }
    }
    removed_sources(cluster, &relevant, &mut handled);
    talos_patches(snapshot, &relevant, artifacts, lint_target, &mut handled);
    let Some(target) = lint_target.cni else {
        return handled;
    };
    let rolling = lint_target.strategy == Some(cniswap_lint::Strategy::Rolling);
    let (Some(prefix), Some(path)) = (rule_prefix(target), installed_settings(target, rolling))
    else {
        return handled;
    };
    let Some(text) = artifacts.text(path) else {
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
    let generated = [(path.to_string(), text.to_string())];
    let Some(still_firing) = rules_with(snapshot, &generated, false, lint_target) else {
        return handled;
    };
    for f in candidates {
        if !still_firing
            .iter()
            .any(|(rule, file)| *rule == f.rule && file.ends_with(path))
        {
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

/// A CNI the plan removes: findings on its values or manifest files (not on the live
/// objects, whose settings run until it is gone) describe settings the plan never applies.
fn removed_sources(cluster: &Cluster, findings: &[&Finding], handled: &mut Vec<Handled>) {
    for source in &cluster.sources {
        let Some(prefix) = rule_prefix(*source) else {
            continue;
        };
        for f in findings {
            let Some(file) = f.location.as_ref().map(|l| l.file.as_str()) else {
                continue;
            };
            if !f.rule.starts_with(prefix)
                || file.starts_with("cluster/")
                || handled.iter().any(|h| h.covers(f))
            {
                continue;
            }
            handled.push(Handled {
                rule: f.rule.clone(),
                at: Handled::place(f),
                by: format!(
                    "the plan removes {source} and never applies {file}; if GitOps applies it, take {source} out of it before the switch"
                ),
            });
        }
    }
}

/// TAL001/TAL011 on a snapshot's Talos patch files: resolved when the snapshot's machine
/// configs with the plan's patches instead of the snapshot's patches do not trigger them.
fn talos_patches(
    snapshot: &cniswap_snapshot::Snapshot,
    findings: &[&Finding],
    artifacts: &Artifacts,
    lint_target: cniswap_lint::Target,
    handled: &mut Vec<Handled>,
) {
    let candidates: Vec<&&Finding> = findings
        .iter()
        .filter(|f| matches!(f.rule.as_str(), "TAL001" | "TAL011"))
        .filter(|f| !handled.iter().any(|h| h.covers(f)))
        .collect();
    if candidates.is_empty() {
        return;
    }
    let generated: Vec<(String, String)> = artifacts
        .files
        .iter()
        .filter(|(p, _, _)| p.starts_with("artifacts/talos/") && !p.contains("/rollback-"))
        .map(|(p, t, _)| (p.clone(), t.clone()))
        .collect();
    if generated.is_empty() {
        return;
    }
    let replaced: Vec<String> = snapshot
        .talos
        .iter()
        .filter(|t| t.summary.kind != "full")
        .map(|t| t.summary.file.clone())
        .collect();
    let Some(still_firing) = rules_with(snapshot, &generated, true, lint_target) else {
        return;
    };
    for f in candidates {
        if still_firing.iter().any(|(rule, _)| *rule == f.rule) {
            continue;
        }
        let files: Vec<&str> = generated.iter().map(|(p, _)| p.as_str()).collect();
        handled.push(Handled {
            rule: f.rule.clone(),
            at: Handled::place(f),
            by: format!(
                "the plan applies {} to the running configs instead of {}: apply the plan's patches, not those",
                files.join(", "),
                if replaced.is_empty() {
                    "the snapshot's patches".to_string()
                } else {
                    replaced.join(", ")
                }
            ),
        });
    }
}

/// (rule, file) of the findings on the snapshot with `files` added (and, with
/// `without_patches`, the snapshot's own Talos patches taken out), or None when that could
/// not be checked (then nothing counts as resolved).
fn rules_with(
    snapshot: &cniswap_snapshot::Snapshot,
    files: &[(String, String)],
    without_patches: bool,
    lint_target: cniswap_lint::Target,
) -> Option<Vec<(String, String)>> {
    let dir = tempfile::tempdir().ok()?;
    let mut paths = Vec::new();
    for (path, text) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent()?).ok()?;
        std::fs::write(&file, text).ok()?;
        paths.push(file);
    }
    let mut with_generated = snapshot.clone();
    if without_patches {
        with_generated.talos.retain(|t| t.summary.kind == "full");
    }
    cniswap_snapshot::load_paths(&mut with_generated, &paths).ok()?;
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
            .map(|f| {
                let file = f.location.map(|l| l.file).unwrap_or_default();
                (f.rule, file)
            })
            .collect(),
    )
}
