//! Drift: has the cluster moved away from what the plan was made for? Checked before the first
//! step and before each phase. The migration itself changes which CNIs run and may retire
//! kube-proxy, so those changes are expected; anything else stops the run.

use cniswap_model::Facts;
use cniswap_plan::Plan;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The facts a plan depends on, in a form that compares exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub nodes: BTreeSet<String>,
    /// Running CNIs and the pod CIDRs (pools) each allocates from.
    pub cnis: BTreeMap<String, Vec<String>>,
    pub kube_proxy: bool,
    pub pod_cidrs: Vec<String>,
    pub service_cidrs: Vec<String>,
}

impl Fingerprint {
    pub fn from_facts(facts: &Facts) -> Fingerprint {
        let mut pod: Vec<String> = facts.cidrs.pod.iter().map(|c| c.cidr.clone()).collect();
        let mut service: Vec<String> = facts.cidrs.service.iter().map(|c| c.cidr.clone()).collect();
        pod.sort();
        pod.dedup();
        service.sort();
        service.dedup();
        Fingerprint {
            nodes: facts.nodes.iter().map(|n| n.name.clone()).collect(),
            cnis: facts
                .cnis
                .iter()
                .filter(|c| c.running)
                .map(|c| {
                    let mut pools = c.pod_cidrs.clone();
                    pools.sort();
                    pools.dedup();
                    (c.kind.to_string(), pools)
                })
                .collect(),
            kube_proxy: facts.kube_proxy.present,
            pod_cidrs: pod,
            service_cidrs: service,
        }
    }
}

/// The nodes a plan was made for.
pub fn plan_nodes(plan: &Plan) -> BTreeSet<String> {
    let mut nodes: BTreeSet<String> = plan
        .estimates
        .per_node
        .iter()
        .map(|n| n.node.clone())
        .collect();
    for phase in &plan.phases {
        for step in phase.steps.iter().chain(&phase.rollback) {
            if let Some(node) = crate::effect::node_of(&step.action)
                && node != "all"
            {
                nodes.insert(node.to_string());
            }
        }
    }
    nodes
}

/// Differences that stop the run, each a sentence. `started`: some step already ran.
pub fn differences(
    plan: &Plan,
    baseline: Option<&Fingerprint>,
    now: &Fingerprint,
    started: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let known = plan_nodes(plan);
    for node in &known {
        if !now.nodes.contains(node) {
            out.push(format!(
                "node {node} is in the plan but no longer in the cluster"
            ));
        }
    }
    if !plan.estimates.per_node.is_empty() {
        for node in &now.nodes {
            if !known.contains(node) {
                out.push(format!(
                    "node {node} joined after the plan was made: the plan would leave it on the old CNI"
                ));
            }
        }
    }
    let expected: BTreeSet<&str> = plan
        .from
        .iter()
        .map(String::as_str)
        .chain([plan.to.as_str()])
        .collect();
    for cni in now.cnis.keys() {
        if !expected.contains(cni.as_str()) {
            out.push(format!(
                "{cni} now runs in the cluster; the plan migrates {} to {} and knows nothing of it",
                plan.from.join(" + "),
                plan.to
            ));
        }
    }
    if !started {
        for cni in &plan.from {
            if !now.cnis.contains_key(cni) {
                out.push(format!(
                    "{cni} (the plan's source) does not run in the cluster any more"
                ));
            }
        }
    }
    if let Some(then) = baseline {
        // Retiring kube-proxy is the plan's own doing when it replaces it.
        let retired = plan.kube_proxy == "replace" && !now.kube_proxy;
        if then.kube_proxy != now.kube_proxy && !retired {
            out.push(format!(
                "kube-proxy was {} when the run began and is {} now",
                present(then.kube_proxy),
                present(now.kube_proxy)
            ));
        }
        // The target's pool appears and the sources' pools go: the plan's own doing.
        let target_pools: BTreeSet<&String> =
            now.cnis.get(&plan.to).into_iter().flatten().collect();
        let source_pools: BTreeSet<&String> = then
            .cnis
            .iter()
            .filter(|(cni, _)| plan.from.contains(cni))
            .flat_map(|(_, pools)| pools)
            .collect();
        let added = now
            .pod_cidrs
            .iter()
            .any(|c| !then.pod_cidrs.contains(c) && !target_pools.contains(c));
        let removed = then
            .pod_cidrs
            .iter()
            .any(|c| !now.pod_cidrs.contains(c) && !source_pools.contains(c));
        if added || removed {
            out.push(format!(
                "the cluster's pod CIDRs changed from [{}] to [{}]",
                then.pod_cidrs.join(", "),
                now.pod_cidrs.join(", ")
            ));
        }
        if then.service_cidrs != now.service_cidrs {
            out.push(format!(
                "the service CIDRs changed from [{}] to [{}]",
                then.service_cidrs.join(", "),
                now.service_cidrs.join(", ")
            ));
        }
        for (cni, pools) in &then.cnis {
            if let Some(current) = now.cnis.get(cni)
                && current != pools
                && !current.is_empty()
            {
                out.push(format!(
                    "{cni}'s pools changed from [{}] to [{}]",
                    pools.join(", "),
                    current.join(", ")
                ));
            }
        }
    }
    out
}

fn present(yes: bool) -> &'static str {
    if yes { "deployed" } else { "absent" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        serde_saphyr::from_str(
            r#"
schema_version: 2
cluster: c
platform: kubeadm
from: [flannel]
to: cilium
strategy: rolling
strategy_reason: r
kube_proxy: keep
install: helm
agent_image: a
preflight: []
estimates:
  per_node:
  - {node: w1, role: worker, pods_recreated: 0, interruption_seconds: 0}
  - {node: w2, role: worker, pods_recreated: 0, interruption_seconds: 0}
  total_minutes: 1
  longest_outage_minutes: 1
  exceeds_token_lifetime: false
  assumptions: []
phases: []
artifacts: []
"#,
        )
        .unwrap()
    }

    fn print(nodes: &[&str], cnis: &[(&str, &[&str])]) -> Fingerprint {
        Fingerprint {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            cnis: cnis
                .iter()
                .map(|(k, p)| (k.to_string(), p.iter().map(|s| s.to_string()).collect()))
                .collect(),
            kube_proxy: true,
            // As facts have them: every running CNI's pool is a pod CIDR.
            pod_cidrs: cnis
                .iter()
                .flat_map(|(_, p)| p.iter().map(|s| s.to_string()))
                .collect(),
            service_cidrs: vec!["10.96.0.0/12".into()],
        }
    }

    #[test]
    fn the_migration_itself_is_not_drift() {
        let plan = plan();
        let start = print(&["w1", "w2"], &[("flannel", &["10.244.0.0/16"])]);
        assert!(differences(&plan, None, &start, false).is_empty());
        let middle = print(
            &["w1", "w2"],
            &[
                ("flannel", &["10.244.0.0/16"]),
                ("cilium", &["10.245.0.0/16"]),
            ],
        );
        assert!(differences(&plan, Some(&start), &middle, true).is_empty());
        let end = print(&["w1", "w2"], &[("cilium", &["10.245.0.0/16"])]);
        assert!(differences(&plan, Some(&start), &end, true).is_empty());
        // A pod range nobody in the plan owns is drift.
        let mut stray = middle.clone();
        stray.pod_cidrs.push("10.99.0.0/16".into());
        assert_eq!(differences(&plan, Some(&start), &stray, true).len(), 1);
    }

    #[test]
    fn nodes_cnis_proxy_and_pools_that_moved_stop_the_run() {
        let plan = plan();
        let start = print(&["w1", "w2"], &[("flannel", &["10.244.0.0/16"])]);
        let mut now = print(
            &["w1", "w3"],
            &[("flannel", &["10.250.0.0/16"]), ("calico", &[])],
        );
        now.kube_proxy = false;
        let diffs = differences(&plan, Some(&start), &now, true);
        assert_eq!(
            diffs,
            vec![
                "node w2 is in the plan but no longer in the cluster",
                "node w3 joined after the plan was made: the plan would leave it on the old CNI",
                "calico now runs in the cluster; the plan migrates flannel to cilium and knows nothing of it",
                "kube-proxy was deployed when the run began and is absent now",
                "the cluster's pod CIDRs changed from [10.244.0.0/16] to [10.250.0.0/16]",
                "flannel's pools changed from [10.244.0.0/16] to [10.250.0.0/16]",
            ]
        );
        let gone = print(&["w1", "w2"], &[]);
        assert_eq!(
            differences(&plan, None, &gone, false),
            vec!["flannel (the plan's source) does not run in the cluster any more"]
        );
    }
}
