//! The last phase: once the cluster is verified on the target, remove what is left of the old
//! CNI in the API (its operator, controllers, config, RBAC and CRDs), each backed up first.
//! Left behind, these keep reconciling, hold stale IPAM and policies, and confuse the next
//! person who reads the cluster (MIG011).

use super::Builder;
use crate::model::{Action, ObjectRef, Probe};
use crate::ops::{self, S, s};
use cniswap_model::{CniKind, InstallMethod};

/// Objects (kind, namespace, name) the CNI's usual install leaves besides its DaemonSet.
fn leftovers(
    cni: CniKind,
    install: Option<InstallMethod>,
) -> Vec<(&'static str, Option<&'static str>, &'static str)> {
    match (cni, install) {
        // k3s' Flannel has no objects; RKE2's chart took its own with its uninstall.
        (_, Some(InstallMethod::Bundled)) => Vec::new(),
        (CniKind::Flannel, Some(InstallMethod::Talos)) => vec![
            ("configmap", Some("kube-system"), "kube-flannel-cfg"),
            ("serviceaccount", Some("kube-system"), "flannel"),
            ("clusterrolebinding", None, "flannel"),
            ("clusterrole", None, "flannel"),
        ],
        (CniKind::Flannel, _) => vec![
            ("namespace", None, "kube-flannel"),
            ("clusterrolebinding", None, "flannel"),
            ("clusterrole", None, "flannel"),
        ],
        (CniKind::Calico, Some(InstallMethod::TigeraOperator)) => Vec::new(),
        (CniKind::Cilium, Some(InstallMethod::Helm)) => Vec::new(),
        (CniKind::Cilium, _) => vec![
            ("deployment", Some("kube-system"), "cilium-operator"),
            ("configmap", Some("kube-system"), "cilium-config"),
        ],
        (CniKind::Calico, _) => vec![
            ("deployment", Some("kube-system"), "calico-kube-controllers"),
            ("configmap", Some("kube-system"), "calico-config"),
        ],
        (CniKind::Canal, _) => vec![
            ("deployment", Some("kube-system"), "calico-kube-controllers"),
            ("configmap", Some("kube-system"), "canal-config"),
        ],
        (CniKind::Weave, _) => vec![
            ("rolebinding", Some("kube-system"), "weave-net"),
            ("role", Some("kube-system"), "weave-net"),
            ("serviceaccount", Some("kube-system"), "weave-net"),
            ("clusterrolebinding", None, "weave-net"),
            ("clusterrole", None, "weave-net"),
        ],
    }
}

/// The Tigera operator's Calico, in Calico's documented uninstall order (crate::tigera): the
/// operator, stopped since its calico-node went, starts again with calico-node scheduled on
/// no node (started while the Installation stood as it was, it would recreate calico-node,
/// whose 10-calico.conflist sorts before Flannel's); the APIServer and the Installation go
/// while it runs, and it tears Calico down. Then every node is checked: no Calico CNI
/// config, no NetworkUnavailable left by the stopping agents.
fn tigera(b: &Builder, steps: &mut Vec<S>, undo: &mut Vec<S>) {
    let (nowhere, restore_installation) = crate::tigera::schedule_calico_node_nowhere();
    steps.push(nowhere);
    if let Some((_, mut resume)) = b.pause_controller(CniKind::Calico) {
        resume.description =
            "Start the Tigera operator: it tears Calico down once its custom resources go.".into();
        steps.push(resume);
    }
    let (deletes, restores) = crate::tigera::delete_custom_resources();
    steps.extend(deletes);
    steps.push(crate::tigera::torn_down());
    for node in &b.cluster.nodes {
        steps.push(ops::node_files(
            &node.name,
            &[
                "/etc/cni/net.d/10-calico.conflist",
                "/etc/cni/net.d/calico-kubeconfig",
            ],
            None,
            format!(
                "Remove any Calico CNI config the operator's teardown left on {}.",
                node.name
            ),
            &b.helper_image(),
        ));
        steps.push(ops::clear_network_unavailable(&node.name));
    }
    let inventory_probes: Vec<Probe> = b
        .cluster
        .nodes
        .iter()
        .map(|n| Probe::NodeInventory {
            node: n.name.clone(),
            pod: crate::agent::pod(
                "inventory",
                &n.name,
                &b.agent_image(),
                crate::agent::cniswap(&["node", "inventory", "--root", "/host"]),
            ),
        })
        .collect();
    steps.push(ops::verify(
        "each node's first CNI config is the target's",
        inventory_probes,
        "Check every node: the node agent finds no error (NOD001: a stale config sorting first)."
            .into(),
        "the node agent exits 0 on every node",
    ));
    // Rollback order: the APIServer and the Installation come back from their backups (the
    // Installation's was taken before the nodeSelector patch), and the patch is undone.
    let mut back = restores;
    back.push(restore_installation);
    undo.splice(0..0, back);
    let tigera_backup = "backups/tigera-operator-namespace.yaml";
    let namespace = ObjectRef::new("namespace", None, "tigera-operator");
    steps.push(s(
        Action::DeleteObject {
            object: namespace.clone(),
            backup: tigera_backup.into(),
        },
        "Back up and remove the Tigera operator (its Helm release, if any, and its namespace).",
        vec![
            crate::backup::write_once(
                &sh!("kubectl -n tigera-operator get deployment,serviceaccount,configmap --ignore-not-found -o yaml"),
                tigera_backup,
            ),
            sh!("out=$(helm -n tigera-operator list -a --filter '^calico$' -q) && {{ [ -z \"$out\" ] || helm -n tigera-operator uninstall calico --wait; }}"),
            sh!("kubectl delete namespace tigera-operator --ignore-not-found --timeout=10m"),
        ],
        "`kubectl get namespace tigera-operator` says NotFound",
        900,
    ));
    undo.insert(
        0,
        ops::gate(
            "Is the Tigera operator reinstalled as it was?",
            format!("Reinstall the Tigera operator the way it was installed (Helm chart or tigera-operator.yaml, same version; {tigera_backup} shows what ran); the Installation is restored next."),
            vec![sh!("kubectl create namespace tigera-operator")],
            "deployment tigera-operator is Available",
        ),
    );
}

fn remove_source(b: &Builder, cni: CniKind) -> (Vec<S>, Vec<S>) {
    let install = b.cluster.install_of(cni);
    let mut steps = Vec::new();
    let mut undo = Vec::new();
    if install == Some(InstallMethod::TigeraOperator) {
        tigera(b, &mut steps, &mut undo);
    }
    if cni == CniKind::Cilium && install == Some(InstallMethod::Helm) {
        let backup = "backups/helm-kube-system-cilium-values.yaml";
        steps.push(s(
            Action::HelmUninstall {
                release: "cilium".into(),
                namespace: "kube-system".into(),
                backup: backup.into(),
            },
            "Back up the old Cilium release's values and uninstall it (operator, config, RBAC).",
            vec![
                crate::backup::write_once(
                    &sh!("helm -n kube-system get values cilium --all -o yaml"),
                    backup,
                ),
                sh!("out=$(helm -n kube-system list -a --filter '^cilium$' -q) && {{ [ -z \"$out\" ] || helm -n kube-system uninstall cilium --wait; }}"),
            ],
            "`helm -n kube-system status cilium` says not found",
            600,
        ));
        let version = b
            .cluster
            .facts
            .cnis
            .iter()
            .find(|c| c.kind == CniKind::Cilium)
            .and_then(|c| c.version.clone())
            .unwrap_or_else(|| "the version it had".into());
        undo.push(ops::gate(
            "Reinstall the old Cilium?",
            format!("Reinstall the old Cilium release ({version}) with its saved values."),
            Vec::new(),
            "ds/cilium is ready",
        ).note(format!("helm upgrade --install cilium cilium --repo https://helm.cilium.io --version {version} -n kube-system -f {backup}")));
    }
    for (kind, namespace, name) in leftovers(cni, install) {
        let (delete, restore) =
            ops::delete_object(ObjectRef::new(kind, namespace, name), &format!(" ({cni})"));
        steps.push(delete);
        undo.insert(0, restore);
    }
    let groups = crate::context::crd_groups(cni);
    // Canal's CRDs are Calico's: keep them when Calico is the target.
    let shared = crate::context::crd_groups(b.options.target)
        .iter()
        .any(|g| groups.contains(g));
    if !groups.is_empty() && !shared {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let (delete, restore) = ops::delete_crds(
            &groups,
            &format!("backups/{cni}-crds"),
            format!(
                "Back up {cni}'s custom resources and CRDs, then delete the CRDs (their objects, policies included, go with them: MIG007)."
            ),
            format!("Recreate {cni}'s CRDs, then their objects, from the backup."),
        );
        steps.push(delete);
        undo.insert(0, restore);
    }
    (steps, undo)
}

/// Adds the cleanup phase for every source CNI; nothing when there is nothing to remove.
pub fn build(b: &mut Builder) {
    let mut steps = vec![ops::gate(
        "Has the cluster run well on the target long enough to give up the quick way back?",
        "Confirm the verification passed and the cluster has run on the target for a while: after this phase the old CNI can only come back from backups.",
        vec![ops::cniswap(&["inspect"])],
        "you accept that rollback is from backups from here on",
    )];
    let mut rollback = Vec::new();
    for cni in b.cluster.sources.clone() {
        let (more, undo) = remove_source(b, cni);
        steps.extend(more);
        rollback.splice(0..0, undo);
    }
    if steps.len() == 1 {
        return;
    }
    b.phase(
        "Remove the old CNI",
        "Nothing of the old CNI is left in the API: no operator, controller, config, RBAC or CRD.",
        steps,
        rollback,
    );
}
