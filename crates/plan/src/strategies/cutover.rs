//! Cutover: one window. What can fail without harm is done first (manifests downloaded and
//! rendered, the chart and values checked); then, behind a gate that opens the outage, Talos
//! stops rendering the old CNI (control planes, then workers), the old CNI is backed up and
//! removed, the target installed; then per batch of nodes the old node state is cleaned, the
//! target's agent restarted there and the node's pods recreated. Cross-node traffic between
//! switched and unswitched nodes is down during the window; the plan says how long.

use super::Builder;
use crate::install;
use crate::model::{Action, Probe, Render};
use crate::ops::{self, s};
use cniswap_model::CniKind;

pub fn build(b: &mut Builder) {
    let target = b.options.target;
    let (install_steps, uninstall) = install::target(b, None);
    // Downloads and renders change nothing: they run before the outage, so a chart that does
    // not render or a URL that does not answer stops the plan while the old CNI still runs.
    let (mut prepare, install_steps): (Vec<_>, Vec<_>) = install_steps.into_iter().partition(|s| {
        matches!(
            s.action,
            Action::Download { .. } | Action::RenderManifest { .. }
        )
    });
    if let Some(check) = check_render(b) {
        prepare.push(check);
    }
    b.phase(
        "Prepare the target",
        "Everything the install needs is downloaded and renders; nothing in the cluster changes.",
        prepare,
        Vec::new(),
    );

    let minutes = b.outage_minutes;
    let mut steps = vec![s(
        Action::ManualGate {
            question: format!(
                "Start the outage? Pod-to-pod traffic stops from here until each node is switched (about {minutes} min in total)."
            ),
            starts_outage: true,
        },
        "Open the maintenance window: from the next step the old CNI stops.",
        Vec::new(),
        "the window is announced and open",
        0,
    )];
    let mut rollback = Vec::new();
    let (settings, undo) = b.distribution_switch();
    steps.extend(settings);
    rollback.splice(0..0, undo);
    let (stop, undo) = b.stop_sources();
    steps.extend(stop);
    rollback.splice(0..0, undo);
    if b.replace_kube_proxy && b.cluster.talos {
        let patch = crate::artifacts::talos::disable_kube_proxy(b.cluster);
        let (apply, undo) = b.talos_patch(&patch, "Talos stops deploying kube-proxy");
        steps.extend(apply);
        rollback.splice(0..0, undo);
    }
    if b.replace_kube_proxy
        && let Some((delete, restore)) = b.delete_kube_proxy()
    {
        steps.push(delete);
        rollback.insert(0, restore);
    }
    if b.replace_kube_proxy {
        let (keep_off, undo) = b.keep_kube_proxy_off();
        steps.extend(keep_off);
        rollback.splice(0..0, undo);
    }
    b.phase(
        "Stop the old CNI",
        "The old CNI no longer runs and nothing recreates it. Pod networking is down from here until each node is switched.",
        steps,
        rollback,
    );

    b.phase(
        "Install the target",
        "The target's agents run on every node with their final settings.",
        install_steps,
        uninstall,
    );

    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    let calico_source = b.cluster.sources.contains(&CniKind::Calico);
    for batch in b.batches() {
        let mut probes = Vec::new();
        for node in &batch {
            let (clean, restore) = b.clean_node(&node.name, b.replace_kube_proxy);
            steps.extend(clean);
            rollback.splice(0..0, restore);
            steps.push(install::restart_target_agent(
                b,
                &node.name,
                format!(
                    "Restart the {target} agent on {} so it sets the node up and writes its CNI config, and wait until it is ready.",
                    node.name
                ),
            ));
            if calico_source {
                steps.push(ops::clear_network_unavailable(&node.name));
            }
            steps.push(b.recreate_pods(node));
            probes.push(Probe::PodAddress {
                node: node.name.clone(),
                // Calico's IPAM hands out blocks of its own pool, not the node's podCIDR.
                cidr: (target == CniKind::Calico).then(|| install::cluster_pod_cidr(b)),
            });
            probes.push(Probe::NodeInventory {
                node: node.name.clone(),
                pod: crate::agent::pod(
                    "inventory",
                    &node.name,
                    &b.agent_image(),
                    crate::agent::cniswap(&["node", "inventory", "--root", "/host"]),
                ),
            });
        }
        let names: Vec<String> = batch.iter().map(|n| n.name.clone()).collect();
        steps.push(ops::verify(
            &format!("pod network on {}", names.join(", ")),
            probes,
            format!(
                "Check the batch ({}): new pods get addresses and each node's first CNI config is the target's.",
                names.join(", ")
            ),
            "every probe passes",
        ));
    }
    if target == CniKind::Cilium {
        // The final values reached every agent by the per-node restarts above.
        let values = crate::artifacts::cilium::final_values(
            b.cluster,
            b.replace_kube_proxy,
            &b.options.values,
            None,
        );
        steps.push(install::verify_cilium_settings(b, &values));
    }
    b.phase(
        "Switch the nodes",
        "Every node runs only the target; every pod was recreated on it.",
        steps,
        rollback,
    );
}

/// With Helm, the chart and values are checked by rendering them before the outage.
fn check_render(b: &mut Builder) -> Option<crate::ops::S> {
    if install::method(b) != crate::context::InstallChoice::Helm {
        return None;
    }
    let (render, file) = match b.options.target {
        CniKind::Cilium => (
            install::cilium_render(b, "artifacts/cilium/values-final.yaml"),
            "artifacts/cilium/rendered-check.yaml",
        ),
        CniKind::Calico => {
            let (repo, chart, version) = install::chart_source(
                b,
                install::TIGERA_REPO,
                "tigera-operator",
                crate::context::CALICO_VERSION,
            );
            (
                Render::Helm {
                    repo,
                    chart,
                    version,
                    release: "calico".into(),
                    namespace: "tigera-operator".into(),
                    values: vec!["artifacts/calico/values.yaml".into()],
                },
                "artifacts/calico/rendered-check.yaml",
            )
        }
        _ => return None,
    };
    Some(install::render_step(
        render,
        file,
        "Check that the chart downloads and renders with the values (the file is not applied).",
    ))
}
