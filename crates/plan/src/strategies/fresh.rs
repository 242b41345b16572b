//! Fresh: the cluster is not bootstrapped yet. The machine configs (or Omni, which generates
//! configs and bootstraps by itself) get the patches before bootstrap; the target is
//! installed right after it; then verified.

use super::Builder;
use crate::artifacts::talos::TalosPatch;
use crate::install;
use crate::ops::{self, S};
use cniswap_model::CniKind;

pub fn build(b: &mut Builder) {
    let (mut steps, mut rollback) = b.distribution_settings();
    let mut patches: Vec<TalosPatch> = Vec::new();
    if b.cluster.talos && b.options.target != CniKind::Flannel {
        patches.push(crate::artifacts::talos::disable_flannel(b.cluster));
    }
    if b.cluster.talos && b.replace_kube_proxy {
        patches.push(crate::artifacts::talos::disable_kube_proxy(b.cluster));
    }
    let mut files = Vec::new();
    for patch in &patches {
        let (file, rollback_file) =
            crate::artifacts::talos::write(&mut b.artifacts, b.cluster, patch);
        if b.cluster.omni {
            // Omni generates the configs and bootstraps: the patches go to Omni first.
            for role in ["controlplane", "worker"] {
                let (apply, undo) = crate::artifacts::talos::steps(
                    &mut b.artifacts,
                    b.cluster,
                    patch,
                    role,
                    &[],
                    (&file, &rollback_file),
                    patch.name,
                );
                steps.push(apply);
                rollback.insert(0, undo);
            }
        }
        files.push(file);
    }
    if b.cluster.omni {
        steps.push(ops::gate(
            "Is the cluster created in Omni with these patches, and does `kubectl get nodes` answer?",
            "Create the cluster in Omni (its template or the UI) with the patches above; Omni generates the machine configs and bootstraps (nodes wait for a CNI, ~10 minutes, before rebooting).",
            vec![sh!("kubectl get nodes")],
            "`kubectl get nodes` answers (nodes NotReady until the CNI runs)",
        ));
    } else if b.cluster.talos {
        steps.push(gen_config(&files));
    } else if steps.is_empty() {
        steps.push(ops::gate(
            "Is the cluster bootstrapped without a CNI, and does `kubectl get nodes` answer?",
            "Bootstrap the cluster without a CNI (kubeadm: no CNI manifest applied).",
            vec![sh!("kubectl get nodes")],
            "`kubectl get nodes` answers (nodes NotReady until the CNI runs)",
        ));
    }
    b.phase(
        "Configure before bootstrap",
        "The cluster boots without the CNI it should not have.",
        steps,
        rollback,
    );
    let (mut install, uninstall) = install::target(b, None);
    if b.options.target == CniKind::Cilium {
        let values = crate::artifacts::cilium::final_values(
            b.cluster,
            b.replace_kube_proxy,
            &b.options.values,
            None,
        );
        let token = format!(
            "values-final-{}",
            &crate::names::sha256(
                b.artifacts
                    .text("artifacts/cilium/values-final.yaml")
                    .unwrap_or_default()
            )[..12]
        );
        install.extend(install::settle_cilium(b, &values, &token, true));
    }
    b.phase(
        "Install the CNI",
        "The target runs on every node.",
        install,
        uninstall,
    );
}

/// `talosctl gen config` with every forward patch of the plan, then bootstrap.
fn gen_config(files: &[String]) -> S {
    let mut words = vec!["talosctl".to_string(), "gen".into(), "config".into()];
    for file in files {
        words.push("--config-patch".into());
        words.push(format!("@{file}"));
    }
    let args = crate::shell::argv(&words);
    ops::gate(
        "Bootstrapped with these configs?",
        "Generate the machine configs with these patches (or add them to talconfig) and bootstrap; nodes wait for a CNI, ~10 minutes, before rebooting.",
        vec![
            sh!(
                "{} \"$CLUSTER_NAME\" \"https://$ENDPOINT:6443\"",
                crate::shell::Code(&args)
            ),
            sh!("talosctl bootstrap -n \"$FIRST_CONTROL_PLANE_IP\""),
        ],
        "`kubectl get nodes` answers (nodes NotReady until the CNI runs)",
    )
    .note("Set CLUSTER_NAME, ENDPOINT and FIRST_CONTROL_PLANE_IP first.")
}
