//! What the planner knows about the cluster, derived once from the snapshot and facts.

use cniswap_model::{CniKind, Facts, NodeRole, PlatformKind, TalosConfigFormat};
use cniswap_snapshot::Snapshot;
use std::collections::HashMap;

/// Chart and manifest versions the generated files pin (all seen released in shared/corpus:
/// Cilium chart 1.20.1, tigera-operator v3.32.1, Flannel v0.28.9).
pub const CILIUM_VERSION: &str = "1.20.1";
pub const CALICO_VERSION: &str = "v3.32.1";
pub const FLANNEL_VERSION: &str = "v0.28.9";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyChoice {
    Auto,
    Fresh,
    Cutover,
    Rolling,
}

/// How a switched node drops what the old CNI set up for its pods (`--reboot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RebootChoice {
    /// Reboot Talos nodes (cniswap does it with talosctl); recreate the pods elsewhere.
    #[default]
    Auto,
    /// Reboot every node (on other systems apply stops and the operator reboots it).
    Always,
    /// Never reboot: the node's pods are recreated on the new network, and the old CNI's
    /// interfaces and rules are removed by the node agent when the old CNI has gone.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeProxyChoice {
    Keep,
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallChoice {
    Helm,
    /// The CNI's own manifest, applied with kubectl (Calico's calico.yaml, no operator).
    Manifest,
    Manifests,
    TalosUrls,
    Omni,
}

impl InstallChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallChoice::Helm => "helm",
            InstallChoice::Manifest => "manifest",
            InstallChoice::Manifests => "manifests",
            InstallChoice::TalosUrls => "talos-urls",
            InstallChoice::Omni => "omni",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub target: CniKind,
    pub strategy: StrategyChoice,
    pub kube_proxy: Option<KubeProxyChoice>,
    pub install: Option<InstallChoice>,
    /// Extra Helm values for the target chart, merged under cniswap's required settings.
    pub values: Vec<serde_json::Value>,
    pub batch_size: usize,
    /// The node agent image (`--agent-image`); default [`default_agent_image`].
    pub agent_image: Option<String>,
    /// The cluster pod range when no record in the snapshot says it (`--pod-cidr`).
    pub pod_cidr: Option<String>,
    /// The highly available API address (`--api-endpoint HOST:PORT`) for a target that
    /// replaces kube-proxy, when the snapshot shows none.
    pub api_endpoint: Option<String>,
    /// Local charts, manifests and an image mirror (`--chart`, `--manifest`,
    /// `--image-registry`): installs that never reach the internet.
    pub local: crate::local::LocalSources,
    /// Whether switched nodes reboot (`--reboot`).
    pub reboot: RebootChoice,
    /// The image of the small pods the plan's checks and file edits run (`--helper-image`).
    pub helper_image: Option<String>,
}

/// The node agent image of this build.
pub fn default_agent_image() -> String {
    format!("ghcr.io/cniswap/cniswap:{}", env!("CARGO_PKG_VERSION"))
}

/// A node in migration order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanNode {
    pub name: String,
    pub control_plane: bool,
    pub zone: Option<String>,
    pub ip: Option<String>,
    /// Pods on the pod network (recreated when the node switches), `namespace/name`.
    pub pods: Vec<String>,
    /// Those of them without a controller: drain stops on them, and nobody recreates them.
    pub bare_pods: Vec<String>,
    /// Cordoned when the snapshot was taken (the plan keeps such cordons).
    pub unschedulable: bool,
}

pub struct Cluster<'a> {
    pub facts: &'a Facts,
    /// The cluster's own name and the record it was read from (see [`cluster_name`]).
    pub name: String,
    pub name_source: String,
    /// The Omni cluster name (from the snapshot's Omni patches, template, or the nodes'
    /// `omni.sidero.dev/cluster` label), when Omni manages the cluster and one was found.
    pub omni_cluster: Option<String>,
    /// Omni ConfigPatches of the snapshot: (id, file).
    pub omni_patches: Vec<(String, String)>,
    /// Whether kube-proxy runs: `None` when the snapshot cannot tell (no kube-system
    /// DaemonSet was read, and nothing else says).
    pub kube_proxy: Option<bool>,
    /// The cluster DNS domain (CoreDNS' `kubernetes` plugin zone), default cluster.local.
    pub dns_domain: String,
    pub talos: bool,
    pub talos_multidoc: bool,
    /// The manifest URLs of a Talos `cni.name: custom` config (a CNI Talos applies from URLs).
    pub talos_cni_urls: Vec<String>,
    pub omni: bool,
    pub omni_template: Option<String>,
    pub sources: Vec<CniKind>,
    pub nodes: Vec<PlanNode>,
    pub pod_cidrs: Vec<String>,
    pub kube_prism_port: Option<u16>,
    /// The API server address an agent uses without kube-proxy when KubePrism is not there:
    /// kubeadm's controlPlaneEndpoint, else the first control plane on 6443.
    pub api_endpoint: Option<(String, u16)>,
    /// Where `api_endpoint` came from; `None` when it is only the first control plane's
    /// address (one server, not a highly available endpoint).
    pub api_endpoint_source: Option<String>,
    /// The cluster's pod CIDR and where it was read (kubeadm-config, controller-manager,
    /// Talos, k3s/RKE2 node-args; or `--pod-cidr`): `None` when nothing says.
    pub pod_cidr: Option<crate::known::Sourced>,
    /// kubeadm's ClusterConfiguration (kube-system/kubeadm-config), as the snapshot holds it.
    pub kubeadm_configuration: Option<String>,
    /// Addresses Services answer on (cluster, external and load-balancer IPs).
    pub service_addresses: Vec<String>,
    /// Services of type LoadBalancer (`namespace/name`, class or none).
    pub load_balancers: Vec<(String, Option<String>)>,
    /// What hands out and announces load-balancer addresses (`Cilium LB-IPAM (...)`,
    /// `MetalLB (...)`, k3s ServiceLB, kube-vip), from the objects that run them, with the
    /// CNI that owns the provider (Cilium's LB-IPAM) or none.
    pub lb_providers: Vec<(Option<CniKind>, String)>,
    /// Replicas of every Deployment (`namespace/name`), to scale controllers back on rollback.
    pub deployment_replicas: HashMap<String, u32>,
    /// CNI-specific policy objects: (owner, kind, apiVersion, namespace, name).
    pub cni_policies: Vec<(CniKind, String, String, Option<String>, String)>,
    /// Pod-template labels of every DaemonSet (`namespace/name`).
    pub snapshot_daemonset_labels: HashMap<String, cniswap_snapshot::objects::Labels>,
    /// What each admission webhook can see of the pods the plan creates, keyed by
    /// (`Kind/configuration`, webhook).
    pub webhook_scopes: HashMap<(String, String), crate::webhooks::Scope>,
    /// Replicated storage whose health a rolling plan waits for between nodes.
    pub storage: Vec<crate::storage::Storage>,
}

impl<'a> Cluster<'a> {
    pub fn new(snapshot: &'a Snapshot, facts: &'a Facts, target: CniKind) -> Self {
        let talos = facts.platform.kind == PlatformKind::Talos || !snapshot.talos.is_empty();
        let configs = facts
            .talos
            .as_ref()
            .map(|t| t.configs.as_slice())
            .unwrap_or_default();
        let talos_multidoc = configs
            .iter()
            .any(|c| c.format == Some(TalosConfigFormat::MultiDocument))
            || facts
                .platform
                .version
                .as_deref()
                .and_then(minor)
                .is_some_and(|m| m >= 14);
        let omni = facts.platform.omni
            || snapshot
                .talos
                .iter()
                .any(|t| t.summary.kind.starts_with("omni"));
        let omni_template = snapshot.omni_templates.first().map(|t| t.file.clone());
        let omni_cluster = snapshot
            .omni_templates
            .iter()
            .find_map(|t| t.cluster.clone())
            .or_else(|| snapshot.talos.iter().find_map(|t| t.omni_cluster.clone()))
            .or_else(|| {
                snapshot
                    .objects
                    .nodes
                    .iter()
                    .find_map(|n| n.metadata.labels.get("omni.sidero.dev/cluster").cloned())
            })
            .filter(|_| omni);
        let omni_patches = snapshot
            .talos
            .iter()
            .filter_map(|t| {
                let id = t.omni_metadata.as_ref()?.get("id")?.as_str()?.to_string();
                // `file#id` names the patch in a file of several.
                let file = t.summary.file.split('#').next().unwrap_or_default();
                Some((id, file.to_string()))
            })
            .collect();
        let name = cluster_name(snapshot, omni_cluster.as_deref());
        let sources: Vec<CniKind> = facts
            .cnis
            .iter()
            .filter(|c| c.running && c.kind != target)
            .map(|c| c.kind)
            .collect();
        // Grouped once: a per-node scan of every pod is quadratic on large clusters.
        let mut pods_by_node: HashMap<&str, Vec<String>> = HashMap::new();
        for p in &snapshot.objects.pods {
            if let (Some(node), false) = (p.spec.node_name.as_deref(), p.spec.host_network) {
                pods_by_node.entry(node).or_default().push(format!(
                    "{}/{}",
                    p.metadata.namespace(),
                    p.metadata.name
                ));
            }
        }
        let mut bare_by_node: HashMap<&str, Vec<String>> = HashMap::new();
        for p in &facts.workloads.bare_pods {
            if let Some(node) = p.node.as_deref() {
                bare_by_node.entry(node).or_default().push(format!(
                    "{}/{}",
                    p.namespace.as_deref().unwrap_or("default"),
                    p.name
                ));
            }
        }
        let mut nodes: Vec<PlanNode> = facts
            .nodes
            .iter()
            .map(|n| PlanNode {
                name: n.name.clone(),
                control_plane: n.roles.contains(&NodeRole::ControlPlane),
                zone: n.zone.clone(),
                ip: n.internal_ip.clone(),
                pods: pods_by_node.remove(n.name.as_str()).unwrap_or_default(),
                bare_pods: bare_by_node.remove(n.name.as_str()).unwrap_or_default(),
                unschedulable: n.unschedulable,
            })
            .collect();
        nodes = crate::order::migration_order(nodes);
        // The cluster's own pod range (not CNI pools, not node allocations).
        let cidr = |v: &[cniswap_model::SourcedCidr], pool: bool| -> Vec<String> {
            let mut out: Vec<String> = v
                .iter()
                .filter(|c| {
                    pool || (!c.source.ends_with(" pool") && !c.source.starts_with("node "))
                })
                .map(|c| c.cidr.clone())
                .collect();
            out.sort();
            out.dedup();
            out
        };
        let effective = |get: &dyn Fn(&cniswap_model::TalosConfigFacts) -> Option<String>| {
            configs
                .iter()
                .filter(|c| c.kind == "full")
                .find_map(get)
                .or_else(|| configs.iter().rev().find_map(get))
        };
        // KubePrism: the effective config's setting; on Talos without any, the generated
        // default (enabled on 7445). Explicitly disabled: none (the API endpoint is used).
        let prism = effective(&|c| {
            c.kube_prism_enabled
                .map(|on| format!("{on}:{}", c.kube_prism_port.unwrap_or(7445)))
        });
        let kube_prism_port = match prism.as_deref().and_then(|p| p.split_once(':')) {
            Some(("true", port)) => port.parse().ok(),
            Some(_) => None,
            None if talos => Some(7445),
            None => None,
        };
        let talos_cni_urls = configs
            .iter()
            .filter(|c| c.kind == "full")
            .chain(configs.iter().rev())
            .find(|c| c.cni.is_some() || !c.cni_urls.is_empty())
            .filter(|c| c.cni.as_deref() == Some("custom"))
            .map(|c| c.cni_urls.clone())
            .unwrap_or_default();
        let deployment_replicas = snapshot
            .objects
            .deployments
            .iter()
            .map(|d| {
                (
                    format!("{}/{}", d.metadata.namespace(), d.metadata.name),
                    d.spec.replicas.unwrap_or(1),
                )
            })
            .collect();
        let snapshot_daemonset_labels = snapshot
            .objects
            .daemonsets
            .iter()
            .map(|d| {
                (
                    format!("{}/{}", d.metadata.namespace(), d.metadata.name),
                    d.spec.template.metadata.labels.clone(),
                )
            })
            .collect();
        let cni_policies = snapshot
            .objects
            .cni_policies
            .iter()
            .map(|p| {
                let owner = if p.api_version.starts_with("cilium.io") {
                    CniKind::Cilium
                } else {
                    CniKind::Calico
                };
                (
                    owner,
                    p.kind.clone(),
                    p.api_version.clone(),
                    p.metadata.namespace.clone(),
                    p.metadata.name.clone(),
                )
            })
            .collect();
        // The pods the plan creates: every pod-network pod again (recreated on its node), and
        // the target's agents (their usual labels: the chart's own are not known here).
        let target_labels: std::collections::BTreeMap<String, String> = match target {
            CniKind::Cilium => [("k8s-app", "cilium")].into_iter(),
            CniKind::Calico => [("k8s-app", "calico-node")].into_iter(),
            _ => [("app", "flannel")].into_iter(),
        }
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let target_namespace = match target {
            CniKind::Calico => "calico-system",
            CniKind::Flannel if !talos => "kube-flannel",
            _ => "kube-system",
        };
        let mut recreated: Vec<crate::webhooks::RecreatedPod> = snapshot
            .objects
            .pods
            .iter()
            .filter(|p| p.spec.node_name.is_some() && !p.spec.host_network)
            .map(|p| crate::webhooks::RecreatedPod {
                namespace: p.metadata.namespace(),
                labels: p.metadata.labels.to_map(),
            })
            .collect();
        recreated.push(crate::webhooks::RecreatedPod {
            namespace: target_namespace,
            labels: target_labels,
        });
        let webhook_scopes = crate::webhooks::scopes(snapshot, &recreated);
        Cluster {
            storage: crate::storage::detect(snapshot),
            webhook_scopes,
            cni_policies,
            snapshot_daemonset_labels,
            facts,
            deployment_replicas,
            name: name.value,
            name_source: name.source,
            omni_cluster,
            omni_patches,
            kube_proxy: kube_proxy_known(snapshot, facts),
            dns_domain: dns_domain(snapshot),
            talos,
            talos_multidoc,
            talos_cni_urls,
            omni,
            omni_template,
            sources,
            pod_cidrs: cidr(&facts.cidrs.pod, false),
            kube_prism_port,
            api_endpoint: api_endpoint(snapshot, &nodes),
            api_endpoint_source: kubeadm_endpoint(snapshot)
                .map(|_| "kubeadm-config controlPlaneEndpoint".to_string()),
            pod_cidr: crate::known::declared_pod_cidr(facts),
            kubeadm_configuration: snapshot
                .objects
                .config_map("kube-system", "kubeadm-config")
                .and_then(|cm| cm.data.get("ClusterConfiguration"))
                .cloned(),
            service_addresses: snapshot
                .objects
                .services
                .iter()
                .flat_map(|s| s.addresses().map(str::to_string))
                .collect(),
            load_balancers: snapshot
                .objects
                .services
                .iter()
                .filter(|s| s.spec.kind.as_deref() == Some("LoadBalancer"))
                .map(|s| (s.metadata.qualified(), s.spec.load_balancer_class.clone()))
                .collect(),
            lb_providers: lb_providers(snapshot),
            nodes,
        }
    }

    /// Seconds a reboot takes (an assumption stated in the estimates).
    pub fn reboot_seconds(&self) -> u32 {
        if self.talos { 180 } else { 240 }
    }

    /// A label selector for a CNI's agent pods (only the agent: `k8s-app=cilium` is not
    /// cilium-envoy or the operator): the DaemonSet's own template labels when the snapshot
    /// has them, else the CNI's usual label.
    pub fn agent_selector(&self, cni: CniKind) -> String {
        let (ns, ds) = crate::install::agent_daemonset(self, cni);
        let labels = self.snapshot_daemonset_labels.get(&format!("{ns}/{ds}"));
        if let Some(labels) = labels {
            for key in ["k8s-app", "app", "app.kubernetes.io/name"] {
                if let Some(value) = labels.get(key) {
                    return format!("{key}={value}");
                }
            }
        }
        match cni {
            CniKind::Cilium => "k8s-app=cilium".into(),
            CniKind::Calico => "k8s-app=calico-node".into(),
            CniKind::Flannel if self.talos => "k8s-app=flannel".into(),
            CniKind::Flannel => "app=flannel".into(),
            CniKind::Canal => "k8s-app=canal".into(),
            CniKind::Weave => "name=weave-net".into(),
        }
    }

    /// The platform as plan.yaml names it.
    pub fn platform(&self) -> String {
        match (self.talos, self.omni) {
            (true, true) => format!("talos ({}) via omni", self.talos_format()),
            (true, false) => format!("talos ({})", self.talos_format()),
            _ => self.facts.platform.kind.to_string(),
        }
    }

    pub fn talos_format(&self) -> &'static str {
        if self.talos_multidoc {
            "1.14 multi-document"
        } else {
            "v1alpha1"
        }
    }

    pub fn control_planes(&self) -> Vec<&PlanNode> {
        self.nodes.iter().filter(|n| n.control_plane).collect()
    }

    pub fn workers(&self) -> Vec<&PlanNode> {
        self.nodes.iter().filter(|n| !n.control_plane).collect()
    }

    /// How talosctl addresses nodes: their IP when known, else their name.
    pub fn talos_endpoints(nodes: &[&PlanNode]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| n.ip.clone().unwrap_or_else(|| n.name.clone()))
            .collect()
    }

    /// The running DaemonSet of a CNI (namespace, name).
    /// Whether an operator reconciles the CNI's DaemonSet (Calico's Tigera operator).
    pub fn operator_managed(&self, cni: CniKind) -> bool {
        self.facts.cnis.iter().any(|c| {
            c.kind == cni && c.install == Some(cniswap_model::InstallMethod::TigeraOperator)
        })
    }

    pub fn install_of(&self, cni: CniKind) -> Option<cniswap_model::InstallMethod> {
        self.facts.cnis.iter().find(|c| c.kind == cni)?.install
    }

    pub fn daemonset_of(&self, cni: CniKind) -> Option<(String, String)> {
        let facts = self.facts.cnis.iter().find(|c| c.kind == cni)?;
        let daemonset = facts.daemonset.as_deref()?;
        match daemonset.split_once('/') {
            Some((ns, name)) => Some((ns.to_string(), name.to_string())),
            None => Some((facts.namespace.clone()?, daemonset.to_string())),
        }
    }
}

/// The cluster's name as its own records say it, first match: Omni's cluster; Talos'
/// `cluster.clusterName`; kubeadm-config `clusterName`; the kubeconfig context a live read
/// used. Nothing else is guessed: without any, the plan says it is unnamed and why.
fn cluster_name(snapshot: &Snapshot, omni: Option<&str>) -> crate::known::Sourced {
    let sourced = |value: &str, source: &str| crate::known::Sourced {
        value: value.to_string(),
        source: source.to_string(),
    };
    if let Some(name) = omni {
        return sourced(name, "the Omni cluster");
    }
    let talos = snapshot.talos.iter().find_map(|t| {
        t.docs.iter().find_map(|d| {
            d.path(&["cluster", "clusterName"])
                .and_then(|n| n.scalar_text())
                .filter(|n| !n.is_empty())
                .map(|n| (n, t.summary.file.clone()))
        })
    });
    if let Some((name, file)) = talos {
        return sourced(&name, &format!("Talos cluster.clusterName ({file})"));
    }
    let kubeadm = snapshot
        .objects
        .config_map("kube-system", "kubeadm-config")
        .and_then(|cm| cm.data.get("ClusterConfiguration"))
        .and_then(|text| {
            text.lines().find_map(|l| {
                let value = l.strip_prefix("clusterName:")?.trim().trim_matches('"');
                (!value.is_empty()).then(|| value.to_string())
            })
        });
    if let Some(name) = kubeadm {
        return sourced(&name, "kubeadm-config clusterName");
    }
    if let Some(context) = snapshot.source.strip_prefix("live:") {
        return sourced(context, "the kubeconfig context the cluster was read with");
    }
    sourced(
        "unnamed",
        "no record names it (Omni, Talos cluster.clusterName, kubeadm-config clusterName, a live read's context)",
    )
}

/// CRD groups a CNI owns.
pub fn crd_groups(cni: CniKind) -> &'static [&'static str] {
    match cni {
        CniKind::Calico | CniKind::Canal => &["projectcalico.org", "tigera.io"],
        CniKind::Cilium => &["cilium.io"],
        _ => &[],
    }
}

/// Whether kube-proxy runs, when the snapshot can tell: it was found; Talos, k3s or a
/// replacing CNI says it is off; or the kube-system DaemonSets were read and it is not among
/// them. A snapshot without kube-system DaemonSets says nothing.
fn kube_proxy_known(snapshot: &Snapshot, facts: &Facts) -> Option<bool> {
    let kp = &facts.kube_proxy;
    if kp.present {
        return Some(true);
    }
    if kp.disabled_in_talos == Some(true) || !kp.evidence.is_empty() {
        return Some(false);
    }
    let kube_system_read = snapshot
        .objects
        .daemonsets
        .iter()
        .any(|d| d.metadata.namespace() == "kube-system");
    kube_system_read.then_some(false)
}

/// Load-balancer providers by what runs them, with the CNI that owns one (Cilium's LB-IPAM).
fn lb_providers(snapshot: &Snapshot) -> Vec<(Option<CniKind>, String)> {
    let mut out = Vec::new();
    let cilium: Vec<String> = snapshot
        .objects
        .cni_configs
        .iter()
        .filter(|c| {
            matches!(
                c.kind.as_str(),
                "CiliumLoadBalancerIPPool"
                    | "CiliumL2AnnouncementPolicy"
                    | "CiliumBGPClusterConfig"
            )
        })
        .map(|c| format!("{} {}", c.kind, c.metadata.name))
        .collect();
    if !cilium.is_empty() {
        out.push((
            Some(CniKind::Cilium),
            format!("Cilium LB-IPAM ({})", cilium.join(", ")),
        ));
    }
    let workloads = snapshot
        .objects
        .deployments
        .iter()
        .chain(&snapshot.objects.daemonsets);
    for w in workloads {
        let (ns, name) = (w.metadata.namespace(), w.metadata.name.as_str());
        let provider = if ns == "metallb-system" || name.contains("metallb") {
            "MetalLB"
        } else if name.starts_with("svclb-") {
            "k3s ServiceLB"
        } else if name.contains("kube-vip") {
            "kube-vip"
        } else {
            continue;
        };
        out.push((None, format!("{provider} ({ns}/{name})")));
    }
    out
}

/// The zone CoreDNS serves the cluster from (`kubernetes <zone> ...` in its Corefile).
fn dns_domain(snapshot: &Snapshot) -> String {
    snapshot
        .objects
        .config_map("kube-system", "coredns")
        .and_then(|cm| cm.data.get("Corefile"))
        .and_then(|corefile| {
            corefile.lines().find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("kubernetes")).then(|| words.next())?
            })
        })
        .filter(|zone| {
            zone.split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| "cluster.local".to_string())
}

fn minor(version: &str) -> Option<u32> {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

fn api_endpoint(snapshot: &Snapshot, nodes: &[PlanNode]) -> Option<(String, u16)> {
    kubeadm_endpoint(snapshot).or_else(|| {
        nodes
            .iter()
            .find(|n| n.control_plane)
            .and_then(|n| n.ip.clone())
            .map(|ip| (ip, 6443))
    })
}

/// kubeadm's `controlPlaneEndpoint` (the address every node was joined with).
fn kubeadm_endpoint(snapshot: &Snapshot) -> Option<(String, u16)> {
    snapshot
        .objects
        .config_map("kube-system", "kubeadm-config")
        .and_then(|cm| cm.data.get("ClusterConfiguration"))
        .and_then(|text| {
            let line = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("controlPlaneEndpoint:"))?;
            let value = line.trim().trim_matches('"');
            let (host, port) = value.rsplit_once(':').unwrap_or((value, "6443"));
            Some((host.to_string(), port.parse().unwrap_or(6443)))
        })
}
