//! What a plan must be before apply runs it: every file it names inside its directory, and
//! every step and phase id once (the journal records steps by id, so a repeated id would let
//! one step's "done" count for another).

use crate::plandir::check_relative;
use cniswap_plan::{Action, Plan, Render};
use std::collections::BTreeMap;

/// The plan-directory files a step reads or writes, each with the name of its field.
/// (A node's backup path, `NodeClean.backup`, is on the node, not here.)
pub fn plan_files(action: &Action) -> Vec<(&'static str, &str)> {
    let mut out: Vec<(&'static str, &str)> = Vec::new();
    match action {
        Action::Backup { file, .. }
        | Action::EtcdSnapshot { file, .. }
        | Action::Download { file, .. }
        | Action::ApplyManifest { file }
        | Action::TalosPatch { file, .. } => out.push(("file", file)),
        Action::Snapshot { dir, .. } => out.push(("dir", dir)),
        Action::RenderManifest { file, render } => {
            out.push(("file", file));
            match render {
                Render::Helm { values, .. } => {
                    out.extend(values.iter().map(|v| ("render.values", v.as_str())))
                }
                Render::Kustomize { dir } => out.push(("render.dir", dir)),
            }
        }
        Action::RestoreBackup { path, .. } => out.push(("path", path)),
        Action::DeleteObject { backup, .. }
        | Action::DeleteCrds { backup, .. }
        | Action::HelmUninstall { backup, .. } => out.push(("backup", backup)),
        Action::DeleteManifest { file, backup } => {
            out.push(("file", file));
            out.push(("backup", backup));
        }
        Action::PatchObject { backup, .. } => {
            out.extend(backup.iter().map(|b| ("backup", b.as_str())))
        }
        Action::OmniConfigPatch { file, backup, .. } => {
            out.push(("file", file));
            out.extend(backup.iter().map(|b| ("backup", b.as_str())));
        }
        Action::Drain {
            bare_pods_backup, ..
        } => out.extend(
            bare_pods_backup
                .iter()
                .map(|b| ("bare_pods_backup", b.as_str())),
        ),
        Action::HelmUpgrade {
            values,
            revision_backup,
            ..
        } => {
            out.extend(values.iter().map(|v| ("values", v.as_str())));
            out.extend(
                revision_backup
                    .iter()
                    .map(|b| ("revision_backup", b.as_str())),
            );
        }
        Action::HelmRollback { revision_file, .. } => out.push(("revision_file", revision_file)),
        _ => {}
    }
    out
}

/// Every problem that refuses the plan, each naming where in plan.yaml it is.
pub fn problems(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for (i, artifact) in plan.artifacts.iter().enumerate() {
        if let Err(e) = check_relative(&format!("artifacts[{i}].path"), &artifact.path) {
            out.push(e);
        }
    }
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let mut steps: BTreeMap<&str, String> = BTreeMap::new();
    for (p, phase) in plan.phases.iter().enumerate() {
        if let Some(first) = phases.insert(phase.id.as_str(), p + 1) {
            out.push(format!(
                "phase id {} is used by phases {first} and {}",
                phase.id,
                p + 1
            ));
        }
        let all = phase
            .steps
            .iter()
            .map(|s| (s, "steps"))
            .chain(phase.rollback.iter().map(|s| (s, "rollback")));
        for (step, list) in all {
            let place = format!("phase {} {list}", phase.id);
            if let Some(first) = steps.insert(step.id.as_str(), place.clone()) {
                out.push(format!(
                    "step id {} is used twice ({first}, and {place}): the journal records steps by id",
                    step.id
                ));
            }
            for (field, path) in plan_files(&step.action) {
                if let Err(e) = check_relative(&format!("step {} {field}", step.id), path) {
                    out.push(e);
                }
            }
        }
    }
    out
}
