//! Verification probes as commands. Probe pods are pinned to their node by nodeName (which
//! bypasses the scheduler, so a cordoned node is probed too) and tolerate every taint, as
//! Cilium's migration guide does with its per-node check pod.

use crate::model::{ObjectRef, Probe};
use crate::shell::{Code, Sh, argv};
use serde_json::json;

/// Where probe pods run (unprivileged; Pod Security baseline admits them).
pub const NAMESPACE: &str = "default";

/// IPv4 membership of `$ip` in `$cidr` (POSIX awk; exits 0 when inside).
const IN_CIDR: &str = r#"function n(a, p) { split(a, p, "."); return ((p[1] * 256 + p[2]) * 256 + p[3]) * 256 + p[4] } BEGIN { split(cidr, c, "/"); m = 2 ^ (32 - c[2]); exit !(int(n(ip) / m) == int(n(c[1]) / m)) }"#;

fn pinned(node: &str) -> String {
    json!({
        "apiVersion": "v1",
        "spec": {"nodeName": node, "tolerations": [{"operator": "Exists"}]},
    })
    .to_string()
}

/// Starts a sleeping busybox pod pinned to `node` and waits until it is Ready.
fn start_probe_pod(name: &str, node: &str, image: &str) -> Vec<Sh> {
    let overrides = format!("--overrides={}", pinned(node));
    let image = format!("--image={image}");
    let pod = format!("pod/{name}");
    vec![
        sh!(
            "kubectl -n {} delete pod {} --ignore-not-found --wait=true",
            NAMESPACE,
            name
        ),
        sh!(
            "kubectl -n {} run {} {} --restart=Never {} -- sleep 900",
            NAMESPACE,
            name,
            image,
            overrides
        ),
        sh!(
            "kubectl -n {} wait --for=condition=Ready {} --timeout=3m",
            NAMESPACE,
            pod
        ),
    ]
}

fn delete_probe_pods(names: &[String]) -> Sh {
    let mut args = vec![
        "kubectl".to_string(),
        "-n".into(),
        NAMESPACE.into(),
        "delete".into(),
        "pod".into(),
    ];
    args.extend(names.iter().cloned());
    args.push("--ignore-not-found".into());
    args.push("--wait=false".into());
    argv(&args)
}

/// The commands that check one probe.
/// A probe's commands; its pods run `image` (a shell with sleep and wget).
pub fn commands(probe: &Probe, image: &str) -> Vec<Sh> {
    match probe {
        Probe::NodesReady => vec![sh!(
            "kubectl wait --for=condition=Ready nodes --all --timeout=5m"
        )],
        Probe::NoPodStuck => vec![sh!(
            "out=$(kubectl get pods -A --field-selector=status.phase!=Running,status.phase!=Succeeded -o name) && [ -z \"$out\" ]"
        )],
        Probe::PodToPod { from, to } => {
            let a = crate::names::pod_name("probe-a", from);
            let b = crate::names::pod_name("probe-b", to);
            let mut out = start_probe_pod(&a, from, image);
            out.extend(start_probe_pod(&b, to, image));
            out.push(sh!(
                "ip=$(kubectl -n {} get pod {} -o jsonpath='{{.status.podIP}}') && kubectl -n {} exec {} -- ping -c 3 -W 2 \"$ip\"",
                NAMESPACE,
                b,
                NAMESPACE,
                a
            ));
            out.push(delete_probe_pods(&[a, b]));
            out
        }
        Probe::Dns { name } => {
            let pod = crate::names::pod_name("probe-dns", name);
            let mut out = start_probe_pod_anywhere(&pod, image);
            out.push(sh!(
                "kubectl -n {} exec {} -- nslookup {}",
                NAMESPACE,
                pod,
                name
            ));
            out.push(delete_probe_pods(&[pod]));
            out
        }
        Probe::Service { url } => {
            let pod = crate::names::pod_name("probe-svc", "cluster");
            let mut out = start_probe_pod_anywhere(&pod, image);
            out.push(sh!(
                "kubectl -n {} exec {} -- wget -q -T 5 -O /dev/null --no-check-certificate {}",
                NAMESPACE,
                pod,
                url
            ));
            out.push(delete_probe_pods(&[pod]));
            out
        }
        Probe::PodAddress { node, cidr } => {
            let pod = crate::names::pod_name("probe-ip", node);
            let mut out = start_probe_pod(&pod, node, image);
            let range = match cidr {
                Some(c) => sh!("cidr={}", c),
                None => sh!(
                    "cidr=$(kubectl get node {} -o jsonpath='{{.spec.podCIDR}}')",
                    node
                ),
            };
            out.push(sh!(
                "ip=$(kubectl -n {} get pod {} -o jsonpath='{{.status.podIP}}') && {} && echo \"$ip in $cidr?\" && awk -v ip=\"$ip\" -v cidr=\"$cidr\" {}",
                NAMESPACE,
                pod,
                Code(&range),
                IN_CIDR
            ));
            out.push(delete_probe_pods(&[pod]));
            out
        }
        Probe::AgentsReady {
            namespace,
            daemonset,
        } => vec![sh!(
            "nodes=$(kubectl get nodes -o name | wc -l) && out=$(kubectl -n {} get daemonset {} -o jsonpath='{{.status.desiredNumberScheduled}} {{.status.numberReady}} {{.status.updatedNumberScheduled}}') && echo \"nodes: $nodes; desired, ready, updated: $out\" && [ \"$out\" = \"$nodes $nodes $nodes\" ]",
            namespace,
            daemonset
        )],
        Probe::NodesLabelled { key, value } => {
            let selector = format!("{key}!={value}");
            vec![sh!(
                "out=$(kubectl get nodes -l {} -o name) && [ -z \"$out\" ]",
                selector
            )]
        }
        Probe::NoNodeLabelled { key, except } => {
            let selector = match except {
                Some(v) => format!("{key},{key}!={v}"),
                None => key.clone(),
            };
            vec![sh!(
                "out=$(kubectl get nodes -l {} -o name) && [ -z \"$out\" ]",
                selector
            )]
        }
        // These wait for something another controller does: retried, not failed at once.
        Probe::Absent { object } => vec![until(&absent(object), &sh!("[ -z \"$out\" ]"))],
        Probe::Present { object } => vec![match &object.namespace {
            Some(ns) => sh!(
                "kubectl -n {} get {} {} -o name",
                ns,
                object.kind,
                object.name
            ),
            None => sh!("kubectl get {} {} -o name", object.kind, object.name),
        }],
        Probe::NoPodsMatching {
            namespace,
            selector,
            node,
        } => {
            let get = match node {
                Some(node) => {
                    let field = format!("spec.nodeName={node}");
                    sh!(
                        "kubectl -n {} get pods -l {} --field-selector {} -o name",
                        namespace,
                        selector,
                        field
                    )
                }
                None => sh!("kubectl -n {} get pods -l {} -o name", namespace, selector),
            };
            vec![until(&get, &sh!("[ -z \"$out\" ]"))]
        }
        Probe::NoPods { namespace } => vec![until(
            &sh!("kubectl -n {} get pods -o name", namespace),
            &sh!("[ -z \"$out\" ]"),
        )],
        Probe::FieldIn {
            resource,
            namespace,
            field,
            allowed,
        } => {
            let path = format!("jsonpath={{range .items[*]}}{{{field}}}{{\"\\n\"}}{{end}}");
            let pattern = format!("^({})$", allowed.join("|"));
            let read = match namespace {
                Some(ns) => sh!("kubectl -n {} get {} -o {}", ns, resource, path),
                None => sh!("kubectl get {} -A -o {}", resource, path),
            };
            // Every non-empty line is one of the allowed values.
            vec![until(
                &read,
                &sh!(
                    "! printf '%s\\n' \"$out\" | grep -v '^$' | grep -qvE -- {}",
                    pattern
                ),
            )]
        }
        // The config holds secrets: only its network and proxy parts are shown, for a person
        // to compare with the patch.
        Probe::TalosConfigHas {
            endpoints, file, ..
        } => vec![sh!(
            "talosctl -n {} get machineconfig -o yaml | grep -E -A3 -- {}; cat {}",
            endpoints.join(","),
            "^ *(cni|proxy):|kind: (KubeFlannelCNIConfig|KubeProxyConfig|KubeExternalManifestConfig)",
            file
        )],
        Probe::NodeInventory { node, pod } | Probe::NodeCheck { node, pod, .. } => {
            crate::agent::run(node, pod)
        }
        Probe::Cniswap { args } => {
            let mut words = vec!["cniswap".to_string()];
            words.extend(args.iter().cloned());
            vec![argv(&words)]
        }
    }
}

fn start_probe_pod_anywhere(name: &str, image: &str) -> Vec<Sh> {
    let image = format!("--image={image}");
    let pod = format!("pod/{name}");
    vec![
        sh!(
            "kubectl -n {} delete pod {} --ignore-not-found --wait=true",
            NAMESPACE,
            name
        ),
        sh!(
            "kubectl -n {} run {} {} --restart=Never -- sleep 900",
            NAMESPACE,
            name,
            image
        ),
        sh!(
            "kubectl -n {} wait --for=condition=Ready {} --timeout=3m",
            NAMESPACE,
            pod
        ),
    ]
}

/// Seconds a runbook check of a state another controller brings about is retried.
pub const WAIT_SECONDS: u32 = 600;

/// Reads with `read` into `$out` every 5 s until `test` passes, failing after
/// [`WAIT_SECONDS`], or at once when the read itself fails (the cluster did not answer: a
/// person looks, then runs it again). In a subshell: a person pasting it keeps their shell.
pub fn until(read: &Sh, test: &Sh) -> Sh {
    sh!(
        "( t=0; while out=$({}); do {} && exit 0; t=$((t+5)); [ $t -lt {} ] || exit 1; sleep 5; done; exit 1 )",
        Code(read),
        Code(test),
        WAIT_SECONDS
    )
}

/// Reads the object's name (empty when it does not exist).
fn absent(object: &ObjectRef) -> Sh {
    match &object.namespace {
        Some(ns) => sh!(
            "kubectl -n {} get {} {} --ignore-not-found -o name",
            ns,
            object.kind,
            object.name
        ),
        None => sh!(
            "kubectl get {} {} --ignore-not-found -o name",
            object.kind,
            object.name
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_cidr(ip: &str, cidr: &str) -> bool {
        std::process::Command::new("awk")
            .args([
                "-v",
                &format!("ip={ip}"),
                "-v",
                &format!("cidr={cidr}"),
                IN_CIDR,
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or_default()
    }

    #[test]
    fn cidr_membership_is_exact() {
        assert!(in_cidr("10.245.3.7", "10.245.0.0/16"));
        assert!(!in_cidr("10.244.3.7", "10.245.0.0/16"));
        assert!(in_cidr("10.244.3.7", "10.244.3.0/24"));
        assert!(!in_cidr("10.244.4.7", "10.244.3.0/24"));
        assert!(in_cidr("172.16.1.2", "172.16.0.0/12"));
        assert!(in_cidr("172.31.255.2", "172.16.0.0/12"));
        assert!(!in_cidr("172.32.0.1", "172.16.0.0/12"));
        assert!(!in_cidr("", "10.0.0.0/8"));
    }
}
