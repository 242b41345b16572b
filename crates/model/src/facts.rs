//! Facts: what cniswap derived from a snapshot or a live cluster.
//!
//! Every fact that a human would double-check carries `source`: the file, object or field
//! it came from, so an on-call engineer can verify it by hand.

use crate::{CniKind, PlatformKind, TalosConfigFormat};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Facts {
    pub platform: PlatformFacts,
    pub kubernetes: KubernetesFacts,
    pub nodes: Vec<NodeFacts>,
    pub cnis: Vec<CniFacts>,
    pub kube_proxy: KubeProxyFacts,
    pub cidrs: CidrFacts,
    pub dns: DnsFacts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talos: Option<TalosFacts>,
    pub workloads: WorkloadFacts,
    pub inputs: InputFacts,
}

// ---------------------------------------------------------------- platform

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PlatformFacts {
    pub kind: PlatformKind,
    /// Talos version when every node (or the config) agrees; see `nodes[].talos_version` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether the cluster is managed by Sidero Omni.
    pub omni: bool,
    /// Why cniswap believes this, e.g. `node osImage "Talos (v1.10.5)" on 3/3 nodes`.
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KubernetesFacts {
    /// Distinct kubelet versions with the number of nodes running each, most common first.
    pub versions: Vec<VersionCount>,
    /// More than one kubelet or Talos version across nodes: an upgrade is in flight.
    pub mixed_versions: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionCount {
    pub version: String,
    pub nodes: usize,
}

// ---------------------------------------------------------------- nodes

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    ControlPlane,
    Worker,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeFacts {
    pub name: String,
    pub roles: Vec<NodeRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talos_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_runtime: Option<String>,
    pub pod_cidrs: Vec<String>,
    pub ready: bool,
    /// The `NetworkUnavailable` condition when it is True, with its reason (e.g. `CalicoIsDown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_unavailable: Option<String>,
    pub unschedulable: bool,
    /// CNIs whose agent pod runs on this node.
    pub cni_agents: Vec<CniKind>,
    /// CNIs whose agent pod on this node exists but is not running and ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_agents_not_ready: Vec<CniKind>,
    /// Number of pods scheduled on the node, and how many of them use the pod network.
    pub pods: usize,
    pub pod_network_pods: usize,
}

// ---------------------------------------------------------------- CNIs

/// How a CNI was installed, which decides how cniswap can remove or reconfigure it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallMethod {
    /// Rendered by Talos from its machine config (bootstrap manifests).
    Talos,
    /// The Tigera operator (Installation resource).
    TigeraOperator,
    /// A Helm release (labels `app.kubernetes.io/managed-by: Helm`).
    Helm,
    /// Plain manifests applied with kubectl or a GitOps tool.
    Manifest,
    /// Bundled by the distribution (k3s, RKE2).
    Bundled,
}

impl std::fmt::Display for InstallMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Same spelling as the serde names, so text and JSON reports agree.
        f.write_str(match self {
            InstallMethod::Talos => "talos",
            InstallMethod::TigeraOperator => "tigera-operator",
            InstallMethod::Helm => "helm",
            InstallMethod::Manifest => "manifest",
            InstallMethod::Bundled => "bundled",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CniFacts {
    pub kind: CniKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The agent DaemonSet, when one exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemonset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallMethod>,
    /// DaemonSet status: desired and ready agents.
    pub desired: u32,
    pub ready: u32,
    /// Nodes where an agent pod of this CNI runs.
    pub active_nodes: Vec<String>,
    /// Nodes that have an agent pod of this CNI that is not running and ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready_nodes: Vec<String>,
    /// True when agents run, false when only leftovers (CRDs, config) were found.
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flannel: Option<FlannelMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calico: Option<CalicoMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cilium: Option<CiliumMode>,
    /// Pod CIDRs this CNI allocates from.
    pub pod_cidrs: Vec<String>,
    pub evidence: Vec<String>,
}

impl CniFacts {
    pub fn new(kind: CniKind) -> Self {
        CniFacts {
            kind,
            version: None,
            namespace: None,
            daemonset: None,
            install: None,
            desired: 0,
            ready: 0,
            active_nodes: Vec::new(),
            not_ready_nodes: Vec::new(),
            running: false,
            flannel: None,
            calico: None,
            cilium: None,
            pod_cidrs: Vec::new(),
            evidence: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FlannelMode {
    /// vxlan, host-gw, wireguard, ipip, udp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// UDP port of the VXLAN backend (upstream 8472, Talos 4789).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_routing: Option<bool>,
    /// `Network` from net-conf.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CalicoMode {
    /// Iptables, BPF, Nftables, VPP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<String>,
    /// Encapsulation per pool: IPIP, VXLAN, IPIPCrossSubnet, VXLANCrossSubnet, None.
    pub encapsulation: Vec<String>,
    /// Enabled / Disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_proxy_management: Option<String>,
    /// Where the settings came from: `Installation/default`, `IPPool/...`, `ConfigMap/calico-config`.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CiliumMode {
    /// tunnel or native.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_mode: Option<String>,
    /// vxlan or geneve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_port: Option<u16>,
    /// cluster-pool, kubernetes, multi-pool, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipam_mode: Option<String>,
    /// The value as configured (`true`, `false`, or a legacy `strict`/`partial`/`disabled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_proxy_replacement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni_exclusive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_cni_conf: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_masquerade: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_legacy_routing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_enforcement_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_service_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_service_port: Option<String>,
    /// `ConfigMap kube-system/cilium-config` or `helm/cilium.yaml`.
    pub sources: Vec<String>,
}

// ---------------------------------------------------------------- kube-proxy

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KubeProxyFacts {
    /// A kube-proxy DaemonSet (or a k3s/RKE2 embedded proxy) is deployed.
    pub present: bool,
    /// iptables, ipvs, nftables, or unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemonset: Option<String>,
    pub ready: u32,
    pub desired: u32,
    /// Talos config says kube-proxy is disabled (`cluster.proxy.disabled` / `KubeProxyConfig enabled: false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_in_talos: Option<bool>,
    /// A CNI that replaces kube-proxy (Cilium KPR true, Calico BPF), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<CniKind>,
    pub evidence: Vec<String>,
}

// ---------------------------------------------------------------- CIDRs

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CidrFacts {
    pub pod: Vec<SourcedCidr>,
    pub service: Vec<SourcedCidr>,
    /// Pairs of ranges that overlap but should not (pod vs service), as human-readable text.
    pub overlaps: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourcedCidr {
    pub cidr: String,
    /// e.g. `talos cluster.network.podSubnets (talos/controlplane.yaml)`, `kube-controller-manager --cluster-cidr`.
    pub source: String,
}

// ---------------------------------------------------------------- DNS

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DnsFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coredns: Option<CoreDnsFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talos_host_dns: Option<TalosHostDns>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CoreDnsFacts {
    pub deployment: String,
    pub replicas: u32,
    pub ready: u32,
    /// Nodes running a CoreDNS pod.
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TalosHostDns {
    pub enabled: Option<bool>,
    pub forward_kube_dns_to_host: Option<bool>,
    pub source: String,
}

// ---------------------------------------------------------------- Talos

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TalosFacts {
    /// One entry per machine config, patch or template read.
    pub configs: Vec<TalosConfigFacts>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TalosConfigFacts {
    pub file: String,
    /// full (a machine config), patch (talosctl/talhelper/Omni patch), template (Omni cluster template), talhelper.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<TalosConfigFormat>,
    /// controlplane / worker, when the config says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Node or machine the config belongs to (`talosctl get mc` output carries it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talos_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// What Talos renders as CNI: flannel, custom, none (after the 1.14 KubeFlannelCNIConfig rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni: Option<String>,
    pub cni_urls: Vec<String>,
    /// The 1.14 `KubeFlannelCNIConfig` document is present (Flannel is deployed whatever cni.name says).
    pub flannel_document: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_mode: Option<String>,
    pub pod_subnets: Vec<String>,
    pub service_subnets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_prism_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_prism_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_dns_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_kube_dns_to_host: Option<bool>,
    pub inline_manifests: Vec<String>,
    pub extra_manifests: Vec<String>,
    /// Secret fields that were present and redacted (paths only, never values).
    pub redacted: Vec<String>,
}

// ---------------------------------------------------------------- workload risks

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkloadFacts {
    pub pods: usize,
    pub pod_network_pods: usize,
    pub host_network_pods: usize,
    /// Pods with no controller (not static/mirror pods): deleted and never recreated on a switch.
    pub bare_pods: Vec<ObjectRef>,
    /// PodDisruptionBudgets that allow no disruption now.
    pub blocking_pdbs: Vec<BlockingPdb>,
    /// CSI drivers / storage systems whose components use the pod network.
    pub storage_on_pod_network: Vec<String>,
    /// Fail-closed webhooks served by pods on the pod network.
    pub fail_closed_webhooks: Vec<WebhookRisk>,
    pub network_policies: usize,
    /// CNI-specific policy objects by kind (CiliumNetworkPolicy, GlobalNetworkPolicy, ...).
    pub cni_policies: Vec<KindCount>,
    /// Objects left by a CNI that no longer runs (CRDs, namespaces, DaemonSets, annotations, conditions).
    pub stale_cni_resources: Vec<StaleResource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockingPdb {
    pub namespace: String,
    pub name: String,
    pub reason: String,
    /// The operator that owns the budget (`Kind/name` of its controller, or the manager a
    /// label names): it rewrites any change, so the plan never patches such a budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookRisk {
    /// `ValidatingWebhookConfiguration/<name>` + webhook name.
    pub configuration: String,
    pub webhook: String,
    /// `namespace/service`.
    pub service: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KindCount {
    pub kind: String,
    pub count: usize,
    pub owner: CniKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StaleResource {
    pub owner: CniKind,
    /// `CustomResourceDefinition`, `Namespace`, `DaemonSet`, `NodeAnnotation`, `NodeCondition`.
    pub kind: String,
    pub name: String,
}

// ---------------------------------------------------------------- inputs

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InputFacts {
    /// `snapshot:<path>` or `live:<context>`.
    pub source: String,
    pub files_read: usize,
    pub objects: usize,
    pub skipped: Vec<SkippedInput>,
    /// Kinds the cluster did not let cniswap list (RBAC, a missing API): every fact drawn
    /// from them is unknown, not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<UnreadKind>,
}

/// A kind of object that could not be listed: what was asked, and the server's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnreadKind {
    /// The resource as the API names it (`pods`, `ciliumnetworkpolicies`).
    pub resource: String,
    /// Its API group (empty for the core group).
    #[serde(default)]
    pub group: String,
    /// The path that was listed (`/api/v1/pods`).
    pub path: String,
    /// The server's answer or the error (`403 Forbidden: ...`).
    pub cause: String,
}

impl UnreadKind {
    /// `resource` or `resource.group`, as kubectl spells it in `--resource`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// Every kind with the server's answer, in one line.
    pub fn describe_all(kinds: &[UnreadKind]) -> String {
        kinds
            .iter()
            .map(|k| format!("{} ({})", k.qualified(), k.cause))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The next step for a reader that may not list `kinds`: the ClusterRole that would let it.
    pub fn grant_hint(kinds: &[UnreadKind]) -> String {
        let resources: Vec<String> = kinds.iter().map(UnreadKind::qualified).collect();
        format!(
            "grant the account list access cluster-wide, e.g. `kubectl create clusterrole cniswap-reader --verb=get,list --resource={}` and `kubectl create clusterrolebinding cniswap-reader --clusterrole=cniswap-reader --user=USER`; or work from a snapshot taken by an account that can read them (`cniswap snapshot --out-dir DIR`); a 404 means the API is not served: check the cluster's version",
            resources.join(",")
        )
    }

    /// The group and resource from a list path (`/apis/apps/v1/daemonsets` -> `apps`,
    /// `daemonsets`; `/api/v1/pods` -> ``, `pods`).
    pub fn from_path(path: &str, cause: impl Into<String>) -> UnreadKind {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, resource) = match parts.as_slice() {
            ["api", _version, resource, ..] => ("", *resource),
            ["apis", group, _version, resource, ..] => (*group, *resource),
            _ => ("", path),
        };
        UnreadKind {
            resource: resource.to_string(),
            group: group.to_string(),
            path: path.to_string(),
            cause: cause.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkippedInput {
    pub path: String,
    pub reason: String,
}

#[cfg(test)]
mod unread_tests {
    use super::UnreadKind;

    #[test]
    fn kinds_are_named_as_kubectl_names_them() {
        let core = UnreadKind::from_path("/api/v1/pods", "403 Forbidden");
        assert_eq!((core.group.as_str(), core.resource.as_str()), ("", "pods"));
        assert_eq!(core.qualified(), "pods");
        let apps = UnreadKind::from_path("/apis/apps/v1/daemonsets", "403 Forbidden");
        assert_eq!(apps.qualified(), "daemonsets.apps");
        let hint = UnreadKind::grant_hint(&[core, apps]);
        assert!(hint.contains("--resource=pods,daemonsets.apps"), "{hint}");
    }
}
