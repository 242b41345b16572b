//! The Verify phase: what "the cluster works on the target" means. `cniswap verify` checks
//! every node and node pair (its probes tolerate every taint, so cordoned nodes count too):
//! pod to pod, Services, DNS by fully qualified name, the API server, host to pod, pod to host
//! and path MTU; then the target's own health.

use super::Builder;
use crate::install;
use crate::model::Probe;
use crate::ops;
use cniswap_model::CniKind;

/// `cniswap verify` with the plan's agent image; with `focus`, only the checks from or to that
/// node (against every node), what a rolling step runs after switching it.
pub fn cniswap_verify(image: &str, focus: Option<&str>, domain: Option<&str>) -> Probe {
    let mut args = vec!["verify".to_string(), "--image".into(), image.to_string()];
    if let Some(domain) = domain {
        args.push("--cluster-domain".into());
        args.push(domain.to_string());
    }
    if let Some(node) = focus {
        args.push("--focus".into());
        args.push(node.to_string());
    }
    Probe::Cniswap { args }
}

pub fn build(b: &mut Builder) {
    let target = b.options.target;
    let mut probes = vec![Probe::NodesReady, Probe::NoPodStuck];
    let nodes = &b.cluster.nodes;
    // Every node and node pair: pod to pod (same node and across), Services, DNS, the API
    // server, host to pod, pod to host and path MTU, with the cniswap image's probes.
    probes.push(cniswap_verify(
        &b.agent_image(),
        None,
        Some(&b.cluster.dns_domain),
    ));
    let (ns, ds) = install::target_daemonset(b);
    probes.push(Probe::AgentsReady {
        namespace: ns.clone(),
        daemonset: ds,
    });
    probes.push(Probe::Cniswap {
        args: vec!["inspect".into()],
    });
    let across = if nodes.len() > 1 {
        "pod-to-pod across nodes"
    } else {
        "pod-to-pod"
    };
    let mut steps = vec![ops::verify(
        &format!("{across}, DNS, Services, {target} ready everywhere"),
        probes,
        format!(
            "Nodes Ready, no pod stuck; {across}, cluster DNS and the kubernetes Service from pods; the {target} agent ready on every node; `cniswap inspect` clean."
        ),
        "every probe passes (a /healthz answer of Unauthorized also proves the path)",
    )];
    // Only the operator has a tigerastatus: not Calico by manifest or its flannel-migration
    // manifests (calico-node in kube-system).
    if target == CniKind::Calico && ns != "kube-system" {
        steps.push(crate::ops::s(
            crate::model::Action::Verify {
                goal: "Calico reports itself available".into(),
                probes: Vec::new(),
            },
            "Calico's operator reports every component available.",
            vec![sh!(
                "kubectl wait --for=condition=Available tigerastatus --all --timeout=5m"
            )],
            "every tigerastatus is Available",
            600,
        ));
    }
    b.phase(
        "Verify",
        "The cluster works on the target: pod-to-pod across nodes, Services, DNS.",
        steps,
        vec![super::nothing_to_undo(
            "Verification changes nothing (its probe pods are deleted by its commands).",
        )],
    );
}
