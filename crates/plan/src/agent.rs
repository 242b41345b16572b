//! Commands that run on one node: the cniswap node agent (or a shell for a few files) in a
//! privileged pod in kube-system, pinned to the node by nodeName, tolerating every taint,
//! with the host's root at /host. `kubectl run --attach` streams its output (a dry run is
//! seen before the real run), waits for it to end and exits with the container's code, so
//! the next step never starts before it finished, and a failure stops the plan.

use crate::model::NodePod;
use crate::shell::Sh;
use serde_json::json;

/// Where node pods run: exempt from Pod Security enforcement on Talos (its default
/// admission configuration exempts kube-system) and on kubeadm.
pub const NAMESPACE: &str = "kube-system";

/// Busybox for probe pods and file changes on nodes (pinned).
pub const BUSYBOX: &str = "busybox:1.36";

pub fn pod(purpose: &str, node: &str, image: &str, command: Vec<String>) -> NodePod {
    NodePod {
        namespace: NAMESPACE.into(),
        name: crate::names::pod_name(purpose, node),
        image: image.into(),
        command,
    }
}

/// The pod as `kubectl run --overrides` takes it (a JSON merge over the generated pod).
fn overrides(node: &str, pod: &NodePod) -> String {
    json!({
        "apiVersion": "v1",
        "spec": {
            "nodeName": node,
            "hostNetwork": true,
            "hostPID": true,
            "restartPolicy": "Never",
            "priorityClassName": "system-node-critical",
            "automountServiceAccountToken": false,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": pod.name,
                "image": pod.image,
                "command": pod.command,
                "securityContext": {"privileged": true},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}],
            }],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        },
    })
    .to_string()
}

/// Runs the pod on the node, attached; exits with its exit code. A pod left by an
/// interrupted run is removed first.
pub fn run(node: &str, pod: &NodePod) -> Vec<Sh> {
    let image = format!("--image={}", pod.image);
    let overrides = format!("--overrides={}", overrides(node, pod));
    vec![
        sh!(
            "kubectl -n {} delete pod {} --ignore-not-found --wait=true",
            pod.namespace,
            pod.name
        ),
        sh!(
            "kubectl -n {} run {} {} --restart=Never --rm --attach --quiet --pod-running-timeout=5m {}",
            pod.namespace,
            pod.name,
            image,
            overrides
        ),
    ]
}

/// The cniswap node agent's command line (`cniswap node ...` with the host at /host).
pub fn cniswap(args: &[&str]) -> Vec<String> {
    std::iter::once("cniswap")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_is_pinned_privileged_and_attached() {
        let p = pod(
            "clean",
            "w1;touch x",
            "ghcr.io/cniswap/cniswap:0.1.0",
            cniswap(&["node", "inventory", "--root", "/host"]),
        );
        let commands = run("w1;touch x", &p);
        let text = commands[1].as_str();
        assert!(text.contains("--rm --attach"), "{text}");
        assert!(
            text.starts_with("kubectl -n kube-system run cniswap-clean-"),
            "{text}"
        );
        let spec: serde_json::Value =
            serde_json::from_str(&overrides("w1;touch x", &p)).unwrap_or_default();
        assert_eq!(spec["spec"]["nodeName"], "w1;touch x");
        assert_eq!(
            spec["spec"]["containers"][0]["securityContext"]["privileged"],
            true
        );
        assert_eq!(spec["spec"]["tolerations"][0]["operator"], "Exists");
    }
}
