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
        "Generate the machine configs with these patches and bootstrap (nodes wait for a CNI, ~10 minutes, before rebooting).",
        vec!["talosctl gen config <cluster> <endpoint> --config-patch @artifacts/talos/<patch>.yaml  # one per patch; or add them to talconfig/Omni".into(), "talosctl bootstrap -n <first control plane>".into()],
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
