//! The Verify phase: what "the cluster works on the target" means, as commands. Two probe pods
//! pinned to different nodes (nodeName bypasses the scheduler, cordons and taints) check
//! pod-to-pod traffic across nodes, cluster DNS and a Service; then the target's own health.

use super::{Builder, s};
use crate::install;
use crate::model::Action;
use cniswap_model::CniKind;

pub fn build(b: &mut Builder) {
    let target = b.options.target;
    let mut steps = vec![s(
        Action::Verify { check: "nodes and pods".into() },
        "Every node is Ready and no pod is stuck.",
        vec![
            "kubectl get nodes -o wide".into(),
            "kubectl get pods -A -o wide --field-selector=status.phase!=Running,status.phase!=Succeeded".into(),
        ],
        "all nodes Ready; the second command lists no pod",
        600,
    )];
    let nodes = &b.cluster.nodes;
    if let (Some(first), Some(last)) = (nodes.first(), nodes.last()) {
        let probe = |name: &str, node: &str| {
            format!(
                r#"kubectl run {name} --image=busybox:1.36 --restart=Never --overrides='{{"spec":{{"nodeName":"{node}"}}}}' -- sleep 900"#
            )
        };
        let across = if first.name == last.name {
            "on its only node"
        } else {
            "across nodes"
        };
        steps.push(s(
            Action::Verify { check: format!("pod-to-pod {across}, DNS, Services") },
            format!("Pod-to-pod traffic {across} ({} to {}), cluster DNS and the kubernetes Service from a pod.", first.name, last.name),
            vec![
                probe("cniswap-probe-a", &first.name),
                probe("cniswap-probe-b", &last.name),
                "kubectl wait --for=condition=Ready pod/cniswap-probe-a pod/cniswap-probe-b --timeout=3m".into(),
                r#"kubectl exec cniswap-probe-a -- ping -c 3 -W 2 "$(kubectl get pod cniswap-probe-b -o jsonpath='{.status.podIP}')""#.into(),
                "kubectl exec cniswap-probe-a -- nslookup kubernetes.default".into(),
                "kubectl exec cniswap-probe-b -- wget -q -T 5 -O /dev/null --no-check-certificate https://kubernetes.default.svc/healthz".into(),
                "kubectl delete pod cniswap-probe-a cniswap-probe-b --wait=false".into(),
            ],
            "ping answers, the name resolves, and /healthz answers (or says Unauthorized, which also proves the path)",
            600,
        ));
    }
    // Calico's flannel-migration manifests run calico-node in kube-system, without the operator.
    let calico_manifests =
        super::rolling::uses_calico_migration_manifests(target, b.options.strategy);
    let (ns, ds) = if calico_manifests {
        ("kube-system".to_string(), "calico-node".to_string())
    } else {
        install::agent_daemonset(b.cluster, target)
    };
    let mut health = vec![install::wait_agent_command(&ns, &ds)];
    match target {
        CniKind::Cilium => {
            health.push("kubectl -n kube-system exec ds/cilium -- cilium-dbg status --brief".into())
        }
        CniKind::Calico if !calico_manifests => health.push("kubectl get tigerastatus".into()),
        _ => {}
    }
    health.push("cniswap inspect".into());
    steps.push(s(
        Action::Verify {
            check: format!("{target} healthy, nothing of the old CNI left on nodes"),
        },
        format!("The {target} agent is ready everywhere, and cniswap finds no error."),
        health,
        "the agent is ready on every node and `cniswap inspect` exits 0",
        600,
    ));
    b.phase(
        "Verify",
        "The cluster works on the target: pod-to-pod across nodes, Services, DNS.",
        steps,
        vec![s(
            Action::Verify {
                check: "nothing to undo".into(),
            },
            "Verification changes nothing (the probe pods are deleted by its last command).",
            vec!["kubectl delete pod cniswap-probe-a cniswap-probe-b --ignore-not-found".into()],
            "n/a",
            60,
        )],
    );
}
