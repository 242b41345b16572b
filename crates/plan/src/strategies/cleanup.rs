//! The last phase: once the cluster is verified on the target, remove what is left of the old
//! CNI in the API (its operator, controllers, config, RBAC and CRDs), each backed up first.
//! Left behind, these keep reconciling, hold stale IPAM and policies, and confuse the next
//! person who reads the cluster (MIG011).

use super::{Builder, S, s};
use crate::check::{apply_backup, apply_backup_list};
use crate::model::Action;
use cniswap_model::{CniKind, InstallMethod};

/// CRD groups a CNI owns.
fn crd_groups(cni: CniKind) -> &'static [&'static str] {
    match cni {
        CniKind::Calico | CniKind::Canal => &["projectcalico.org", "tigera.io"],
        CniKind::Cilium => &["cilium.io"],
        _ => &[],
    }
}

/// Objects (kind, namespace, name) the CNI's usual install leaves besides its DaemonSet.
fn leftovers(
    cni: CniKind,
    install: Option<InstallMethod>,
) -> Vec<(&'static str, Option<&'static str>, &'static str)> {
    match (cni, install) {
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
        (CniKind::Calico, Some(InstallMethod::TigeraOperator)) => {
            vec![("installation", None, "default")]
        }
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

fn remove_source(b: &Builder, cni: CniKind) -> (Vec<S>, Vec<S>) {
    let install = b.cluster.install_of(cni);
    let mut steps = Vec::new();
    let mut undo = Vec::new();
    if install == Some(InstallMethod::TigeraOperator) {
        // The Installation's finalizer needs the operator that the switch stopped.
        if let Some((_, mut resume)) = b.pause_controller(cni) {
            resume.description =
                "Start the Tigera operator again: deleting the Installation waits for it.".into();
            steps.push(resume);
        }
    }
    if cni == CniKind::Cilium && install == Some(InstallMethod::Helm) {
        let backup = "backups/cilium-release-values.yaml";
        steps.push(s(
            Action::HelmUninstall {
                release: "cilium".into(),
                namespace: "kube-system".into(),
                backup: backup.into(),
            },
            "Uninstall the old Cilium release (operator, config, RBAC).",
            vec![
                format!("helm -n kube-system get values cilium --all -o yaml > {backup}"),
                "helm -n kube-system uninstall cilium --wait".into(),
            ],
            "`helm -n kube-system status cilium` says not found",
            600,
        ));
        undo.push(s(
            Action::ManualGate { question: "Reinstall the old Cilium?".into() },
            "Reinstall the old Cilium release with its saved values.",
            vec![format!("helm upgrade --install cilium cilium/cilium -n kube-system -f {backup}  # with the version it had")],
            "ds/cilium is ready",
            900,
        ));
    }
    for (kind, namespace, name) in leftovers(cni, install) {
        let ns = namespace.map(|n| format!("-n {n} ")).unwrap_or_default();
        let backup = format!("backups/{cni}-{kind}-{name}.yaml");
        steps.push(s(
            Action::DeleteObject {
                kind: kind.into(),
                namespace: namespace.map(str::to_string),
                name: name.into(),
                backup: backup.clone(),
            },
            format!(
                "Back up and delete {kind} {}{name} ({cni}).",
                namespace.map(|n| format!("{n}/")).unwrap_or_default()
            ),
            vec![
                format!("kubectl {ns}get {kind} {name} --ignore-not-found -o yaml > {backup}"),
                format!("kubectl {ns}delete {kind} {name} --ignore-not-found --timeout=10m"),
            ],
            format!("`kubectl {ns}get {kind} {name}` says NotFound"),
            600,
        ));
        undo.insert(
            0,
            s(
                Action::ApplyManifest {
                    file: backup.clone(),
                },
                format!("Recreate {kind} {name} from its backup."),
                vec![format!("test ! -s {backup} || {}", apply_backup(&backup))],
                format!("{kind} {name} exists again (if it existed)"),
                300,
            ),
        );
    }
    if install == Some(InstallMethod::TigeraOperator) {
        let backup = "backups/calico-tigera-operator.yaml";
        steps.push(s(
            Action::DeleteObject { kind: "namespace".into(), namespace: None, name: "tigera-operator".into(), backup: backup.into() },
            "Back up and remove the Tigera operator (its Helm release, if any, and its namespace).",
            vec![
                format!("kubectl -n tigera-operator get deployment,serviceaccount,configmap -o yaml > {backup}"),
                "helm -n tigera-operator list -q | grep -qx calico && helm -n tigera-operator uninstall calico  # when installed with Helm".into(),
                "kubectl delete namespace tigera-operator --ignore-not-found --timeout=10m".into(),
            ],
            "`kubectl get namespace tigera-operator` says NotFound",
            600,
        ));
        undo.insert(
            0,
            s(
                Action::ManualGate { question: "Reinstall the Tigera operator?".into() },
                format!("Reinstall the Tigera operator the way it was installed (Helm chart or tigera-operator.yaml, same version; {backup} shows what ran); the Installation is restored next."),
                vec!["kubectl create namespace tigera-operator".into()],
                "deployment tigera-operator is Available",
                900,
            ),
        );
    }
    let groups = crd_groups(cni);
    // Canal's CRDs are Calico's: keep them when Calico is the target.
    let shared = crd_groups(b.options.target)
        .iter()
        .any(|g| groups.contains(g));
    if !groups.is_empty() && !shared {
        let pattern = groups
            .iter()
            .map(|g| format!("\\.{}", g.replace('.', "\\.")))
            .collect::<Vec<_>>()
            .join("|");
        let dir = format!("backups/{cni}-crds");
        steps.push(s(
            Action::DeleteObject { kind: "CustomResourceDefinition".into(), namespace: None, name: format!("({pattern})$"), backup: dir.clone() },
            format!("Back up {cni}'s custom resources and CRDs, then delete the CRDs (their objects, policies included, go with them: MIG007)."),
            vec![
                format!("mkdir -p {dir}"),
                format!("for crd in $(kubectl get crd -o name | grep -E '({pattern})$'); do n=${{crd#*/}}; kubectl get crd \"$n\" -o yaml > {dir}/crd-$n.yaml; kubectl get \"$n\" -A -o yaml > {dir}/objects-$n.yaml; done"),
                format!("for crd in $(kubectl get crd -o name | grep -E '({pattern})$'); do kubectl delete \"$crd\" --timeout=5m; done"),
            ],
            format!("`kubectl get crd | grep -E '{}'` lists nothing", groups.join("|")),
            600,
        ));
        undo.insert(
            0,
            s(
                Action::RestoreBackup { path: dir.clone() },
                format!("Recreate {cni}'s CRDs, then their objects, from the backup."),
                vec![
                    format!(
                        "for f in {dir}/crd-*.yaml; do {}; done",
                        apply_backup("\"$f\"")
                    ),
                    format!(
                        "for f in {dir}/objects-*.yaml; do {}; done",
                        apply_backup_list("\"$f\"")
                    ),
                ],
                "the CRDs and their objects exist again",
                600,
            ),
        );
    }
    (steps, undo)
}

/// Adds the cleanup phase for every source CNI; nothing when there is nothing to remove.
pub fn build(b: &mut Builder) {
    let mut steps = vec![s(
        Action::ManualGate {
            question:
                "Has the cluster run well on the target long enough to give up the quick way back?"
                    .into(),
        },
        "Confirm the verification passed and the cluster has run on the target for a while: after this phase the old CNI can only come back from backups.",
        vec!["cniswap inspect".into()],
        "you accept that rollback is from backups from here on",
        0,
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
