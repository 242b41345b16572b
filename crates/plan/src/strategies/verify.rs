//! The Verify phase: what "the cluster works on the target" means. Probe pods pinned to their
//! nodes (nodeName bypasses the scheduler, cordons and taints; they tolerate every taint) check
//! pod-to-pod traffic across nodes, cluster DNS by its fully qualified name and a Service; then
//! the target's own health. Each check is a typed probe, so a `cniswap verify` run can take
//! their place.

use super::Builder;
use crate::install;
use crate::model::Probe;
use crate::ops;
use cniswap_model::CniKind;

pub fn build(b: &mut Builder) {
    let target = b.options.target;
    let mut probes = vec![Probe::NodesReady, Probe::NoPodStuck];
    let nodes = &b.cluster.nodes;
    if let (Some(first), Some(last)) = (nodes.first(), nodes.last()) {
        probes.push(Probe::PodToPod {
            from: first.name.clone(),
            to: last.name.clone(),
        });
    }
    let domain = &b.cluster.dns_domain;
    probes.push(Probe::Dns {
        name: format!("kubernetes.default.svc.{domain}"),
    });
    probes.push(Probe::Service {
        url: format!("https://kubernetes.default.svc.{domain}/healthz"),
    });
    // Calico's flannel-migration manifests run calico-node in kube-system, without the operator.
    let calico_manifests =
        super::rolling::uses_calico_migration_manifests(target, b.options.strategy);
    let (ns, ds) = if calico_manifests {
        ("kube-system".to_string(), "calico-node".to_string())
    } else {
        install::agent_daemonset(b.cluster, target)
    };
    probes.push(Probe::AgentsReady {
        namespace: ns,
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
    if target == CniKind::Calico && !calico_manifests {
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
