//! Cutover: one window. Talos stops rendering the old CNI (control planes, then workers), the
//! old CNI is backed up and removed, the target installed; then per batch of nodes the old
//! node state is cleaned and the node's pods recreated. Cross-node traffic between switched and
//! unswitched nodes is down during the window; the plan says how long.

use super::{Builder, s};
use crate::install;
use crate::model::Action;

pub fn build(b: &mut Builder) {
    let target = b.options.target;
    let sources = b.cluster.sources.clone();

    // Stop the old CNI (and kube-proxy when it is replaced).
    let (mut steps, mut rollback) = b.distribution_settings();
    let (stop, undo) = b.stop_sources();
    steps.extend(stop);
    rollback.splice(0..0, undo);
    if b.replace_kube_proxy && b.cluster.talos {
        let patch = crate::artifacts::talos::disable_kube_proxy(b.cluster);
        let (apply, undo) = b.talos_patch(&patch, "Talos stops deploying kube-proxy");
        steps.extend(apply);
        rollback.splice(0..0, undo);
    }
    if b.replace_kube_proxy && b.cluster.facts.kube_proxy.present {
        let (delete, restore) = b.delete_kube_proxy();
        steps.push(delete);
        rollback.insert(0, restore);
    }
    b.phase(
        "Stop the old CNI",
        "The old CNI no longer runs and nothing recreates it. Pod networking is down from here until each node is switched.",
        steps,
        rollback,
    );

    let (steps, rollback) = install::target(b, None);
    b.phase(
        "Install the target",
        "The target's agents run on every node with their final settings.",
        steps,
        rollback,
    );

    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    for batch in b.batches() {
        for node in &batch {
            for cni in &sources {
                let (clean, restore) = b.node_clean(node, *cni, b.replace_kube_proxy);
                steps.push(clean);
                rollback.insert(0, restore);
            }
            let (ns, ds) = install::agent_daemonset(b.cluster, target);
            steps.push(s(
                Action::WaitDaemonSetReady { namespace: ns.clone(), name: ds.clone(), node: Some(node.name.clone()) },
                format!("Restart the {target} agent on {} so it writes its CNI config, and wait until it is ready.", node.name),
                install::restart_agent_commands(&ns, &ds, &node.name),
                format!("the {target} pod on {} is Ready", node.name),
                300,
            ));
            let mut recreate = s(
                Action::RecreatePods {
                    node: node.name.clone(),
                },
                format!(
                    "Recreate the pod-network pods on {} so they get the new network.",
                    node.name
                ),
                vec![format!(
                    "kubectl get pods -A --field-selector spec.nodeName={},status.phase=Running -o json | jq -r '.items[] | select(.spec.hostNetwork != true) | \"-n \\(.metadata.namespace) \\(.metadata.name)\"' | xargs -L1 kubectl delete pod",
                    node.name
                )],
                format!(
                    "every pod-network pod on {} was created after the switch",
                    node.name
                ),
                600,
            );
            recreate.pods = node.pods.clone();
            steps.push(recreate);
        }
        let names: Vec<String> = batch.iter().map(|n| n.name.clone()).collect();
        steps.push(s(
            Action::Verify {
                check: format!("pod network on {}", names.join(", ")),
            },
            format!(
                "Check the batch: pods Ready, cross-node traffic and DNS from {}.",
                names.join(", ")
            ),
            vec![
                "cniswap inspect".into(),
                "kubectl get pods -A -o wide --field-selector status.phase!=Running".into(),
            ],
            "no pod of the batch is stuck in ContainerCreating",
            600,
        ));
    }
    b.phase(
        "Switch the nodes",
        "Every node runs only the target; every pod was recreated on it.",
        steps,
        rollback,
    );
}
