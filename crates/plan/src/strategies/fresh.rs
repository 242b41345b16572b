//! Fresh: the cluster is not bootstrapped yet. The machine configs (or Omni/talhelper) get the
//! patches before bootstrap; the target is installed right after it; then verified.

use super::{Builder, s};
use crate::install;
use crate::model::Action;
use cniswap_model::CniKind;

pub fn build(b: &mut Builder) {
    let (mut steps, mut rollback) = b.distribution_settings();
    if b.cluster.talos && b.options.target != CniKind::Flannel {
        let patch = crate::artifacts::talos::disable_flannel(b.cluster);
        let (apply, undo) = b.talos_patch(&patch, "no built-in Flannel");
        steps.extend(apply);
        rollback.extend(undo);
    }
    if b.cluster.talos && b.replace_kube_proxy {
        let patch = crate::artifacts::talos::disable_kube_proxy(b.cluster);
        let (apply, undo) = b.talos_patch(&patch, "no kube-proxy");
        steps.extend(apply);
        rollback.extend(undo);
    }
    steps.push(s(
        Action::ManualGate { question: "Bootstrapped with these configs?".into() },
        "Generate the machine configs with these patches and bootstrap (set CLUSTER_NAME, ENDPOINT and FIRST_CONTROL_PLANE_IP first; nodes wait for a CNI, ~10 minutes, before rebooting).",
        vec![gen_config(b), r#"talosctl bootstrap -n "$FIRST_CONTROL_PLANE_IP""#.into()],
        "`kubectl get nodes` answers (nodes NotReady until the CNI runs)",
        1800,
    ));
    b.phase(
        "Configure before bootstrap",
        "The cluster boots without the CNI it should not have.",
        steps,
        rollback,
    );
    let (install, uninstall) = install::target(b, None);
    b.phase(
        "Install the CNI",
        "The target runs on every node.",
        install,
        uninstall,
    );
}

/// `talosctl gen config` with every forward patch of the plan (set the variables first).
fn gen_config(b: &Builder) -> String {
    let patches: String = b
        .artifacts
        .files
        .iter()
        .map(|(path, _, _)| path)
        .filter(|p| p.starts_with("artifacts/talos/") && !p.contains("/rollback-"))
        .map(|p| format!(" --config-patch @{p}"))
        .collect();
    format!(
        r#"talosctl gen config "$CLUSTER_NAME" "https://$ENDPOINT:6443"{patches}  # or add the patches to talconfig/Omni"#
    )
}
