//! One module per rule, grouped like RULES.md. Each file holds the rule's metadata, its check
//! and its tests; its documentation is docs/rules/<ID>.md.

pub mod calico;
pub mod cilium;
pub mod flannel;
pub mod migration;
pub mod node;
pub mod talos;

/// What every rule file uses.
pub(crate) mod prelude {
    pub(crate) use super::{count, plural};
    pub use crate::context::Context;
    pub use crate::rule::{Emitter, Input, Rule, RuleMeta};
    pub use cniswap_config::Node;
    pub use cniswap_model::{CniKind, Severity};
}

/// `one` or `many`, by `n`.
pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `1 pod`, `2 pods`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// Whether two CIDRs overlap; unparsable text never overlaps.
pub(crate) fn cidrs_overlap(a: &str, b: &str) -> bool {
    match (
        a.trim().parse::<ipnet::IpNet>(),
        b.trim().parse::<ipnet::IpNet>(),
    ) {
        (Ok(a), Ok(b)) => a.contains(&b.network()) || b.contains(&a.network()),
        _ => false,
    }
}

/// The IP address in an address-like text: `10.0.0.5`, `10.0.0.5/24`, `https://10.0.0.5:6443`,
/// `[fd00::1]:6443`; `None` for names and anything else.
pub(crate) fn address_in(text: &str) -> Option<std::net::IpAddr> {
    let text = text.trim();
    let host = text.split_once("://").map_or(text, |(_, rest)| rest);
    let host = host.split('/').next().unwrap_or(host);
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    if let Some(inner) = host.strip_prefix('[') {
        return inner.split(']').next()?.parse().ok();
    }
    let (ip, _port) = host.rsplit_once(':')?;
    ip.parse().ok()
}

/// Whether `inner` lies entirely inside `outer`.
pub(crate) fn cidr_within(inner: &str, outer: &str) -> Option<bool> {
    let inner = inner.trim().parse::<ipnet::IpNet>().ok()?;
    let outer = outer.trim().parse::<ipnet::IpNet>().ok()?;
    Some(outer.contains(&inner))
}

/// The cluster's pod CIDR as Kubernetes knows it (Talos podSubnets, kube-controller-manager
/// --cluster-cidr, kubeadm-config), with where it came from. CNI pools are not included.
pub(crate) fn cluster_pod_cidrs(ctx: &crate::context::Context) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for view in &ctx.talos {
        let subnets = view.pod_subnets();
        let source = if subnets.node.is_some() {
            format!("Talos podSubnets ({})", view.describe())
        } else {
            "Talos default podSubnets".to_string()
        };
        out.extend(subnets.value.into_iter().map(|c| (c, source.clone())));
    }
    if out.is_empty() {
        out.extend(
            ctx.facts
                .cidrs
                .pod
                .iter()
                .filter(|c| !c.source.ends_with(" pool") && !c.source.starts_with("node "))
                .map(|c| (c.cidr.clone(), c.source.clone())),
        );
    }
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

#[cfg(test)]
mod address_tests {
    #[test]
    fn addresses_are_found_in_their_usual_spellings() {
        let ip = |t| super::address_in(t).map(|a| a.to_string());
        assert_eq!(ip("10.0.0.5/24").as_deref(), Some("10.0.0.5"));
        assert_eq!(ip("https://10.0.0.5:6443").as_deref(), Some("10.0.0.5"));
        assert_eq!(ip("[fd00::1]:6443").as_deref(), Some("fd00::1"));
        assert_eq!(ip("https://api.example.com:6443"), None);
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Rule tests lint small fixture trees written to a temporary directory, through the same
    //! loader and fact detection the CLI uses.
    use crate::{SuppressionConfig, Target, lint};
    use cniswap_model::{CniKind, Finding};

    pub fn run(files: &[(&str, &str)], target: Target) -> Vec<Finding> {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write fixture");
        }
        let snapshot = cniswap_snapshot::load(dir.path()).expect("fixture loads");
        let facts = cniswap_facts::detect(&snapshot);
        lint(&snapshot, &facts, target, &SuppressionConfig::default()).findings
    }

    pub fn fired(rule: &str, files: &[(&str, &str)], target: Target) -> Vec<Finding> {
        run(files, target)
            .into_iter()
            .filter(|f| f.rule == rule)
            .collect()
    }

    pub fn to(cni: CniKind) -> Target {
        Target {
            cni: Some(cni),
            ..Target::default()
        }
    }

    pub fn rolling(cni: CniKind) -> Target {
        Target {
            cni: Some(cni),
            strategy: Some(crate::Strategy::Rolling),
            ..Target::default()
        }
    }

    /// A minimal cluster dump: `nodes` Talos nodes, the given DaemonSets running on all of
    /// them (`namespace/name` and the agent image), and extra objects.
    pub fn cluster(nodes: usize, daemonsets: &[(&str, &str)], extra: &str) -> String {
        let mut out = String::new();
        for i in 0..nodes {
            let role = if i == 0 {
                "node-role.kubernetes.io/control-plane: \"\"\n"
            } else {
                ""
            };
            out.push_str(&format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: n{i}\n  labels:\n    {role}kubernetes.io/hostname: n{i}\nspec:\n  podCIDR: 10.244.{i}.0/24\nstatus:\n  nodeInfo:\n    osImage: Talos (v1.10.5)\n    kubeletVersion: v1.33.2\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n"
            ));
        }
        for (full, image) in daemonsets {
            let (ns, name) = full.split_once('/').expect("namespace/name");
            out.push_str(&format!(
                "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    k8s-app: {name}\nspec:\n  selector:\n    matchLabels:\n      k8s-app: {name}\n  template:\n    metadata:\n      labels:\n        k8s-app: {name}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\nstatus:\n  desiredNumberScheduled: {nodes}\n  numberReady: {nodes}\n---\n"
            ));
            for i in 0..nodes {
                out.push_str(&format!(
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}-{i}\n  namespace: {ns}\n  labels:\n    k8s-app: {name}\n  ownerReferences:\n  - kind: DaemonSet\n    name: {name}\n    controller: true\nspec:\n  nodeName: n{i}\n  hostNetwork: true\n  containers:\n  - name: {name}\n    image: {image}\nstatus:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n"
                ));
            }
        }
        out.push_str(extra);
        out
    }
}
