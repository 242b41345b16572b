//! Effective Talos configs per node role: what Talos would actually apply.
//!
//! A complete machine config (talosctl output) is a view of its own, with every patch for its
//! role applied on top. When only patches are given (GitOps repositories, talhelper, Omni),
//! the base is what `talosctl gen config` generates for the detected version, because that is
//! what the patches land on (research/talos.md "v1alpha1 fields": kubePrism on 7445 since 1.6,
//! hostDNS since 1.7, forwardKubeDNSToHost since 1.8; 1.14 always emits KubeFlannelCNIConfig).

use cniswap_config::talos::{
    apply_patch, document_kind, image_tag, is_1_14_document, is_base_layer, is_v1alpha1_document,
};
use cniswap_config::yaml::parse_documents;
use cniswap_config::{Node, Value};
use cniswap_snapshot::{Snapshot, TalosSource};

/// A Talos minor version, e.g. (1, 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TalosVersion(pub u32, pub u32);

impl TalosVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().trim_start_matches('v').split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(TalosVersion(major, minor))
    }
}

impl std::fmt::Display for TalosVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

#[derive(Debug, Clone)]
pub struct TalosView {
    /// e.g. `talos/controlplane.yaml` or `patches for controlplane nodes`.
    pub label: String,
    pub role: Option<String>,
    pub version: Option<TalosVersion>,
    /// Where the version was read (`talosVersion in talconfig.yaml`), or why it is unknown.
    pub version_from: String,
    /// The merged documents.
    pub docs: Vec<Node>,
    /// The base was generated defaults (only patches were given), not a real machine config.
    pub generated_base: bool,
    /// Files that contributed.
    pub files: Vec<String>,
    /// The directory group the view's files belong to (see [`super::Grouping`]).
    pub group: String,
    /// Patch files that a talconfig or Omni template references but that were not read: a
    /// setting missing from the view may be set there.
    pub unread: Vec<String>,
}

/// A setting's value and the node that set it (`None` when it is a Talos default).
pub struct Setting<'a, T> {
    pub value: T,
    pub node: Option<&'a Node>,
}

impl TalosView {
    fn v1(&self) -> Option<&Node> {
        self.docs.iter().find(|d| is_v1alpha1_document(d))
    }

    pub fn document(&self, kind: &str) -> Option<&Node> {
        self.docs.iter().find(|d| document_kind(d) == Some(kind))
    }

    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        self.v1()?.path(path)
    }

    pub fn is_multi_document(&self) -> bool {
        match self.version {
            Some(v) => v >= TalosVersion(1, 14),
            None => self.docs.iter().any(is_1_14_document),
        }
    }

    /// What Talos renders as CNI: `flannel`, `custom` or `none`. In the 1.14 form Flannel is
    /// deployed whenever the `KubeFlannelCNIConfig` document exists.
    pub fn cni_name(&self) -> Setting<'_, String> {
        if let Some(doc) = self.document("KubeFlannelCNIConfig") {
            return Setting {
                value: "flannel".into(),
                node: doc.get("kind").filter(|n| n.has_position()),
            };
        }
        match self.at(&["cluster", "network", "cni", "name"]) {
            Some(node) => Setting {
                value: node.scalar_text().unwrap_or_default(),
                node: Some(node),
            },
            None if self.is_multi_document() && !self.generated_base => Setting {
                value: "none".into(),
                node: None,
            },
            None => Setting {
                value: "flannel".into(),
                node: None,
            },
        }
    }

    pub fn cni_urls(&self) -> Vec<&Node> {
        self.at(&["cluster", "network", "cni", "urls"])
            .map(|n| n.as_seq().iter().collect())
            .unwrap_or_default()
    }

    /// Whether kube-proxy is disabled (`KubeProxyConfig enabled: false` or `cluster.proxy.disabled`).
    pub fn proxy_disabled(&self) -> Setting<'_, bool> {
        if let Some(node) = self
            .document("KubeProxyConfig")
            .and_then(|d| d.get("enabled"))
        {
            return Setting {
                value: node.as_bool() == Some(false),
                node: Some(node),
            };
        }
        match self.at(&["cluster", "proxy", "disabled"]) {
            Some(node) => Setting {
                value: node.as_bool() == Some(true),
                node: Some(node),
            },
            None => Setting {
                value: false,
                node: None,
            },
        }
    }

    /// KubePrism: enabled and port (0 means 7445). A `KubePrismConfig` document the user wrote
    /// wins; else the legacy `machine.features.kubePrism` section when a file sets it (1.14
    /// still honours it); else the generated default.
    pub fn kube_prism(&self) -> Setting<'_, Option<u16>> {
        let document = self.document("KubePrismConfig");
        let enabled = self.at(&["machine", "features", "kubePrism", "enabled"]);
        let port = self.at(&["machine", "features", "kubePrism", "port"]);
        let legacy_written = enabled.or(port).is_some_and(Node::has_position);
        if let Some(doc) = document.filter(|d| d.has_position() || !legacy_written) {
            let port = doc.get("port");
            return Setting {
                value: Some(port.and_then(Node::as_u16).unwrap_or(7445)),
                node: port.or(doc.get("kind")),
            };
        }
        let on = enabled.and_then(Node::as_bool) == Some(true);
        Setting {
            value: on.then(|| {
                port.and_then(Node::as_u16)
                    .filter(|p| *p != 0)
                    .unwrap_or(7445)
            }),
            node: enabled.or(port),
        }
    }

    /// Whether Talos forwards cluster DNS to its host resolver (needs hostDNS enabled). A value
    /// a file sets wins over a generated default, in either place (1.14 reads both).
    pub fn forward_kube_dns_to_host(&self) -> Setting<'_, bool> {
        let resolver = self
            .document("ResolverConfig")
            .and_then(|d| d.get("hostDNS"));
        let legacy = self.at(&["machine", "features", "hostDNS"]);
        let written = |n: &Option<&Node>| {
            n.and_then(|h| h.get("forwardKubeDNSToHost").or(h.get("enabled")))
                .is_some_and(Node::has_position)
        };
        let section = match (written(&resolver), written(&legacy)) {
            (true, _) => resolver,
            (false, true) => legacy,
            _ => resolver.or(legacy),
        };
        let node = section.and_then(|h| h.get("forwardKubeDNSToHost"));
        let enabled = section.and_then(|h| h.get("enabled"));
        let forward = node.and_then(Node::as_bool) == Some(true);
        // forwardKubeDNSToHost without hostDNS.enabled is refused by Talos; treat enabled as
        // implied unless it is explicitly false.
        let host_dns_off = enabled.and_then(Node::as_bool) == Some(false);
        Setting {
            value: forward && !host_dns_off,
            node: node.or(enabled.filter(|_| host_dns_off)),
        }
    }

    /// The address of Talos' DNS forwarder put on `lo` (`machine.network.interfaces` or a
    /// `LinkConfig` document for `lo`): the work-around that lets pods reach it through
    /// Cilium's BPF host routing (siderolabs/talos#10002).
    pub fn host_dns_address_on_lo(&self) -> Option<&Node> {
        const ADDRESS: &str = "169.254.116.108";
        let is_it = |n: &&Node| {
            n.scalar_text()
                .is_some_and(|t| t.split('/').next() == Some(ADDRESS))
        };
        let legacy = self
            .at(&["machine", "network", "interfaces"])
            .map(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .filter(|i| i.get("interface").and_then(Node::as_str) == Some("lo"))
            .flat_map(|i| i.get("addresses").map(Node::as_seq).unwrap_or_default())
            .find(is_it);
        legacy.or_else(|| {
            self.docs
                .iter()
                .filter(|d| document_kind(d) == Some("LinkConfig"))
                .filter(|d| d.get("name").and_then(Node::as_str) == Some("lo"))
                .flat_map(|d| d.get("addresses").map(Node::as_seq).unwrap_or_default())
                .map(|a| a.get("address").unwrap_or(a))
                .find(is_it)
        })
    }

    /// Addresses the config gives the node and its API endpoint: interface addresses (with
    /// their prefix), VIPs, the control-plane endpoint when it is an IP.
    pub fn node_addresses(&self) -> Vec<&Node> {
        let mut out: Vec<&Node> = Vec::new();
        for interface in self
            .at(&["machine", "network", "interfaces"])
            .map(Node::as_seq)
            .unwrap_or_default()
        {
            out.extend(
                interface
                    .get("addresses")
                    .map(Node::as_seq)
                    .unwrap_or_default(),
            );
            out.extend(interface.path(&["vip", "ip"]));
            for vlan in interface.get("vlans").map(Node::as_seq).unwrap_or_default() {
                out.extend(vlan.get("addresses").map(Node::as_seq).unwrap_or_default());
                out.extend(vlan.path(&["vip", "ip"]));
            }
        }
        out.extend(self.at(&["cluster", "controlPlane", "endpoint"]));
        out
    }

    /// KubeSpan: enabled, and the MTU of its WireGuard link (Talos default 1420).
    pub fn kubespan(&self) -> Option<(u16, Option<&Node>)> {
        let enabled = self.at(&["machine", "network", "kubespan", "enabled"])?;
        if enabled.as_bool() != Some(true) {
            return None;
        }
        let mtu = self.at(&["machine", "network", "kubespan", "mtu"]);
        Some((mtu.and_then(Node::as_u16).unwrap_or(1420), Some(enabled)))
    }

    pub fn pod_subnets(&self) -> Setting<'_, Vec<String>> {
        self.subnets("podSubnets")
    }

    pub fn service_subnets(&self) -> Setting<'_, Vec<String>> {
        self.subnets("serviceSubnets")
    }

    fn subnets(&self, key: &str) -> Setting<'_, Vec<String>> {
        let node = self
            .document("KubeNetworkConfig")
            .and_then(|d| d.get(key))
            .or_else(|| self.at(&["cluster", "network", key]));
        Setting {
            value: node.map(Node::string_list).unwrap_or_default(),
            node: node.filter(|n| n.has_position()),
        }
    }

    /// Every manifest URL Talos applies: cni.urls, extraManifests, KubeExternalManifestConfig.
    pub fn manifest_urls(&self) -> Vec<&Node> {
        let mut urls = self.cni_urls();
        if let Some(extra) = self.at(&["cluster", "extraManifests"]) {
            urls.extend(extra.as_seq());
        }
        urls.extend(
            self.docs
                .iter()
                .filter(|d| document_kind(d) == Some("KubeExternalManifestConfig"))
                .filter_map(|d| d.get("url")),
        );
        urls
    }

    /// Whether a setting absent from this view can be trusted to be absent.
    pub fn complete(&self) -> bool {
        self.unread.is_empty()
    }

    pub fn describe(&self) -> String {
        match (&self.role, self.generated_base) {
            (Some(role), true) => format!("{} ({role} nodes)", self.label),
            _ => self.label.clone(),
        }
    }
}

/// Builds the effective views from every Talos source of a snapshot, one set per group of
/// files (see [`super::Grouping`]).
pub fn views(snapshot: &Snapshot, fallback_version: Option<&str>) -> Vec<TalosView> {
    let grouping = super::Grouping::new(snapshot);
    let group_of = |s: &TalosSource| grouping.group_of(&s.summary.file);
    let mut keys: Vec<String> = snapshot
        .talos
        .iter()
        .map(group_of)
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        keys.push(String::new());
    }
    let mut out = Vec::new();
    for key in keys {
        let sources: Vec<&TalosSource> = snapshot
            .talos
            .iter()
            .filter(|s| super::same_group(&group_of(s), &key))
            .collect();
        let loaded: Vec<&str> = snapshot.talos.iter().map(file_of).collect();
        let unread: Vec<String> = snapshot
            .referenced_patches
            .iter()
            .filter(|p| !loaded.contains(&p.as_str()))
            .filter(|p| super::same_group(&grouping.group_of(p), &key))
            .cloned()
            .collect();
        for mut view in group_views(snapshot, &sources, fallback_version) {
            view.group = key.clone();
            view.unread = unread.clone();
            out.push(view);
        }
    }
    out
}

fn file_of(source: &TalosSource) -> &str {
    source.summary.file.split('#').next().unwrap_or_default()
}

fn group_views(
    snapshot: &Snapshot,
    sources: &[&TalosSource],
    fallback_version: Option<&str>,
) -> Vec<TalosView> {
    let (full, mut patches): (Vec<&TalosSource>, Vec<&TalosSource>) = sources
        .iter()
        .copied()
        .partition(|t| t.summary.kind == "full");
    // A config written in layers: the base layers (version and secrets, no machine.type) are
    // what the role layers and patches land on, not generated defaults.
    let layers: Vec<&TalosSource> = if full.is_empty() {
        let (layers, rest): (Vec<&TalosSource>, Vec<&TalosSource>) = patches
            .iter()
            .partition(|p| p.summary.kind == "patch" && is_base_layer(&p.docs));
        patches = rest;
        layers
    } else {
        Vec::new()
    };
    // Omni merges cluster-wide patches before machine-set ones.
    patches.sort_by_key(|p| p.role.is_some());

    let (version, version_from) = detect_version(snapshot, sources, fallback_version);

    // A patch file referenced by a talhelper role section or an Omni ControlPlane/Workers
    // entry applies to that role only.
    // A patch that sets machine.type is the layer of that role.
    let role_of = |patch: &TalosSource| {
        patch
            .role
            .clone()
            .or_else(|| snapshot.patch_roles.get(file_of(patch)).cloned())
            .or_else(|| {
                // Only a real role: a template's `machine.type: ${type}` says nothing.
                let role = patch.summary.role.as_deref().map(normal_role)?;
                (patch.summary.kind == "patch" && matches!(role, "controlplane" | "worker"))
                    .then(|| role.to_string())
            })
    };
    let applies = |patch: &TalosSource, role: Option<&str>| match (role_of(patch), role) {
        (None, _) => true,
        (Some(p), Some(r)) => p == r,
        (Some(_), None) => false,
    };

    let mut out = Vec::new();
    for config in &full {
        let role = config.summary.role.clone();
        let mut docs = config.docs.clone();
        let mut files = vec![config.summary.file.clone()];
        for patch in patches
            .iter()
            .filter(|p| applies(p, role.as_deref().map(normal_role)))
        {
            apply_patch(&mut docs, &patch.docs);
            files.push(patch.summary.file.clone());
        }
        let own = config
            .summary
            .talos_version
            .as_deref()
            .and_then(TalosVersion::parse);
        out.push(TalosView {
            label: config.summary.file.clone(),
            version: own.or(version),
            version_from: match own {
                Some(_) => format!("the installer image in {}", config.summary.file),
                None => version_from.clone(),
            },
            role,
            docs,
            generated_base: false,
            files,
            group: String::new(),
            unread: Vec::new(),
        });
    }
    if !layers.is_empty() {
        let mut roles: Vec<Option<String>> = patches.iter().map(|p| role_of(p)).collect();
        roles.sort();
        roles.dedup();
        if roles.iter().any(Option::is_some) {
            roles.retain(Option::is_some);
        }
        if roles.is_empty() {
            roles.push(None);
        }
        for role in roles {
            let mut docs = Vec::new();
            let mut files = Vec::new();
            for layer in layers
                .iter()
                .chain(patches.iter().filter(|p| applies(p, role.as_deref())))
            {
                apply_patch(&mut docs, &layer.docs);
                files.push(layer.summary.file.clone());
            }
            files.dedup();
            out.push(TalosView {
                label: match files.as_slice() {
                    [one] => one.clone(),
                    _ => format!("the config layered from {}", files.join(" + ")),
                },
                role,
                version,
                version_from: version_from.clone(),
                docs,
                generated_base: false,
                files,
                group: String::new(),
                unread: Vec::new(),
            });
        }
        return out;
    }
    if full.is_empty() && !patches.is_empty() {
        // A known version decides the format; without one, documents only 1.14 has do.
        let multi = match version {
            Some(v) => v >= TalosVersion(1, 14),
            None => patches.iter().any(|p| p.docs.iter().any(is_1_14_document)),
        };
        let mut roles: Vec<Option<&str>> = if patches.iter().any(|p| role_of(p).is_some()) {
            vec![Some("controlplane"), Some("worker")]
        } else {
            vec![None]
        };
        // Only roles that exist: a single-node talhelper cluster has no workers.
        if !snapshot.declared_roles.is_empty() {
            roles.retain(|r| r.is_none_or(|r| snapshot.declared_roles.contains(r)));
        }
        for role in roles {
            let mut docs = generated_defaults(version, multi, role.unwrap_or("controlplane"));
            let mut files = Vec::new();
            for patch in patches.iter().filter(|p| applies(p, role)) {
                apply_patch(&mut docs, &patch.docs);
                files.push(patch.summary.file.clone());
            }
            files.dedup();
            out.push(TalosView {
                label: match files.as_slice() {
                    [one] => one.clone(),
                    // A subject that takes a singular verb: "... lists cni.urls".
                    _ => format!("the config merged from {} Talos patches", files.len()),
                },
                role: role.map(str::to_string),
                version,
                version_from: version_from.clone(),
                docs,
                generated_base: true,
                files,
                group: String::new(),
                unread: Vec::new(),
            });
        }
    }
    out
}

/// The Talos version of one cluster's files, from the strongest evidence: what the cluster's
/// template declares (talhelper `talosVersion`, Omni `talos.version`), then the installer
/// image tag of a config or patch, then the running nodes. Document kinds only tell the
/// format, not the version, and are left to the caller.
fn detect_version(
    snapshot: &Snapshot,
    sources: &[&TalosSource],
    fallback: Option<&str>,
) -> (Option<TalosVersion>, String) {
    let parsed = |text: Option<&str>| text.and_then(TalosVersion::parse);
    let files: Vec<&str> = sources.iter().map(|s| file_of(s)).collect();
    let declared = sources
        .iter()
        .filter(|s| s.summary.kind == "talhelper")
        .find_map(|s| {
            parsed(s.summary.talos_version.as_deref())
                .map(|v| (v, format!("`talosVersion` in {}", file_of(s))))
        })
        .or_else(|| {
            let grouping = super::Grouping::new(snapshot);
            let groups: Vec<String> = files.iter().map(|f| grouping.group_of(f)).collect();
            snapshot
                .omni_templates
                .iter()
                .filter(|t| {
                    let group = grouping.group_of(&t.file);
                    groups.iter().any(|g| super::same_group(g, &group))
                })
                .find_map(|t| {
                    parsed(t.talos_version.as_deref())
                        .map(|v| (v, format!("`talos.version` in {}", t.file)))
                })
        });
    // `machine.install.image`, or the 1.14 `UnattendedInstallConfig` document's installer.
    let image = || {
        sources
            .iter()
            .filter(|s| s.summary.kind != "talhelper")
            .find_map(|s| {
                let tag = s.summary.talos_version.clone().or_else(|| {
                    s.docs
                        .iter()
                        .filter(|d| document_kind(d) == Some("UnattendedInstallConfig"))
                        .find_map(|d| {
                            d.path(&["installer", "image"])?
                                .as_str()
                                .and_then(image_tag)
                        })
                });
                parsed(tag.as_deref())
                    .map(|v| (v, format!("the installer image in {}", file_of(s))))
            })
    };
    let running = || parsed(fallback).map(|v| (v, "the cluster's nodes".to_string()));
    match declared.or_else(image).or_else(running) {
        Some((v, from)) => (Some(v), from),
        None => {
            let marker = sources.iter().find_map(|s| {
                s.docs
                    .iter()
                    .find(|d| is_1_14_document(d))
                    .and_then(document_kind)
                    .map(|k| format!("{k} in {}", file_of(s)))
            });
            let from = match marker {
                Some(m) => format!("unknown: no talosVersion or installer image; the 1.14 format assumed from {m}"),
                None => "unknown: no talosVersion, installer image or cluster; a current version (>= 1.8) assumed".into(),
            };
            (None, from)
        }
    }
}

fn normal_role(role: &str) -> &str {
    if role == "init" { "controlplane" } else { role }
}

/// The config `talosctl gen config` writes, reduced to the settings the rules read.
/// Unknown version: assume a current one (>= 1.8), and say so in findings that rely on it.
fn generated_defaults(version: Option<TalosVersion>, multi: bool, role: &str) -> Vec<Node> {
    let at_least = |minor| version.is_none_or(|v| v >= TalosVersion(1, minor));
    let mut text = format!(
        "version: v1alpha1\nmachine:\n  type: {role}\n  features:\n    kubePrism:\n      enabled: {}\n      port: 7445\n    hostDNS:\n      enabled: {}\n      forwardKubeDNSToHost: {}\ncluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n    serviceSubnets: [10.96.0.0/12]\n",
        at_least(6),
        at_least(7),
        at_least(8),
    );
    if multi {
        // 1.14 moves these settings into documents and always emits the Flannel document.
        text = format!(
            "version: v1alpha1\nmachine:\n  type: {role}\n---\napiVersion: v1alpha1\nkind: KubeNetworkConfig\npodSubnets: [10.244.0.0/16]\nserviceSubnets: [10.96.0.0/12]\n---\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\nbackendType: vxlan\nbackendPort: 4789\n---\napiVersion: v1alpha1\nkind: KubePrismConfig\nport: 7445\n---\napiVersion: v1alpha1\nkind: ResolverConfig\nhostDNS:\n  enabled: true\n  forwardKubeDNSToHost: true\n"
        );
    }
    let mut docs = parse_documents(&text).unwrap_or_default();
    // Defaults have no file position: findings about them point at the patch instead.
    docs.iter_mut().for_each(strip_positions);
    docs
}

fn strip_positions(node: &mut Node) {
    node.pos = Default::default();
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(strip_positions),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            strip_positions(k);
            strip_positions(v);
        }),
        _ => {}
    }
}
