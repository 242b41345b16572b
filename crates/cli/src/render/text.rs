//! The human report: grouped, aligned, coloured on terminals (anstream strips colour in pipes).

use super::{BOLD, DIM, GREEN, RED, YELLOW, count, finding_line};
use cniswap_model::text::escape_control;
use cniswap_model::{CniFacts, Facts, Finding, NodeRole};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Write;

/// Rows shown per list before pointing at `-o json`.
const MAX_ROWS: usize = 25;

/// A copy of `value` with every string escaped ([`escape_control`]): names, paths and values
/// in the report come from the input, and must not put lines or escape sequences of their own
/// on the terminal.
fn escaped<T: Serialize + DeserializeOwned + Clone>(value: &T) -> T {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let std::borrow::Cow::Owned(e) = escape_control(s) {
                    *s = e;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    serde_json::to_value(value)
        .ok()
        .and_then(|mut v| {
            walk(&mut v);
            serde_json::from_value(v).ok()
        })
        .unwrap_or_else(|| value.clone())
}

pub fn report(facts: &Facts, findings: &[Finding]) -> String {
    let facts = &escaped(facts);
    let mut out = String::new();
    let o = &mut out;
    let inputs = &facts.inputs;
    let _ = writeln!(
        o,
        "{BOLD}cniswap inspect{BOLD:#} {DIM}{} ({} files, {} objects){DIM:#}",
        inputs.source, inputs.files_read, inputs.objects
    );

    if !inputs.unread.is_empty() {
        // First, because every section below is partial without these kinds.
        section(
            o,
            &format!("{RED}Could not read ({}){RED:#}", inputs.unread.len()),
        );
        for kind in inputs.unread.iter().take(MAX_ROWS) {
            let _ = writeln!(o, "  {}: {DIM}{}{DIM:#}", kind.qualified(), kind.cause);
        }
        more(o, inputs.unread.len());
        let _ = writeln!(
            o,
            "  {YELLOW}what depends on these kinds below is unknown, not absent{YELLOW:#}"
        );
    }

    section(o, "Platform");
    let p = &facts.platform;
    let version = p
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let formats: Vec<String> = facts
        .talos
        .iter()
        .flat_map(|t| {
            t.configs
                .iter()
                .filter_map(|c| c.format.map(|f| f.to_string()))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let format = if formats.is_empty() {
        String::new()
    } else {
        format!(", config format {}", formats.join(" + "))
    };
    let _ = writeln!(
        o,
        "  {BOLD}{}{version}{BOLD:#}{format}{}",
        p.kind,
        if p.omni { ", managed by Omni" } else { "" }
    );
    for e in &p.evidence {
        let _ = writeln!(o, "  {DIM}from {e}{DIM:#}");
    }
    let versions: Vec<String> = facts
        .kubernetes
        .versions
        .iter()
        .map(|v| format!("{} on {}", v.version, count(v.nodes, "node", "nodes")))
        .collect();
    if !versions.is_empty() {
        let mixed = if versions.len() > 1 {
            format!("  {YELLOW}kubelet versions differ: an upgrade is in flight{YELLOW:#}")
        } else {
            String::new()
        };
        let _ = writeln!(o, "  Kubernetes {}{mixed}", versions.join(", "));
    }
    // Say which versions are mixed: Talos and kubelet upgrades are separate.
    let mut talos: std::collections::BTreeMap<&str, usize> = Default::default();
    for node in &facts.nodes {
        if let Some(v) = &node.talos_version {
            *talos.entry(v).or_default() += 1;
        }
    }
    if talos.len() > 1 {
        let list: Vec<String> = talos
            .iter()
            .map(|(v, n)| format!("{v} on {}", count(*n, "node", "nodes")))
            .collect();
        let _ = writeln!(
            o,
            "  {YELLOW}Talos versions differ ({}): an upgrade is in flight{YELLOW:#}",
            list.join(", ")
        );
    }

    section(o, &format!("Nodes ({})", facts.nodes.len()));
    if facts.nodes.is_empty() {
        let _ = writeln!(o, "  {DIM}no Node objects in the input{DIM:#}");
    } else {
        let mut rows = vec![row(&[
            "NAME",
            "ROLE",
            "INTERNAL-IP",
            "ZONE",
            "KUBELET",
            "OS",
            "PODS",
            "STATUS",
        ])];
        for n in facts.nodes.iter().take(MAX_ROWS) {
            let role = if n.roles.contains(&NodeRole::ControlPlane) {
                "control-plane"
            } else {
                "worker"
            };
            let mut status = vec![if n.ready {
                "Ready".to_string()
            } else {
                "NotReady".to_string()
            }];
            if n.unschedulable {
                status.push("SchedulingDisabled".to_string());
            }
            if let Some(reason) = &n.network_unavailable {
                status.push(format!("NetworkUnavailable({reason})"));
            }
            rows.push(vec![
                n.name.clone(),
                role.to_string(),
                dash(n.internal_ip.as_deref()),
                dash(n.zone.as_deref()),
                dash(n.kubelet_version.as_deref()),
                n.talos_version
                    .clone()
                    .map(|v| format!("Talos {v}"))
                    .or_else(|| n.os_image.clone())
                    .unwrap_or_else(|| "-".into()),
                format!("{}", n.pods),
                status.join(","),
            ]);
        }
        table(o, &rows);
        more(o, facts.nodes.len());
    }

    section(o, "CNIs");
    if facts.cnis.is_empty() {
        let _ = writeln!(
            o,
            "  {YELLOW}no CNI found{YELLOW:#} {DIM}(no known DaemonSet, ConfigMap, Calico/Cilium resource or Helm values){DIM:#}"
        );
    }
    let running = facts.cnis.iter().filter(|c| c.running).count();
    for cni in &facts.cnis {
        cni_block(o, cni, facts.nodes.len());
    }
    // Which agent runs where, and each node's pod range (the node table above leaves them out).
    let agents = super::cni_table::table(facts);
    if !agents.is_empty() {
        o.push('\n');
        o.push_str(&agents);
    }
    if running > 1 {
        let _ = writeln!(
            o,
            "  {RED}{running} CNIs have running agents{RED:#}: a migration is in progress or was left half-done"
        );
    }

    section(o, "kube-proxy");
    let kp = &facts.kube_proxy;
    let state = if kp.present {
        format!("{GREEN}present{GREEN:#}")
    } else {
        "not deployed".to_string()
    };
    let mode = kp
        .mode
        .as_deref()
        .map(|m| format!(", mode {m}"))
        .unwrap_or_default();
    let ds = kp
        .daemonset
        .as_deref()
        .map(|d| format!(", DaemonSet {d} {}/{} ready", kp.ready, kp.desired))
        .unwrap_or_default();
    let _ = writeln!(o, "  {state}{mode}{ds}");
    if let Some(cni) = kp.replaced_by {
        let _ = writeln!(
            o,
            "  services also handled by {cni} (kube-proxy replacement)"
        );
    }
    if let Some(disabled) = kp.disabled_in_talos {
        let _ = writeln!(
            o,
            "  Talos config: kube-proxy {}",
            if disabled { "disabled" } else { "enabled" }
        );
    }
    for e in &kp.evidence {
        let _ = writeln!(o, "  {DIM}from {e}{DIM:#}");
    }

    section(o, "CIDRs");
    let mut rows = Vec::new();
    for c in &facts.cidrs.pod {
        rows.push(vec!["pod".to_string(), c.cidr.clone(), c.source.clone()]);
    }
    for c in &facts.cidrs.service {
        rows.push(vec![
            "service".to_string(),
            c.cidr.clone(),
            c.source.clone(),
        ]);
    }
    if rows.is_empty() {
        let _ = writeln!(o, "  {DIM}no pod or service CIDR found{DIM:#}");
    } else {
        table(o, &rows);
    }
    for overlap in &facts.cidrs.overlaps {
        let _ = writeln!(o, "  {RED}!{RED:#} {overlap}");
    }

    section(o, "DNS");
    match &facts.dns.coredns {
        Some(c) => {
            let spread = if c.nodes.len() < 2 {
                format!(" {YELLOW}(not spread over 2+ nodes){YELLOW:#}")
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "  CoreDNS {}: {}/{} ready on {}{spread}",
                c.deployment,
                c.ready,
                c.replicas,
                if c.nodes.is_empty() {
                    "-".to_string()
                } else {
                    c.nodes.join(", ")
                }
            );
        }
        None => {
            let _ = writeln!(o, "  {DIM}no CoreDNS Deployment in the input{DIM:#}");
        }
    }
    if let Some(h) = &facts.dns.talos_host_dns {
        let _ = writeln!(
            o,
            "  Talos hostDNS: enabled {}, forwardKubeDNSToHost {} {DIM}({}){DIM:#}",
            opt_bool(h.enabled),
            opt_bool(h.forward_kube_dns_to_host),
            h.source
        );
    }

    if let Some(talos) = &facts.talos {
        section(o, &format!("Talos configs ({})", talos.configs.len()));
        let mut rows = vec![row(&[
            "SOURCE",
            "KIND",
            "FORMAT",
            "ROLE",
            "CNI",
            "KUBE-PROXY",
            "KUBEPRISM",
            "HOSTDNS-FWD",
            "REDACTED",
        ])];
        for c in talos.configs.iter().take(MAX_ROWS) {
            let cni = match (&c.cni, c.flannel_document) {
                (Some(n), true) => format!("{n} (KubeFlannelCNIConfig)"),
                (Some(n), false) if !c.cni_urls.is_empty() => {
                    format!("{n} ({} urls)", c.cni_urls.len())
                }
                (Some(n), false) => n.clone(),
                (None, _) => "-".to_string(),
            };
            let proxy = match c.proxy_disabled {
                Some(true) => "disabled".to_string(),
                Some(false) => c
                    .proxy_mode
                    .clone()
                    .unwrap_or_else(|| "enabled".to_string()),
                None => "-".to_string(),
            };
            let prism = match (c.kube_prism_enabled, c.kube_prism_port) {
                (Some(true), Some(p)) => format!("on :{p}"),
                (Some(true), None) => "on".to_string(),
                (Some(false), _) => "off".to_string(),
                (None, _) => "-".to_string(),
            };
            rows.push(vec![
                c.node
                    .clone()
                    .map(|n| format!("{} ({n})", c.file))
                    .unwrap_or_else(|| c.file.clone()),
                c.kind.clone(),
                c.format
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "-".into()),
                dash(c.role.as_deref()),
                cni,
                proxy,
                prism,
                opt_bool(c.forward_kube_dns_to_host),
                if c.redacted.is_empty() {
                    "-".into()
                } else {
                    count(c.redacted.len(), "secret", "secrets")
                },
            ]);
        }
        table(o, &rows);
        more(o, talos.configs.len());
    }

    workloads(o, facts);

    if !inputs.skipped.is_empty() {
        section(o, &format!("Skipped inputs ({})", inputs.skipped.len()));
        for s in inputs.skipped.iter().take(MAX_ROWS) {
            let _ = writeln!(o, "  {}: {DIM}{}{DIM:#}", s.path, s.reason);
        }
        more(o, inputs.skipped.len());
    }

    section(o, "Findings");
    if findings.is_empty() {
        let _ = writeln!(
            o,
            "  {GREEN}none{GREEN:#} {DIM}(the rules these inputs support found nothing; `cniswap lint` checks config files too){DIM:#}"
        );
    }
    for f in findings {
        let _ = writeln!(o, "  {}", finding_line(f));
    }
    out
}

fn workloads(o: &mut String, facts: &Facts) {
    let w = &facts.workloads;
    section(o, "Workload risks");
    let _ = writeln!(
        o,
        "  {} pods: {} on the pod network, {} hostNetwork",
        w.pods, w.pod_network_pods, w.host_network_pods
    );
    let warn = |o: &mut String, text: String| {
        let _ = writeln!(o, "  {YELLOW}!{YELLOW:#} {text}");
    };
    if !w.bare_pods.is_empty() {
        let names: Vec<String> = w
            .bare_pods
            .iter()
            .take(5)
            .map(|p| format!("{}/{}", p.namespace.as_deref().unwrap_or(""), p.name))
            .collect();
        warn(
            o,
            format!(
                "{} without a controller, deleted and not recreated on a switch: {}{}",
                count(w.bare_pods.len(), "bare pod", "bare pods"),
                names.join(", "),
                ellipsis(w.bare_pods.len(), 5)
            ),
        );
    }
    for pdb in &w.blocking_pdbs {
        warn(
            o,
            format!(
                "PodDisruptionBudget {}/{} blocks drains: {}",
                pdb.namespace, pdb.name, pdb.reason
            ),
        );
    }
    if !w.storage_on_pod_network.is_empty() {
        warn(
            o,
            format!(
                "storage on the pod network: {} (volumes cannot attach while the pod network is down)",
                w.storage_on_pod_network.join(", ")
            ),
        );
    }
    for hook in &w.fail_closed_webhooks {
        warn(
            o,
            format!(
                "fail-closed webhook {} ({}) served by pods on the pod network ({})",
                hook.configuration, hook.webhook, hook.service
            ),
        );
    }
    let policies: Vec<String> = w
        .cni_policies
        .iter()
        .map(|p| format!("{} {} ({})", p.count, p.kind, p.owner))
        .collect();
    let _ = writeln!(
        o,
        "  NetworkPolicies: {}; CNI-specific policies: {}",
        w.network_policies,
        if policies.is_empty() {
            "none".to_string()
        } else {
            policies.join(", ")
        }
    );
    if !w.stale_cni_resources.is_empty() {
        let items: Vec<String> = w
            .stale_cni_resources
            .iter()
            .take(8)
            .map(|s| format!("{} {} ({})", s.kind, s.name, s.owner))
            .collect();
        warn(
            o,
            format!(
                "{} of CNIs that no longer run: {}{}",
                count(w.stale_cni_resources.len(), "leftover", "leftovers"),
                items.join(", "),
                ellipsis(w.stale_cni_resources.len(), 8)
            ),
        );
    }
}

fn cni_block(o: &mut String, cni: &CniFacts, total_nodes: usize) {
    let (mark, state) = if cni.running {
        (
            format!("{GREEN}●{GREEN:#}"),
            format!(
                "running on {} of {} nodes ({}/{} agents ready)",
                cni.active_nodes.len(),
                total_nodes,
                cni.ready,
                cni.desired
            ),
        )
    } else {
        (
            format!("{YELLOW}○{YELLOW:#}"),
            "not running (configuration or leftovers only)".to_string(),
        )
    };
    let version = cni
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let install = cni
        .install
        .map(|i| format!(", installed by {i}"))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "  {mark} {BOLD}{}{version}{BOLD:#}: {state}{install}",
        cni.kind
    );
    let mut details = Vec::new();
    if let Some(f) = &cni.flannel {
        details.push(format!(
            "backend {}{}{}",
            f.backend.as_deref().unwrap_or("?"),
            f.port
                .map(|p| format!(", UDP port {p}"))
                .unwrap_or_default(),
            f.direct_routing
                .filter(|d| *d)
                .map(|_| ", DirectRouting")
                .unwrap_or_default()
        ));
    }
    if let Some(c) = &cni.calico {
        details.push(format!(
            "dataplane {}, encapsulation {}, BGP {}{}",
            c.dataplane.as_deref().unwrap_or("?"),
            if c.encapsulation.is_empty() {
                "?".to_string()
            } else {
                c.encapsulation.join("/")
            },
            c.bgp.as_deref().unwrap_or("?"),
            c.kube_proxy_management
                .as_deref()
                .map(|k| format!(", kubeProxyManagement {k}"))
                .unwrap_or_default()
        ));
        details.push(format!("from {}", c.sources.join(", ")));
    }
    if let Some(c) = &cni.cilium {
        let routing = match c.routing_mode.as_deref() {
            Some("native") => "routing native".to_string(),
            other => format!(
                "routing {} ({}{})",
                other.unwrap_or("tunnel?"),
                c.tunnel_protocol.as_deref().unwrap_or("vxlan"),
                c.tunnel_port
                    .map(|p| format!(" port {p}"))
                    .unwrap_or_default()
            ),
        };
        details.push(format!(
            "{routing}, IPAM {}, kubeProxyReplacement {}",
            c.ipam_mode.as_deref().unwrap_or("?"),
            c.kube_proxy_replacement.as_deref().unwrap_or("?")
        ));
        details.push(format!(
            "cni.exclusive {}, cni.customConf {}, bpf.masquerade {}, bpf.hostLegacyRouting {}{}",
            opt_bool(c.cni_exclusive),
            opt_bool(c.custom_cni_conf),
            opt_bool(c.bpf_masquerade),
            opt_bool(c.host_legacy_routing),
            c.policy_enforcement_mode
                .as_deref()
                .map(|p| format!(", policy {p}"))
                .unwrap_or_default()
        ));
        if c.k8s_service_host.is_some() {
            details.push(format!(
                "API endpoint {}:{}",
                c.k8s_service_host.as_deref().unwrap_or("?"),
                c.k8s_service_port.as_deref().unwrap_or("?")
            ));
        }
        details.push(format!("from {}", c.sources.join(", ")));
    }
    if !cni.pod_cidrs.is_empty() {
        details.push(format!("pod CIDR {}", cni.pod_cidrs.join(", ")));
    }
    for d in details {
        let _ = writeln!(o, "      {d}");
    }
    for e in &cni.evidence {
        let _ = writeln!(o, "      {DIM}from {e}{DIM:#}");
    }
}

fn section(o: &mut String, title: &str) {
    let _ = writeln!(o, "\n{BOLD}{title}{BOLD:#}");
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn table(o: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (i, cell) in r.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
}

fn more(o: &mut String, total: usize) {
    if total > MAX_ROWS {
        let _ = writeln!(
            o,
            "  {DIM}... and {} more (use -o json for all){DIM:#}",
            total - MAX_ROWS
        );
    }
}

fn ellipsis(total: usize, shown: usize) -> String {
    if total > shown {
        format!(" and {} more", total - shown)
    } else {
        String::new()
    }
}

fn dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

fn opt_bool(value: Option<bool>) -> String {
    value.map_or("?".to_string(), |b| b.to_string())
}
