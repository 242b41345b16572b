//! Issue 17 item 4: k3s and RKE2 plans switch the distribution's own CNI, network policy
//! controller and kube-proxy off the distribution's way: per node (servers first, one at a
//! time, then agents), the host and its unit named, each restart checked; RKE2's kube-proxy
//! static pod manifest removed and its mirror pod waited for; RKE2's Canal removed by its
//! HelmChart, never its DaemonSet; no kubeadm object deleted where none exists.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

mod common;

use cniswap_model::{CniKind, PlatformKind};
use cniswap_plan::{Action, KubeProxyChoice, Plan, PlanOptions, Probe, Step, StrategyChoice};
use common::{assert_invariants, generated_snapshot, options};

/// A distribution's nodes: n0 the server (a control plane), n1 and n2 agents; an app pod on
/// each. `extra` per node (annotations) and cluster objects after them.
fn nodes(kubelet: &str, args_key: &str, backend_annotations: bool) -> String {
    let mut yaml = String::new();
    for i in 0..3 {
        let role = if i == 0 {
            "    node-role.kubernetes.io/control-plane: \"true\"\n"
        } else {
            ""
        };
        let mut annotations = String::new();
        if backend_annotations {
            annotations.push_str("    flannel.alpha.coreos.com/backend-type: vxlan\n");
        }
        if i == 0 {
            annotations.push_str(&format!("    {args_key}: '[\"server\",\"--cluster-cidr\",\"10.42.0.0/16\",\"--service-cidr\",\"10.43.0.0/16\"]'\n"));
        }
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: n{i}\n  annotations:\n{annotations}  labels:\n{role}    kubernetes.io/hostname: n{i}\nspec:\n  podCIDR: 10.42.{i}.0/24\nstatus:\n  addresses:\n  - type: InternalIP\n    address: 192.168.1.{}\n  nodeInfo:\n    osImage: Ubuntu 24.04\n    kubeletVersion: {kubelet}\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n",
            10 + i
        ));
        yaml.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{i}\n  namespace: default\n  ownerReferences:\n  - kind: ReplicaSet\n    name: app\n    controller: true\nspec:\n  nodeName: n{i}\n  containers:\n  - name: app\n    image: app:1\nstatus:\n  phase: Running\n---\n"));
    }
    yaml
}

/// k3s with its embedded Flannel and kube-proxy (node-args without --disable-kube-proxy).
fn k3s() -> String {
    nodes("v1.33.2+k3s1", "k3s.io/node-args", true)
}

/// RKE2 with its rke2-canal chart and kube-proxy static pods on every node.
fn rke2() -> String {
    let mut yaml = nodes("v1.33.2+rke2r1", "rke2.io/node-args", true);
    let calico = "rancher/hardened-calico:v3.29.2-build20250306";
    let flannel = "rancher/hardened-flannel:v0.26.5-build20250306";
    yaml.push_str(&format!("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: rke2-canal\n  namespace: kube-system\n  labels:\n    app.kubernetes.io/managed-by: Helm\n  annotations:\n    meta.helm.sh/release-name: rke2-canal\nspec:\n  selector:\n    matchLabels:\n      k8s-app: canal\n  template:\n    metadata:\n      labels:\n        k8s-app: canal\n    spec:\n      containers:\n      - name: calico-node\n        image: {calico}\n      - name: kube-flannel\n        image: {flannel}\nstatus:\n  desiredNumberScheduled: 3\n  numberReady: 3\n---\n"));
    yaml.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rke2-canal-config\n  namespace: kube-system\ndata:\n  net-conf.json: '{\"Network\": \"10.42.0.0/16\", \"Backend\": {\"Type\": \"vxlan\"}}'\n---\n");
    for i in 0..3 {
        yaml.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: rke2-canal-{i}\n  namespace: kube-system\n  labels:\n    k8s-app: canal\n  ownerReferences:\n  - kind: DaemonSet\n    name: rke2-canal\n    controller: true\nspec:\n  nodeName: n{i}\n  hostNetwork: true\n  containers:\n  - name: calico-node\n    image: {calico}\nstatus:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n"));
        yaml.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-proxy-n{i}\n  namespace: kube-system\n  annotations:\n    kubernetes.io/config.mirror: abc{i}\n  ownerReferences:\n  - kind: Node\n    name: n{i}\n    controller: true\nspec:\n  nodeName: n{i}\n  hostNetwork: true\n  containers:\n  - name: kube-proxy\n    image: rancher/hardened-kubernetes:v1.33.2-rke2r1\nstatus:\n  phase: Running\n---\n"));
    }
    yaml
}

fn plan(yaml: &str, target: CniKind, kube_proxy: KubeProxyChoice) -> Plan {
    let (_dir, snapshot) = generated_snapshot(yaml);
    let opts = PlanOptions {
        kube_proxy: Some(kube_proxy),
        ..options(target, StrategyChoice::Auto)
    };
    let facts = cniswap_facts::detect(&snapshot);
    let plan = cniswap_plan::plan(&snapshot, &facts, &opts)
        .unwrap_or_else(|e| panic!("{e:#?}"))
        .plan;
    assert_invariants(&plan);
    plan
}

fn forward(plan: &Plan) -> Vec<&Step> {
    plan.phases.iter().flat_map(|p| &p.steps).collect()
}

fn rollback(plan: &Plan) -> Vec<&Step> {
    plan.phases.iter().rev().flat_map(|p| &p.rollback).collect()
}

/// One node service step: node, unit, drop-in settings, removed files, whether it undoes.
struct Service<'a> {
    node: &'a str,
    unit: &'a str,
    settings: &'a [String],
    remove: &'a [String],
    restore: bool,
}

/// The node service steps, in order.
fn services<'a>(steps: &[&'a Step]) -> Vec<Service<'a>> {
    steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::NodeService {
                node,
                unit,
                settings,
                remove,
                restore,
                ..
            } => Some(Service {
                node,
                unit,
                settings,
                remove,
                restore: *restore,
            }),
            _ => None,
        })
        .collect()
}

/// Each node's restart is followed at once by its check: Ready, a new invocation of the
/// unit (a pod on that node).
fn each_restart_is_checked(steps: &[&Step]) {
    for (i, step) in steps.iter().enumerate() {
        let Action::NodeService { node, unit, .. } = &step.action else {
            continue;
        };
        assert!(
            step.description.contains(node.as_str()) && step.description.contains(unit.as_str()),
            "{}",
            step.description
        );
        let Action::Verify { probes, .. } = &steps[i + 1].action else {
            panic!("{} is not followed by its check", step.id);
        };
        assert!(probes.contains(&Probe::NodesReady), "{probes:?}");
        assert!(
            probes
                .iter()
                .any(|p| matches!(p, Probe::NodeCheck { node: n, .. } if n == node)),
            "{probes:?}"
        );
    }
}

fn deletes_object(steps: &[&Step], kind: &str, name: &str) -> bool {
    steps.iter().any(|s| {
        matches!(&s.action, Action::DeleteObject { object, .. } if object.kind == kind && object.name == name)
    })
}

#[test]
fn k3s_restarts_each_node_own_service_servers_first_then_agents() {
    let yaml = k3s();
    let (_dir, snapshot) = generated_snapshot(&yaml);
    assert_eq!(
        cniswap_facts::detect(&snapshot).platform.kind,
        PlatformKind::K3s
    );
    for (target, proxy) in [
        (CniKind::Cilium, KubeProxyChoice::Replace),
        (CniKind::Calico, KubeProxyChoice::Keep),
    ] {
        let plan = plan(&yaml, target, proxy);
        let steps = forward(&plan);
        let restarts = services(&steps);
        let order: Vec<(&str, &str)> = restarts.iter().map(|r| (r.node, r.unit)).collect();
        assert_eq!(
            order,
            vec![("n0", "k3s"), ("n1", "k3s-agent"), ("n2", "k3s-agent")],
            "{target}: one step per node, the server first"
        );
        let mut expected = vec!["flannel-backend: none", "disable-network-policy: true"];
        if proxy == KubeProxyChoice::Replace {
            expected.push("disable-kube-proxy: true");
        }
        assert_eq!(
            restarts[0].settings,
            expected.as_slice(),
            "{target}: the server's drop-in"
        );
        // Agents take the settings from their server: restarted, their config untouched.
        assert!(
            restarts[1..]
                .iter()
                .all(|r| r.settings.is_empty() && r.remove.is_empty() && !r.restore)
        );
        each_restart_is_checked(&steps);
        // kube-proxy's health port is checked closed only where kube-proxy goes.
        let port_checked = steps.iter().any(|s| {
            matches!(&s.action, Action::Verify { probes, .. } if probes.iter().any(|p| matches!(p, Probe::NodeCheck { pod, .. } if pod.command.iter().any(|c| c.contains("/proc/net/tcp")))))
        });
        assert_eq!(port_checked, proxy == KubeProxyChoice::Replace, "{target}");
        // Nothing of kubeadm is deleted: k3s has no kube-proxy DaemonSet or ConfigMap.
        assert!(
            !deletes_object(&steps, "daemonset", "kube-proxy"),
            "{target}"
        );
        assert!(
            !deletes_object(&steps, "configmap", "kube-proxy"),
            "{target}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| s.commands.iter().any(|c| c.contains("kubeadm-config")))
        );
        // The rollback undoes node by node in reverse, each restart checked.
        let back = rollback(&plan);
        let undo: Vec<(&str, bool)> = services(&back)
            .iter()
            .map(|r| (r.node, r.restore))
            .collect();
        assert_eq!(
            undo,
            vec![("n2", true), ("n1", true), ("n0", true)],
            "{target}"
        );
        each_restart_is_checked(&back);
        // Every restart runs in the host's namespaces from a pod pinned to its node.
        for step in &steps {
            if let Action::NodeService { pod, .. } = &step.action {
                assert_eq!(&pod.command[..3], &["nsenter", "-t", "1"]);
            }
        }
    }
}

#[test]
fn rke2_canal_goes_by_its_helmchart_and_kube_proxy_by_its_manifest() {
    let yaml = rke2();
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let facts = cniswap_facts::detect(&snapshot);
    assert_eq!(facts.platform.kind, PlatformKind::Rke2);
    let kinds: Vec<CniKind> = facts.cnis.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec![CniKind::Canal]);
    let plan = plan(&yaml, CniKind::Cilium, KubeProxyChoice::Replace);
    assert_eq!(plan.from, vec!["canal".to_string()]);
    let steps = forward(&plan);
    let restarts = services(&steps);
    let order: Vec<(&str, &str)> = restarts.iter().map(|r| (r.node, r.unit)).collect();
    assert_eq!(
        order,
        vec![
            ("n0", "rke2-server"),
            ("n1", "rke2-agent"),
            ("n2", "rke2-agent")
        ]
    );
    assert_eq!(
        restarts[0].settings,
        &[
            "cni: none".to_string(),
            "disable-kube-proxy: true".to_string()
        ]
    );
    let manifest = "/var/lib/rancher/rke2/agent/pod-manifests/kube-proxy.yaml".to_string();
    for r in &restarts {
        assert!(
            r.remove.contains(&manifest),
            "{} keeps kube-proxy's manifest",
            r.node
        );
    }
    // The server's addon manifest would have the deploy controller apply the chart again.
    assert!(
        restarts[0]
            .remove
            .contains(&"/var/lib/rancher/rke2/server/manifests/rke2-canal.yaml".to_string())
    );
    each_restart_is_checked(&steps);
    // Each node's check waits for its kube-proxy mirror pod to go.
    for node in ["n0", "n1", "n2"] {
        let name = format!("kube-proxy-{node}");
        assert!(
            steps.iter().any(|s| matches!(&s.action, Action::Verify { probes, .. } if probes.iter().any(|p| matches!(p, Probe::Absent { object } if object.name == name)))),
            "no wait for {name}"
        );
    }
    // Canal goes the RKE2 way: its HelmChart (backed up), then its DaemonSet is waited for.
    // `plural.group` names one group's kind for apply's discovery and for kubectl alike.
    let chart = steps
        .iter()
        .position(|s| {
            matches!(&s.action, Action::DeleteObject { object, .. } if object.kind == "helmcharts.helm.cattle.io" && object.name == "rke2-canal" && object.namespace.as_deref() == Some("kube-system"))
        })
        .expect("the rke2-canal HelmChart is deleted");
    let last_restart = steps
        .iter()
        .rposition(|s| matches!(s.action, Action::NodeService { .. }))
        .unwrap();
    assert!(
        chart > last_restart,
        "the chart goes after every server says cni: none"
    );
    assert!(
        matches!(&steps[chart + 1].action, Action::Verify { probes, .. } if probes.iter().any(|p| matches!(p, Probe::Absent { object } if object.kind == "daemonset" && object.name == "rke2-canal")))
    );
    assert!(
        !deletes_object(&steps, "daemonset", "rke2-canal"),
        "the helm controller would recreate it"
    );
    assert!(!deletes_object(&steps, "daemonset", "kube-proxy"));
    assert!(!deletes_object(&steps, "configmap", "kube-proxy"));
    // Upstream Canal's objects do not exist here: the chart's uninstall took RKE2's.
    assert!(!deletes_object(&steps, "configmap", "canal-config"));
    assert!(!deletes_object(
        &steps,
        "deployment",
        "calico-kube-controllers"
    ));
    // RKE2 calls a CNI switch on a running cluster untested: the plan says so and how.
    assert!(
        plan.estimates
            .risks
            .iter()
            .any(|r| r.effect.contains("RKE2 documents switching the CNI")),
        "{:#?}",
        plan.estimates.risks
    );
    // The rollback puts the HelmChart back from its backup.
    assert!(rollback(&plan).iter().any(
        |s| matches!(&s.action, Action::RestoreBackup { path, .. } if path.contains("rke2-canal"))
    ));
}

#[test]
fn rke2_keeping_kube_proxy_touches_no_manifest() {
    let plan = plan(&rke2(), CniKind::Calico, KubeProxyChoice::Keep);
    let steps = forward(&plan);
    let restarts = services(&steps);
    // Only the server: RKE2's CNI is the servers' chart, and kube-proxy stays.
    let order: Vec<(&str, &str)> = restarts.iter().map(|r| (r.node, r.unit)).collect();
    assert_eq!(order, vec![("n0", "rke2-server")]);
    assert_eq!(restarts[0].settings, &["cni: none".to_string()]);
    assert_eq!(
        restarts[0].remove,
        &["/var/lib/rancher/rke2/server/manifests/rke2-canal.yaml".to_string()]
    );
}
