//! Workload risks that the MIG rules of RULES.md read.

use cniswap_model::{
    BlockingPdb, CniFacts, CniKind, KindCount, ObjectRef, StaleResource, WebhookRisk, WorkloadFacts,
};
use cniswap_snapshot::Snapshot;
use cniswap_snapshot::objects::{IntOrString, PodDisruptionBudget};
use std::collections::{BTreeMap, HashMap};

/// CSI drivers and provisioners whose components talk over the pod network (RULES.md MIG004).
const POD_NETWORK_STORAGE: &[(&str, &str)] = &[
    ("driver.longhorn.io", "Longhorn"),
    ("rbd.csi.ceph.com", "Rook/Ceph RBD"),
    ("cephfs.csi.ceph.com", "Rook/Ceph CephFS"),
    ("io.openebs.csi-mayastor", "OpenEBS Mayastor"),
    ("cstor.csi.openebs.io", "OpenEBS cStor"),
    ("jiva.csi.openebs.io", "OpenEBS Jiva"),
    ("linstor.csi.linbit.com", "LINSTOR/Piraeus"),
    ("pxd.portworx.com", "Portworx"),
];

pub fn detect(snapshot: &Snapshot, cnis: &[CniFacts]) -> WorkloadFacts {
    let objects = &snapshot.objects;
    let mut facts = WorkloadFacts {
        pods: objects.pods.len(),
        ..WorkloadFacts::default()
    };
    for pod in &objects.pods {
        if pod.spec.host_network {
            facts.host_network_pods += 1;
        } else {
            facts.pod_network_pods += 1;
        }
        let finished = matches!(pod.status.phase.as_str(), "Succeeded" | "Failed");
        if pod.metadata.owner_references.is_empty() && !pod.is_static() && !finished {
            facts.bare_pods.push(ObjectRef {
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                node: pod.spec.node_name.clone(),
            });
        }
    }
    facts.bare_pods.sort();

    facts.blocking_pdbs = objects
        .pdbs
        .iter()
        .filter_map(|pdb| {
            blocking_reason(pdb).map(|reason| BlockingPdb {
                namespace: pdb.metadata.namespace().to_string(),
                name: pdb.metadata.name.clone(),
                reason,
                owner: operator_of(&pdb.metadata),
            })
        })
        .collect();

    let mut storage: Vec<String> = Vec::new();
    let drivers = objects
        .csi_drivers
        .iter()
        .map(|d| d.metadata.name.as_str())
        .chain(
            objects
                .storage_classes
                .iter()
                .map(|s| s.provisioner.as_str()),
        );
    for driver in drivers {
        if let Some((_, label)) = POD_NETWORK_STORAGE
            .iter()
            .find(|(d, _)| driver == *d || driver.ends_with(&format!(".{d}")))
        {
            let entry = format!("{label} ({driver})");
            if !storage.contains(&entry) {
                storage.push(entry);
            }
        }
    }
    facts.storage_on_pod_network = storage;

    facts.fail_closed_webhooks = fail_closed_webhooks(snapshot);
    facts.network_policies = objects.network_policies.len();

    let mut policy_counts: BTreeMap<(String, CniKind), usize> = BTreeMap::new();
    for policy in &objects.cni_policies {
        let owner = if policy.api_version.starts_with("cilium.io") {
            CniKind::Cilium
        } else {
            CniKind::Calico
        };
        *policy_counts
            .entry((policy.kind.clone(), owner))
            .or_default() += 1;
    }
    facts.cni_policies = policy_counts
        .into_iter()
        .map(|((kind, owner), count)| KindCount { kind, count, owner })
        .collect();
    facts.stale_cni_resources = stale_resources(snapshot, cnis);
    facts
}

fn blocking_reason(pdb: &PodDisruptionBudget) -> Option<String> {
    if let Some(IntOrString::Int(0)) = pdb.spec.max_unavailable {
        return Some("maxUnavailable is 0".to_string());
    }
    if let Some(IntOrString::Str(s)) = &pdb.spec.max_unavailable
        && s.trim() == "0%"
    {
        return Some("maxUnavailable is 0%".to_string());
    }
    if let Some(allowed) = pdb.status.disruptions_allowed
        && allowed <= 0
    {
        let healthy = pdb
            .status
            .current_healthy
            .map(|h| {
                format!(
                    " ({h} healthy, {} desired)",
                    pdb.status.desired_healthy.unwrap_or(0)
                )
            })
            .unwrap_or_default();
        return Some(format!("status.disruptionsAllowed is {allowed}{healthy}"));
    }
    None
}

fn fail_closed_webhooks(snapshot: &Snapshot) -> Vec<WebhookRisk> {
    let objects = &snapshot.objects;
    let services: HashMap<(&str, &str), &cniswap_snapshot::objects::Service> = objects
        .services
        .iter()
        .map(|s| ((s.metadata.namespace(), s.metadata.name.as_str()), s))
        .collect();
    let mut risks = Vec::new();
    let configs = objects
        .validating_webhooks
        .iter()
        .map(|c| ("ValidatingWebhookConfiguration", c))
        .chain(
            objects
                .mutating_webhooks
                .iter()
                .map(|c| ("MutatingWebhookConfiguration", c)),
        );
    for (kind, config) in configs {
        for webhook in &config.webhooks {
            // admissionregistration.k8s.io/v1 defaults failurePolicy to Fail.
            if webhook.failure_policy.as_deref().unwrap_or("Fail") != "Fail" {
                continue;
            }
            let Some(reference) = &webhook.client_config.service else {
                continue;
            };
            let Some(service) =
                services.get(&(reference.namespace.as_str(), reference.name.as_str()))
            else {
                continue;
            };
            if service.spec.selector.is_empty() {
                continue;
            }
            let on_pod_network = objects.pods.iter().any(|p| {
                p.metadata.namespace() == reference.namespace
                    && !p.spec.host_network
                    && service
                        .spec
                        .selector
                        .iter()
                        .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
            });
            if on_pod_network {
                risks.push(WebhookRisk {
                    configuration: format!("{kind}/{}", config.metadata.name),
                    webhook: webhook.name.clone(),
                    service: format!("{}/{}", reference.namespace, reference.name),
                });
            }
        }
    }
    risks
}

fn owner_of_group(group: &str) -> Option<CniKind> {
    if group.ends_with("projectcalico.org") || group == "operator.tigera.io" {
        Some(CniKind::Calico)
    } else if group == "cilium.io" {
        Some(CniKind::Cilium)
    } else {
        None
    }
}

fn stale_resources(snapshot: &Snapshot, cnis: &[CniFacts]) -> Vec<StaleResource> {
    let objects = &snapshot.objects;
    let running = |kind: CniKind| {
        cnis.iter().any(|c| {
            c.running
                && (c.kind == kind
                    || (kind == CniKind::Calico && c.kind == CniKind::Canal)
                    || (kind == CniKind::Flannel && c.kind == CniKind::Canal))
        })
    };
    let mut stale = Vec::new();
    for crd in &objects.crds {
        if let Some(owner) = owner_of_group(&crd.spec.group)
            && !running(owner)
        {
            stale.push(StaleResource {
                owner,
                kind: "CustomResourceDefinition".to_string(),
                name: crd.metadata.name.clone(),
            });
        }
    }
    for (namespace, owner) in [
        ("calico-system", CniKind::Calico),
        ("tigera-operator", CniKind::Calico),
        ("kube-flannel", CniKind::Flannel),
        ("cilium", CniKind::Cilium),
    ] {
        if !running(owner)
            && objects
                .namespaces
                .iter()
                .any(|n| n.metadata.name == namespace)
        {
            stale.push(StaleResource {
                owner,
                kind: "Namespace".to_string(),
                name: namespace.to_string(),
            });
        }
    }
    for cni in cnis.iter().filter(|c| !c.running) {
        if let Some(ds) = &cni.daemonset {
            stale.push(StaleResource {
                owner: cni.kind,
                kind: "DaemonSet".to_string(),
                name: format!("{}/{ds}", cni.namespace.as_deref().unwrap_or_default()),
            });
        }
    }
    for node in &objects.nodes {
        for (prefix, owner) in [
            ("flannel.alpha.coreos.com/", CniKind::Flannel),
            ("projectcalico.org/", CniKind::Calico),
            ("io.cilium", CniKind::Cilium),
        ] {
            if !running(owner)
                && node
                    .metadata
                    .annotations
                    .keys()
                    .any(|k| k.starts_with(prefix))
            {
                stale.push(StaleResource {
                    owner,
                    kind: "NodeAnnotation".to_string(),
                    name: format!("{} ({prefix}*)", node.metadata.name),
                });
            }
        }
        if let Some(condition) = node
            .status
            .conditions
            .iter()
            .find(|c| c.kind == "NetworkUnavailable" && c.status == "True")
        {
            let reason = condition.reason.clone().unwrap_or_default();
            let owner = if reason.starts_with("Calico") {
                Some(CniKind::Calico)
            } else if reason.starts_with("Cilium") {
                Some(CniKind::Cilium)
            } else if reason.starts_with("Flannel") {
                Some(CniKind::Flannel)
            } else {
                None
            };
            if let Some(owner) = owner.filter(|o| !running(*o)) {
                stale.push(StaleResource {
                    owner,
                    kind: "NodeCondition".to_string(),
                    name: format!("{} NetworkUnavailable ({reason})", node.metadata.name),
                });
            }
        }
    }
    stale
}

/// The operator that manages an object: its controller owner, else a
/// `app.kubernetes.io/managed-by` label that names something other than a package manager.
fn operator_of(meta: &cniswap_snapshot::objects::Meta) -> Option<String> {
    if let Some(owner) = meta
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| meta.owner_references.first())
    {
        return Some(format!("{}/{}", owner.kind, owner.name));
    }
    meta.labels
        .get("app.kubernetes.io/managed-by")
        .filter(|m| {
            !matches!(
                m.to_lowercase().as_str(),
                "helm" | "kustomize" | "kubectl" | "argocd" | "flux" | "tiller"
            )
        })
        .cloned()
}
