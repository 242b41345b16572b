//! Risks beyond the pod network, handled with steps instead of a refusal: each is stated in
//! the estimates, relaxed behind a gate with a backup first, and restored after the cluster
//! is verified on the target.
//! - A PodDisruptionBudget that allows no disruption blocks every drain (MIG003): relaxed to
//!   `maxUnavailable: 1` for the window, its pods may all be down at once while they move.
//!   A budget an operator owns is never patched: the drain waits for the operator.
//! - A webhook that fails closed and is served from the pod network (MIG005) rejects pod
//!   creation while its own pods move, the new CNI's included: `failurePolicy: Ignore` for
//!   the window.
//! - CNI-specific policies (MIG007) enforce nothing on the target: saved, and a gate asks for
//!   their translation before the switch.
//! - A single control plane: the API server is down while it restarts; an etcd snapshot
//!   is taken first.

use super::Builder;
use crate::model::{Action, ObjectRef, PatchType, Risk};
use crate::ops::{self, S, s};
use cniswap_model::Finding;

struct Relaxation {
    /// What is relaxed, in a few words.
    what: String,
    relax: S,
    restore: S,
}

fn pdbs(b: &mut Builder, findings: &[Finding], drains: bool) -> Vec<Relaxation> {
    let mut out = Vec::new();
    for pdb in b.cluster.facts.workloads.blocking_pdbs.clone() {
        let place = format!("{}/PodDisruptionBudget/{}", pdb.namespace, pdb.name);
        let fired = findings
            .iter()
            .any(|f| f.rule == "MIG003" && f.object.as_deref() == Some(&place));
        if !drains {
            if fired {
                b.resolves(
                    "MIG003",
                    Some(place.clone()),
                    "cutover recreates pods by deleting them (no eviction): the budget does not block the plan; its pods go down together when their node switches",
                );
                b.risks.push(Risk {
                    rule: Some("MIG003".into()),
                    effect: format!("PodDisruptionBudget {}/{} allows 0 disruptions: cutover deletes its pods without eviction, so they are down until recreated on the target", pdb.namespace, pdb.name),
                    handling: "stated; nothing to relax (cutover does not drain)".into(),
                });
            }
            continue;
        }
        if let Some(owner) = &pdb.owner {
            // An operator rewrites its budget, and releases it itself once what it protects
            // is safe elsewhere (Longhorn moves replicas, CloudNativePG switches primaries).
            if fired {
                b.resolves(
                    "MIG003",
                    Some(place.clone()),
                    format!("owned by {owner}: never patched; each drain retries evictions until the operator lets the pod go, and stops at a gate at its timeout"),
                );
            }
            b.risks.push(Risk {
                rule: Some("MIG003".into()),
                effect: format!("PodDisruptionBudget {}/{} allows 0 disruptions ({}) and belongs to {owner}: a drain waits until {owner} releases it", pdb.namespace, pdb.name, pdb.reason),
                handling: "not patched (its operator would undo it); the drain retries evictions and stops at a gate at its timeout, naming the budget".into(),
            });
            continue;
        }
        let object = ObjectRef::new("poddisruptionbudget", Some(&pdb.namespace), &pdb.name);
        let backup = ops::backup_file(&object);
        let relax = ops::patch_object(
            object.clone(),
            PatchType::Merge,
            serde_json::json!({"spec": {"minAvailable": null, "maxUnavailable": 1}}),
            ".spec.maxUnavailable",
            "1",
            Some(backup.clone()),
            format!(
                "Relax PodDisruptionBudget {}/{} to maxUnavailable 1 for the window, or drains wait forever ({}).",
                pdb.namespace, pdb.name, pdb.reason
            ),
        );
        let restore = ops::replace_from_backup(
            &backup,
            format!(
                "Put PodDisruptionBudget {}/{} back as it was.",
                pdb.namespace, pdb.name
            ),
        );
        if fired {
            b.resolves(
                "MIG003",
                Some(place.clone()),
                format!("relaxed to maxUnavailable 1 for the window (backup {backup}) and restored after verification"),
            );
        }
        b.risks.push(Risk {
            rule: Some("MIG003".into()),
            effect: format!("PodDisruptionBudget {}/{} allows 0 disruptions ({}): while relaxed, its pods may all be down at once when their node drains", pdb.namespace, pdb.name, pdb.reason),
            handling: format!("relaxed to maxUnavailable 1 behind a gate, backed up to {backup}, restored after verification"),
        });
        out.push(Relaxation {
            what: format!(
                "PodDisruptionBudget {}/{} to maxUnavailable 1",
                pdb.namespace, pdb.name
            ),
            relax,
            restore,
        });
    }
    out
}

fn webhooks(b: &mut Builder, findings: &[Finding]) -> Vec<Relaxation> {
    let mut out = Vec::new();
    for risk in b.cluster.facts.workloads.fail_closed_webhooks.clone() {
        let Some((kind, name)) = risk.configuration.split_once('/') else {
            continue;
        };
        let scope = b
            .cluster
            .webhook_scopes
            .get(&(risk.configuration.clone(), risk.webhook.clone()))
            .cloned();
        let fired = findings.iter().any(|f| {
            f.rule == "MIG005" && f.object.as_deref() == Some(risk.configuration.as_str())
        });
        if let Some(scope) = &scope
            && (!scope.creates_pods || scope.sees_recreated == Some(false))
        {
            let why = if scope.creates_pods {
                "its namespace and object selectors match none of the pods the plan creates"
            } else {
                "its rules do not cover creating pods"
            };
            if fired {
                b.resolves(
                    "MIG005",
                    Some(risk.configuration.clone()),
                    format!("not relaxed: {why}, so pod recreation never waits for it"),
                );
            }
            b.risks.push(Risk {
                rule: Some("MIG005".into()),
                effect: format!("webhook {} of {} fails closed and is served from the pod network ({}): while its pods move, what it matches is rejected", risk.webhook, risk.configuration, risk.service),
                handling: format!("not relaxed: {why}; a change it matches made during the window waits until its pods run again"),
            });
            continue;
        }
        if let Some(scope) = &scope
            && scope.injects_sidecars
        {
            // Relaxed, pods recreated meanwhile would start without their sidecar (no
            // secrets from Vault's agent, no mesh proxy): it is never relaxed.
            if fired {
                b.resolves(
                    "MIG005",
                    Some(risk.configuration.clone()),
                    "not relaxed: it injects sidecars; a pod recreated while it is unreachable is rejected and its controller retries until the injector runs again",
                );
            }
            b.risks.push(Risk {
                rule: Some("MIG005".into()),
                effect: format!("webhook {} of {} injects sidecars, fails closed and is served from the pod network ({}): while its own pods move, pods it matches cannot be created", risk.webhook, risk.configuration, risk.service),
                handling: "never relaxed (a pod admitted without its sidecar runs without what it injects); its controllers retry creation until the injector answers again; run the injector with two replicas on different nodes to avoid the gap".into(),
            });
            continue;
        }
        let kind = kind.to_lowercase();
        let object = ObjectRef::new(&kind, None, name);
        let backup = ops::backup_file(&object);
        let field = format!(".webhooks[?(@.name==\"{}\")].failurePolicy", risk.webhook);
        let patch = |policy: &str| serde_json::json!({"webhooks": [{"name": risk.webhook, "failurePolicy": policy}]});
        let relax = ops::patch_object(
            object.clone(),
            PatchType::Strategic,
            patch("Ignore"),
            &field,
            "Ignore",
            Some(backup.clone()),
            format!(
                "Let the API server admit requests when webhook {} ({}) cannot be reached: failurePolicy Ignore for the window.",
                risk.webhook, risk.service
            ),
        );
        let restore = ops::patch_object(
            object,
            PatchType::Strategic,
            patch("Fail"),
            &field,
            "Fail",
            None,
            format!(
                "Make webhook {} fail closed again (failurePolicy Fail).",
                risk.webhook
            ),
        );
        if fired {
            b.resolves(
                "MIG005",
                Some(risk.configuration.clone()),
                format!("failurePolicy Ignore for the window (backup {backup}), Fail again after verification"),
            );
        }
        b.risks.push(Risk {
            rule: Some("MIG005".into()),
            effect: format!("webhook {} of {} fails closed and is served from the pod network ({}): while its pods move, the API server would reject what it matches, the new CNI's pods included; while relaxed, requests it would have rejected are admitted", risk.webhook, risk.configuration, risk.service),
            handling: format!("failurePolicy Ignore behind a gate, backed up to {backup}, Fail again after verification"),
        });
        out.push(Relaxation {
            what: format!(
                "webhook {} of {} to failurePolicy Ignore",
                risk.webhook, risk.configuration
            ),
            relax,
            restore,
        });
    }
    out
}

/// The plural resource name of a CNI policy kind (`GlobalNetworkPolicy` ->
/// `globalnetworkpolicies.crd.projectcalico.org`).
fn resource(kind: &str, api_version: &str) -> String {
    let lower = kind.to_lowercase();
    let plural = match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    };
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    if group.is_empty() {
        plural
    } else {
        format!("{plural}.{group}")
    }
}

fn policies(b: &mut Builder, findings: &[Finding], steps: &mut Vec<S>) {
    let target = b.options.target;
    let objects: Vec<ObjectRef> = b
        .cluster
        .cni_policies
        .iter()
        .filter(|(owner, ..)| *owner != target)
        .map(|(_, kind, api_version, namespace, name)| {
            ObjectRef::new(&resource(kind, api_version), namespace.as_deref(), name)
        })
        .collect();
    if objects.is_empty() {
        return;
    }
    let file = "backups/cni-policies.yaml".to_string();
    steps.push(s(
        Action::Backup {
            objects: objects.clone(),
            file: file.clone(),
        },
        format!(
            "Save the {} that stop being enforced on {target}.",
            crate::names::count(
                objects.len(),
                "CNI-specific policy object",
                "CNI-specific policy objects"
            )
        ),
        vec![crate::backup::save_objects(&objects, &file)],
        format!("{file} exists"),
        300,
    ));
    let enforcement = if target == cniswap_model::CniKind::Flannel {
        "Flannel enforces no policy at all: every NetworkPolicy stops being enforced too"
            .to_string()
    } else {
        format!("{target} enforces Kubernetes NetworkPolicy and its own kinds, not these")
    };
    steps.push(ops::gate(
        format!("Are the {} policies in {file} translated for {target} (and applied), or is the gap accepted?", objects.len()),
        format!("Translate the old CNI's policies by hand ({enforcement}); no tool translates them correctly."),
        vec![sh!("kubectl get networkpolicies -A")],
        "the translated policies are applied, or the gap is accepted in writing",
    ));
    for f in findings.iter().filter(|f| f.rule == "MIG007") {
        b.resolves(
            "MIG007",
            f.object.clone(),
            format!("saved to {file}; a gate before any change asks for their translation"),
        );
    }
    b.risks.push(Risk {
        rule: Some("MIG007".into()),
        effect: format!(
            "{} of the old CNI {} not enforced on {target} and {} deleted with its CRDs",
            crate::names::count(objects.len(), "policy object", "policy objects"),
            if objects.len() == 1 { "is" } else { "are" },
            if objects.len() == 1 { "is" } else { "are" }
        ),
        handling: format!(
            "saved to {file}; a gate asks for their translation before anything changes"
        ),
    });
}

/// The only control plane reboots (rolling): the API server is unavailable meanwhile. An etcd
/// snapshot comes first.
fn single_control_plane(b: &mut Builder, steps: &mut Vec<S>) {
    let control_planes = b.cluster.control_planes();
    let [cp] = control_planes.as_slice() else {
        return;
    };
    let minutes = b.cluster.reboot_seconds().div_ceil(60);
    let name = cp.name.clone();
    let file = format!("backups/etcd-{}.snapshot", crate::names::file_part(&name));
    if b.cluster.talos {
        let endpoint = cp.ip.clone().unwrap_or_else(|| name.clone());
        let tmp = format!("{file}.tmp");
        steps.push(s(
            Action::EtcdSnapshot {
                node: name.clone(),
                endpoint: endpoint.clone(),
                file: file.clone(),
            },
            format!("Save an etcd snapshot from {name}, the only control plane, before it restarts."),
            vec![sh!(
                "test -s {} || {{ mkdir -p backups && talosctl -n {} etcd snapshot {} && mv {} {}; }}",
                file,
                endpoint,
                tmp,
                tmp,
                file
            )],
            format!("{file} exists"),
            600,
        ));
    } else {
        steps.push(ops::gate(
            format!("Is an etcd snapshot of {name} saved (etcdctl snapshot save), off the node?"),
            format!(
                "Save an etcd snapshot from {name}, the only control plane, before it restarts."
            ),
            Vec::new(),
            "the snapshot file is saved off the node",
        ));
    }
    b.risks.push(Risk {
        rule: None,
        effect: format!("{name} is the only control plane: the API server is unavailable for about {minutes} min while it restarts (kubectl, controllers and webhooks wait)"),
        handling: "an etcd snapshot first; the node goes last, and its steps wait for the API server to answer again".into(),
    });
}

/// Adds the phase that relaxes safeguards (empty when nothing needs it); returns the steps
/// that restore them, for the phase after verification.
pub fn relax(b: &mut Builder, findings: &[Finding]) -> Vec<S> {
    let drains = b.strategy_name() == "rolling";
    let mut relaxations = pdbs(b, findings, drains);
    relaxations.extend(webhooks(b, findings));
    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    policies(b, findings, &mut steps);
    // Only rolling reboots nodes, and only with `--reboot`'s choice; otherwise the API server
    // (on the host network) keeps running.
    if drains && b.reboots() && b.cluster.nodes.len() > 1 {
        single_control_plane(b, &mut steps);
    }
    let mut restores = Vec::new();
    if !relaxations.is_empty() {
        let names: Vec<&str> = relaxations.iter().map(|r| r.what.as_str()).collect();
        steps.push(ops::gate(
            "Relax these safeguards for the migration window? Each is saved first and restored after verification.",
            format!("Accept what the next steps relax for the window: {}.", names.join("; ")),
            Vec::new(),
            "the relaxations are accepted for the window",
        ));
        for r in relaxations {
            steps.push(r.relax);
            restores.push(r.restore);
        }
    }
    // Undoing this phase is restoring what it relaxed (equal steps, equal checks).
    let restore_again: Vec<S> = restores.to_vec();
    rollback.splice(0..0, restore_again);
    b.phase(
        "Prepare safeguards",
        "Nothing the migration does can deadlock on a budget or a webhook; what stops being enforced is saved and translated.",
        steps,
        rollback,
    );
    restores
}

/// The phase after verification that puts relaxed safeguards back.
pub fn restore(b: &mut Builder, restores: Vec<S>) {
    let relax_again = Vec::new();
    b.phase(
        "Restore safeguards",
        "Every budget and webhook relaxed for the window is as it was before.",
        restores,
        relax_again,
    );
}
